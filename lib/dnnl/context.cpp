// The process-wide CPU engine, per-thread contexts with their primitive cache, and the OpenMP thread count.
#include "dnnl/context.h"

#include "core/simd.h"

#include <dlfcn.h>

#include <algorithm>
#include <atomic>

#include "dnnl/dnnl_internal.h"

namespace tolk {

namespace dnnl_detail {

const dnnl::engine& cpu_engine() {
    static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    return engine;
}

std::string md_str(const dnnl::memory::desc& md) {
    std::ostringstream os;
    const dnnl_memory_desc_t& d = md.data;
    os << dnnl_dt2str(d.data_type) << '{';
    for (int i = 0; i < d.ndims; ++i) os << (i ? "," : "") << d.dims[i];
    os << '}';
    if (d.format_kind == dnnl_blocked) {
        os << ":{";
        for (int i = 0; i < d.ndims; ++i) os << (i ? "," : "") << d.format_desc.blocking.strides[i];
        os << '}';
        for (int i = 0; i < d.format_desc.blocking.inner_nblks; ++i)
            os << d.format_desc.blocking.inner_blks[i] << static_cast<char>('a' + d.format_desc.blocking.inner_idxs[i]);
    } else {
        os << ":any";
    }
    return os.str();
}

}  // namespace dnnl_detail

// Row counts are bucketed (Linear), so a run needs a few hundred primitives (472 on 1,000 Multi30k lines when
// attention still made some); source lengths still vary, and junk input can make any number of shapes. 1,024 is
// well above what real text uses and bounds the memory a cache holds (JIT code and descriptors, tens of KiB each).
constexpr std::size_t default_cached_primitives = 1024;

dnnl_detail::BoundPrimitive& DnnlContext::Impl::insert(const dnnl_detail::OpKey& key,
                                                       dnnl_detail::BoundPrimitive bound) {
    while (cache.size() >= capacity && !recency.empty()) {
        cache.erase(recency.back());
        recency.pop_back();
    }
    if (bound.scratchpad.get_size() > 0)
        bound.args[DNNL_ARG_SCRATCHPAD] = dnnl::memory(bound.scratchpad, dnnl_detail::cpu_engine(), nullptr);
    recency.push_front(key);
    return cache.emplace(key, Cached{std::move(bound), recency.begin()}).first->second.bound;
}

void* DnnlContext::Impl::scratchpad_for(std::size_t bytes) {
    if (bytes > scratchpad_bytes) {
        constexpr std::size_t page = 4096;
        const std::size_t size = (bytes + page - 1) / page * page;
        void* p = std::aligned_alloc(page, size);
        TOLK_CHECK(p != nullptr, "out of memory for a ", size, "-byte oneDNN scratchpad");
        scratchpad.reset(p);
        scratchpad_bytes = size;
    }
    return scratchpad.get();
}

void DnnlContext::Impl::execute(dnnl_detail::BoundPrimitive& bound) {
    if (const std::size_t bytes = bound.scratchpad.get_size(); bytes > 0)
        bound.set(DNNL_ARG_SCRATCHPAD, scratchpad_for(bytes));
    try {
        bound.primitive.execute(stream, bound.args);
    } catch (const dnnl::error& e) {
        TOLK_FAIL("oneDNN failed to run ", bound.description, " (", bound.impl, "): ", e.what());
    }
}

DnnlContext::DnnlContext() : impl_(std::make_unique<Impl>()) {
    impl_->capacity = default_cached_primitives;
    try {
        impl_->stream = dnnl::stream(dnnl_detail::cpu_engine());
    } catch (const dnnl::error& e) {
        TOLK_FAIL("oneDNN cannot create a CPU stream: ", e.what());
    }
}

DnnlContext::~DnnlContext() = default;

std::vector<std::string> DnnlContext::primitive_report() const {
    std::vector<std::string> out;
    for (const auto& [key, cached] : impl_->cache)
        out.push_back(cached.bound.description + " -> " + cached.bound.impl);
    return out;
}

std::vector<std::string> DnnlContext::implementations() const {
    std::vector<std::string> out;
    for (const auto& [key, cached] : impl_->cache) out.push_back(cached.bound.impl);
    return out;
}

std::size_t DnnlContext::cached_primitives() const { return impl_->cache.size(); }

void DnnlContext::clear() {
    impl_->cache.clear();
    impl_->recency.clear();
}

void DnnlContext::set_cache_capacity(std::size_t n) {
    impl_->capacity = n < 2 ? 2 : n;  // a Linear's matmul and its activation are used back to back
    while (impl_->cache.size() > impl_->capacity) {
        impl_->cache.erase(impl_->recency.back());
        impl_->recency.pop_back();
    }
}

// oneDNN runs on the OpenMP runtime it was built with (libgomp, loaded with libdnnl). Only the panel kernel is
// compiled with OpenMP; the thread count is set through entry points looked up in the loaded runtime, so this file
// needs no OpenMP headers or flags.
namespace {
template <typename Fn>
Fn openmp_entry(const char* name) {
    return reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, name));
}
}  // namespace

void set_num_threads(int n) {
    if (n <= 0) return;
    using SetFn = void (*)(int);
    static const SetFn set = openmp_entry<SetFn>("omp_set_num_threads");
    TOLK_CHECK(set != nullptr, "cannot set the thread count: the OpenMP runtime is not loaded");
    set(n);
}

int num_threads() {
    using GetFn = int (*)();
    static const GetFn get = openmp_entry<GetFn>("omp_get_max_threads");
    return get ? get() : 1;
}

namespace {
dnnl::cpu_isa effective_isa() {
    static const dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();
    return isa;
}
bool isa_includes(dnnl::cpu_isa feature) {
    // oneDNN's ISA values are bit sets: a larger ISA holds every bit of the ones it extends.
    const auto have = static_cast<unsigned>(effective_isa()), want = static_cast<unsigned>(feature);
    return (have & want) == want;
}
}  // namespace

std::string cpu_isa_name() {
    switch (effective_isa()) {
        case dnnl::cpu_isa::sse41: return "sse41";
        case dnnl::cpu_isa::avx: return "avx";
        case dnnl::cpu_isa::avx2: return "avx2";
        case dnnl::cpu_isa::avx2_vnni: return "avx2_vnni";
        case dnnl::cpu_isa::avx512_mic: return "avx512_mic";
        case dnnl::cpu_isa::avx512_mic_4ops: return "avx512_mic_4ops";
        case dnnl::cpu_isa::avx512_core: return "avx512_core";
        case dnnl::cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
        case dnnl::cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
        case dnnl::cpu_isa::avx512_core_amx: return "avx512_core_amx";
        case dnnl::cpu_isa::all: return "all";
    }
    return "unknown";
}

bool cpu_has_avx2() { return isa_includes(dnnl::cpu_isa::avx2); }
bool cpu_has_avx512() { return isa_includes(dnnl::cpu_isa::avx512_core); }
bool cpu_has_vnni() { return isa_includes(dnnl::cpu_isa::avx512_core_vnni); }
bool cpu_has_bf16() { return isa_includes(dnnl::cpu_isa::avx512_core_bf16); }

namespace {
simd::Level widest_level() {
    using simd::Level;
    static const Level value = cpu_has_avx512()                                                        ? Level::avx512
                               : cpu_has_avx2() && __builtin_cpu_supports("fma")                    ? Level::avx2
                                                                                                    : Level::baseline;
    return value;
}
std::atomic<simd::Level> level_cap{simd::Level::avx512};
}  // namespace

simd::Level simd::level() { return std::min(widest_level(), level_cap.load(std::memory_order_relaxed)); }

simd::Level simd::limit_level(Level wanted) { return level_cap.exchange(wanted); }

}  // namespace tolk
