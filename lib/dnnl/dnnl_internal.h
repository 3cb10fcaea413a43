// Private to lib/dnnl: the process-wide oneDNN engine, the per-context cache of primitives bound to their
// memory objects, and the wrapper that turns oneDNN failures into tolk::Error. Never include outside lib/dnnl.
#pragma once

#include <oneapi/dnnl/dnnl.hpp>
#include <oneapi/dnnl/dnnl_debug.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <list>
#include <memory>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/error.h"
#include "dnnl/context.h"

namespace tolk::dnnl_detail {

// One CPU engine for the whole process: packed weights created on it are usable from every context.
const dnnl::engine& cpu_engine();

// What a cached primitive was built for: the owning op (a Linear's id, or a fixed id for stateless ops) and the
// shape values that select the primitive. Unused slots stay 0.
struct OpKey {
    uint64_t op = 0;
    std::array<int64_t, 12> v{};
    bool operator==(const OpKey& o) const { return op == o.op && v == o.v; }
};

struct OpKeyHash {
    std::size_t operator()(const OpKey& k) const {
        uint64_t h = k.op * 0x9e3779b97f4a7c15ull;
        for (int64_t x : k.v) h = (h ^ static_cast<uint64_t>(x)) * 0x100000001b3ull;
        return static_cast<std::size_t>(h ^ (h >> 29));
    }
};

// A primitive together with its argument map. The memory objects wrap user buffers; each call only swaps their
// data handles, so a cached call allocates nothing.
struct BoundPrimitive {
    dnnl::primitive primitive;
    std::unordered_map<int, dnnl::memory> args;
    std::string description;  // op, dims and dtypes, for errors and the impl report
    std::string impl;         // impl_info_str() of the chosen implementation
    // The scratch memory the primitive needs per execution. Primitives are made with scratchpad_mode::user and
    // their context lends them one shared buffer: with the library's default each cached primitive would hold
    // its own (measured: ~1 GB after 5,000 junk lines that made a thousand shapes).
    dnnl::memory::desc scratchpad;

    void set(int arg, const void* data) { args.at(arg).set_data_handle(const_cast<void*>(data)); }
};

// The op of an OpKey: which kind of primitive its values describe.
enum : uint64_t {
    op_linear = 4,
    op_activation = 5,
};

// Attributes for a cached primitive: its scratchpad comes from the executing context (see BoundPrimitive).
inline dnnl::primitive_attr with_user_scratchpad(dnnl::primitive_attr attr = dnnl::primitive_attr()) {
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    return attr;
}

// Creates a primitive descriptor, rethrowing oneDNN's failure as tolk::Error naming the op, dims and dtypes.
template <typename F>
auto make_pd(const std::string& description, F&& create) {
    try {
        return create();
    } catch (const dnnl::error& e) {
        TOLK_FAIL("oneDNN cannot create ", description, ": ", e.what(), " (status ", static_cast<int>(e.status), ")");
    }
}

std::string md_str(const dnnl::memory::desc& md);  // "f32{2,3}:{3,1}" (dims and strides)

}  // namespace tolk::dnnl_detail

namespace tolk {

struct DnnlContext::Impl {
    dnnl::stream stream;
    // The primitives, least recently used last: at `capacity` entries the last one goes, so a run over endless
    // new shapes (junk input) keeps a bounded set. A pointer from find() or insert() stays valid until the next
    // insert().
    struct Cached {
        dnnl_detail::BoundPrimitive bound;
        std::list<dnnl_detail::OpKey>::iterator order;
    };
    std::unordered_map<dnnl_detail::OpKey, Cached, dnnl_detail::OpKeyHash> cache;
    std::list<dnnl_detail::OpKey> recency;  // most recently used first
    std::size_t capacity;

    dnnl_detail::BoundPrimitive* find(const dnnl_detail::OpKey& key) {
        auto it = cache.find(key);
        if (it == cache.end()) return nullptr;
        recency.splice(recency.begin(), recency, it->second.order);
        return &it->second.bound;
    }
    dnnl_detail::BoundPrimitive& insert(const dnnl_detail::OpKey& key, dnnl_detail::BoundPrimitive bound);
    void execute(dnnl_detail::BoundPrimitive& bound);

    // Scratch for the low-precision matmuls' converted inputs and int8 partial results: each grows to the
    // largest call and is reused, so steady-state decoding allocates nothing.
    std::vector<int8_t> s8;
    std::vector<uint16_t> bf16;
    std::vector<float> in, out;
    std::vector<float> row_scales;
    int8_t* scratch_s8(int64_t n) { return grow(s8, n); }
    uint16_t* scratch_bf16(int64_t n) { return grow(bf16, n); }
    float* scratch_in(int64_t n) { return grow(in, n); }
    float* scratch_out(int64_t n) { return grow(out, n); }
    float* scratch_row_scales(int64_t n) { return grow(row_scales, n); }
    // Lent to every primitive this context executes, sized to the largest; page-aligned like oneDNN's own.
    struct FreeAligned {
        void operator()(void* p) const { std::free(p); }
    };
    std::unique_ptr<void, FreeAligned> scratchpad;
    std::size_t scratchpad_bytes = 0;
    void* scratchpad_for(std::size_t bytes);

private:
    template <typename T>
    static T* grow(std::vector<T>& v, int64_t n) {
        if (v.size() < static_cast<std::size_t>(n)) v.resize(static_cast<std::size_t>(n));
        return v.data();
    }
};

}  // namespace tolk
