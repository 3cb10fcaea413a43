// Linear on oneDNN matmul: weights converted once (f32, bf16, or s8 per output channel) and reordered into the
// blocked layout brgemm wants, bias {1, N}, fused activation or residual-sum post-ops (f32, bf16) or an f32
// epilogue (s8), and per-row-count primitives cached in the calling context. Or, without AVX-512, on weights packed
// once for a gemm that takes any row count: tolk's panel kernel (f32 and int8, lib/core/panel_gemm.h; scales, bias
// and activation in its own epilogue) or, without AVX2 or when a test forces it, oneDNN's packed gemm (the int32
// products then the same epilogue as the matmul's).
#include "dnnl/linear.h"

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/panel_gemm.h"
#include "dnnl/dnnl_internal.h"
#include "dnnl/packed_gemm.h"
#include "dnnl/quantize.h"

namespace tolk {

using dnnl_detail::BoundPrimitive;
using dnnl_detail::make_pd;
using dnnl_detail::md_str;
using dnnl_detail::OpKey;
using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

Activation activation_from_name(std::string_view name) {
    if (name == "swish" || name == "silu") return Activation::swish;
    if (name == "gelu") return Activation::gelu;
    if (name == "relu") return Activation::relu;
    TOLK_FAIL("activation_function '", name, "' is not supported (expected swish, silu, gelu or relu)");
}

struct Linear::Packed {
    dnnl::memory::desc weights_md;    // the blocked layout chosen once at load
    dnnl::memory weights;             // owned by oneDNN, in weights_md (f32, bf16 or s8)
    dnnl::memory bias;                // {1, out_features} f32 for the f32 and bf16 matmuls, or empty
    std::vector<float> bias_values;   // s8 or packed gemm: [out_features], added by the epilogue (empty: no bias)
    std::vector<float> column_scales; // s8: [out_features] weight scales, the matmul's static output scales
    std::vector<float> column_shift;  // s8 with u8 sources: [out_features] 128 * sum_k W[n, k], taken off after
    std::shared_ptr<PageArena> arena; // holds the weights' memory when they live in an arena
    // On the packed gemm (weights_md and weights then empty): W packed for it, in the arena or in gemm_storage.
    const void* gemm_weights = nullptr;
    std::size_t gemm_bytes = 0;
    std::unique_ptr<void, decltype(&std::free)> gemm_storage{nullptr, &std::free};
    bool u8_sources = false;          // s8: activations staged as unsigned bytes q + 128 (see u8_sources())
    bool panel = false;               // f32, s8: gemm_weights are packed for tolk's panel kernel, not oneDNN's
};

namespace {

// The row count the weight layout is chosen for. oneDNN 2.6 picks the same blocked layout for every row count
// on AVX-512 (checked from 1 to 4096 rows, 1 to 16 threads), and a primitive for any other row count accepts it,
// so one packed copy serves all shapes.
constexpr int64_t packing_rows = 32;

dnnl::algorithm eltwise_algorithm(Activation activation) {
    switch (activation) {
        case Activation::relu: return dnnl::algorithm::eltwise_relu;
        case Activation::gelu: return dnnl::algorithm::eltwise_gelu_erf;
        case Activation::swish: return dnnl::algorithm::eltwise_swish;
        case Activation::none: break;
    }
    return dnnl::algorithm::undef;
}

dt data_type(MatmulType type) {
    switch (type) {
        case MatmulType::f32: return dt::f32;
        case MatmulType::bf16: return dt::bf16;
        case MatmulType::s8: return dt::s8;
    }
    return dt::f32;
}

// Int8 sources as unsigned bytes (q + 128) on CPUs without VNNI. There oneDNN 2.6 runs int8 matmuls on its
// jit gemm, which multiplies u8 by s8 natively; given s8 sources it also sums the weights' columns for the shift
// on every call: one 256 x 8001 row took 2.0-3.2 ms with s8 sources and 0.47 ms with u8 (AMD Zen 3, one thread,
// cold caches: scripts/bench/onednn_micro.cpp layouts s8|u8 256 8001 1).
// Here the shift is summed once at load and subtracted in the epilogue. With VNNI, the brgemm kernels read s8
// sources through a weight layout that carries those sums.
// The packed gemm's int8 entry point multiplies unsigned by signed bytes too.
bool u8_sources(bool packed_gemm) { return packed_gemm || !cpu_has_vnni(); }

std::atomic<LinearKernel> kernel_choice{LinearKernel::automatic};

// Whether a Linear of this type runs on oneDNN's packed gemm (see LinearKernel). On CPUs without AVX-512 the matmul
// primitive runs its products on oneDNN's jit gemm, which copies the weights into its panel layout on every call
// (and, for int8, sums them again); the packed gemm is the same family of kernels with the weights packed once, at
// load. One thread, cold caches, oneDNN limited to AVX2 on an AMD Zen 5 (scripts/bench/onednn_micro.cpp packed
// u8|f32 K N 1,2,4,8,16,32,128), packed gemm time over the matmul's:
//   - int8 (u8 x s8): 0.52-0.57 at 1 row, 0.68-0.71 at 4, 0.77-0.88 at 16, 0.92-0.95 at 128 rows (256 -> 8001,
//     256 -> 256, 256 -> 1024, 1024 -> 256);
//   - f32: 1.03-1.55 at 1 row (the matmul's one-row path is faster), 0.88-1.01 from 2 rows on, against the layouts
//     Linear gives the matmul there; and the tied embedding could no longer read its rows from the projection.
// So int8 took the packed gemm there (now the panel kernel where there is AVX2: see runs_on_panel); f32 stays on the
// matmul primitive unless a test forces the packed gemm. With
// AVX-512 VNNI the brgemm matmul is as fast or faster (AMD Zen 5, tolk int8 with every s8 Linear on the packed
// gemm: Multi30k beam 4 1.69-1.70 s against 1.60-1.63 s, greedy the same; 200 lines one at a time, beam 4, 0.52
// against 0.48 s), so the packed gemm is for CPUs without AVX-512 only.
// Returns the bytes of packed weights when it does, else 0.
std::size_t packed_gemm_bytes(MatmulType type, int64_t n, int64_t k) {
    if (type == MatmulType::bf16) return 0;
    const LinearKernel choice = kernel_choice.load(std::memory_order_relaxed);
    if (choice == LinearKernel::matmul) return 0;
    if (choice != LinearKernel::packed_gemm && (type != MatmulType::s8 || cpu_has_avx512())) return 0;
    return packed_gemm::packed_size(type == MatmulType::s8 ? packed_gemm::Kind::s8 : packed_gemm::Kind::f32, n, k);
}

// Whether an f32 Linear runs on tolk's panel kernel (lib/core/panel_gemm.h) instead. Without AVX-512 the matmul
// primitive's jit gemm copies the weights into its panels on every call and runs 2-8 rows through its general
// path; the panel kernel reads weights packed once and runs any row count in register tiles of up to 6 rows. One
// thread, cold caches, oneDNN held to AVX2 on an AMD Zen 5, against the layouts Linear gave the matmul there
// (scripts/bench/onednn_micro.cpp panel K N 1,2,4,8,16,32,128 for 256 x 256, 256 x 1024, 1024 x 256, 256 x 8001),
// panel time over the matmul's: 1 row 0.64-0.93, 2 rows 0.44-0.65, 4 rows 0.50-0.90, 8 rows 0.66-0.94, 16 rows
// 0.78-0.96, 32 rows 0.88-1.03, 128 rows 0.97-1.02 (both at the FMA units' limit there).
// int8 there runs on the panel kernel's int8 variant, which turns the products into floats in registers instead of
// through an int32 buffer and a second pass, and applies relu or swish there too (oneDNN's packed gemm, then the
// eltwise primitive): Multi30k, int8, held to AVX2 on the Zen 5, 3 alternating runs, 2.55 -> 2.31 s at beam 4,
// 0.98 -> 0.95 s greedy.
bool runs_on_panel(MatmulType type) {
    if (type == MatmulType::bf16 || !panel_gemm::available()) return false;
    const LinearKernel choice = kernel_choice.load(std::memory_order_relaxed);
    return choice == LinearKernel::panel || (choice == LinearKernel::automatic && !cpu_has_avx512());
}

// Whether W stays as it is ([out, in] row-major: "ba" of the {in, out} matmul weight) instead of the layout
// oneDNN picks ("ab" on its jit gemm, blocked on brgemm). On CPUs without AVX-512, oneDNN 2.6 runs matmuls on its
// jit gemm, which reads some shapes faster one way and some the other (AMD Zen 3, one thread, cold caches,
// scripts/bench/onednn_micro.cpp layouts):
//   - u8 sources (int8 without VNNI): [out, in] 1.1x-1.5x faster at 1-16 rows (256 -> 256 and 256 -> 8001),
//     within 10% either way for 256 -> 1024;
//   - f32, out_features 4x in_features (the feed-forward's first matmul, 256 -> 1024): [out, in] 1.4x-1.8x faster
//     from 8 rows on; square, narrowing (1024 -> 256) and vocabulary (256 -> 8001) shapes run faster as "ab".
bool gemm_keeps_rows(MatmulType type, dt source, int64_t in, int64_t out) {
    if (source == dt::u8) return true;
    return type == MatmulType::f32 && !cpu_has_avx512() && out > in && out <= 4 * in;
}

// Each row count needs its own primitive (~0.2 ms of JIT compilation and ~50 kB kept, measured), so rows run as
// pieces of a few sizes: chunks of kMaxChunkRows, then the multiple of 16 below what is left, then the rest (below
// 16) rounded up to an even count (from 5; an extra row there costs next to nothing: reading the weights
// dominates). 37 rows run as 32 + 6 (5 of them real). The sizes are 1-4, the even counts 6-16 and the multiples of 16
// up to 128: 17 primitives per Linear shape cover every batch, with no padding above 16 rows, where oneDNN's f32
// matmul runs as fast on 16 rows as on 32 (210 and 204 GFLOP/s for 256x256, one thread, AMD Zen 5:
// scripts/bench/onednn_micro.cpp matmul 256 256 16,32,128).
// Before bucketing, one 1,000-line corpus made 1,840 primitives (360 ms); encoder batches (sentences x tokens)
// reuse the decoder's sizes instead of adding ~5 primitives (one per Linear shape) for every new row count.
constexpr int64_t kMaxChunkRows = 128;
constexpr int64_t kRowGranule = 16;

int64_t row_bucket(int64_t rows) {
    if (rows <= 4) return rows;
    if (rows <= kRowGranule) return (rows + 1) / 2 * 2;
    return rows;  // a multiple of kRowGranule (see first_piece)
}

// Up to this many rows run one row at a time where Linear::one_row_pieces_ says so.
constexpr int64_t kOneRowPieces = 4;

// The size of the first piece of `left` rows: kMaxChunkRows, a multiple of kRowGranule or below kRowGranule (or 1).
int64_t first_piece(int64_t left, bool one_row_pieces) {
    if (left >= kMaxChunkRows) return kMaxChunkRows;
    if (one_row_pieces && left <= kOneRowPieces) return 1;
    return left > kRowGranule ? left / kRowGranule * kRowGranule : left;
}

// Calls run(begin, rows) for the consecutive pieces of [0, total).
template <typename Run>
void for_each_piece(int64_t total, bool one_row_pieces, Run&& run) {
    for (int64_t begin = 0; begin < total;) {
        const int64_t rows = first_piece(total - begin, one_row_pieces);
        run(begin, rows);
        begin += rows;
    }
}

// The packed gemm needs no primitive per row count: it takes chunks of kMaxChunkRows and the rest as they are, so
// that 100 rows read the weights once, not twice (96 + 4). The chunks bound the scratch its products go through.
template <typename Run>
void for_each_gemm_piece(int64_t total, Run&& run) {
    for (int64_t begin = 0; begin < total; begin += kMaxChunkRows) run(begin, std::min(kMaxChunkRows, total - begin));
}

dnnl::primitive_attr make_attr(Activation activation, bool accumulate) {
    dnnl::post_ops ops;
    switch (activation) {
        case Activation::none: break;
        case Activation::relu: ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f); break;
        case Activation::gelu: ops.append_eltwise(1.f, dnnl::algorithm::eltwise_gelu_erf, 0.f, 0.f); break;
        case Activation::swish: ops.append_eltwise(1.f, dnnl::algorithm::eltwise_swish, 1.f, 0.f); break;
    }
    if (accumulate) ops.append_sum(1.f);
    dnnl::primitive_attr attr;
    attr.set_post_ops(ops);
    return attr;
}

const char* activation_name(Activation a) {
    switch (a) {
        case Activation::none: return "";
        case Activation::relu: return "+relu";
        case Activation::gelu: return "+gelu";
        case Activation::swish: return "+swish";
    }
    return "";
}

}  // namespace

void set_linear_kernel(LinearKernel kernel) { kernel_choice.store(kernel, std::memory_order_relaxed); }
LinearKernel linear_kernel() { return kernel_choice.load(std::memory_order_relaxed); }

Linear::Linear() = default;
Linear::Linear(Linear&&) noexcept = default;
Linear& Linear::operator=(Linear&&) noexcept = default;
Linear::~Linear() = default;

Linear::Linear(const Tensor& weight, const Tensor* bias, Activation activation, std::string name, MatmulType type,
               std::shared_ptr<PageArena> arena)
    : activation_(activation), type_(type), name_(std::move(name)) {
    TOLK_CHECK(weight.rank() == 2 && weight.dtype() == DType::f32, name_, ": weight must be a 2-D f32 tensor, got ",
               dtype_name(weight.dtype()), " ", shape_str(weight.shape()));
    out_features_ = weight.dim(0);
    in_features_ = weight.dim(1);
    TOLK_CHECK(out_features_ > 0 && in_features_ > 0, name_, ": empty weight ", shape_str(weight.shape()));
    if (bias) {
        TOLK_CHECK(bias->dtype() == DType::f32 && bias->numel() == out_features_ && bias->dim(-1) == out_features_,
                   name_, ": bias has shape ", shape_str(bias->shape()), ", expected [", out_features_, "]");
    }

    const auto& engine = dnnl_detail::cpu_engine();
    const int64_t n = out_features_, k = in_features_;
    auto packed = std::make_shared<Packed>();
    // Storage for weights packed by tolk or by oneDNN's packed gemm: in the arena or on the heap, 64-byte aligned.
    const auto gemm_storage = [&](std::size_t bytes) {
        packed->gemm_bytes = bytes;
        if (arena) {
            packed->arena = std::move(arena);
            return packed->arena->allocate(bytes);
        }
        void* storage = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
        TOLK_CHECK(storage != nullptr, name_, ": out of memory for ", bytes, " bytes of weights");
        packed->gemm_storage.reset(storage);
        return storage;
    };
    const bool panel = runs_on_panel(type_);
    if (panel && type_ == MatmulType::f32) {
        auto* storage = static_cast<float*>(gemm_storage(panel_gemm::packed_floats(n, k) * sizeof(float)));
        panel_gemm::pack(weight.f32(), n, k, storage);
        packed->gemm_weights = storage;
        packed->panel = true;
        if (bias) packed->bias_values.assign(bias->f32(), bias->f32() + n);
        packed_ = std::move(packed);
        return;
    }
    const std::size_t gemm_bytes = panel ? 0 : packed_gemm_bytes(type_, n, k);
    const bool gemm = gemm_bytes > 0;
    packed->u8_sources = type_ == MatmulType::s8 && (panel || u8_sources(gemm));
    const dt wdt = data_type(type_);
    const dt sdt = packed->u8_sources ? dt::u8 : wdt;
    const dnnl::memory::desc src_md({packing_rows, k}, sdt, tag::ab);
    const dnnl::memory::desc any_md({k, n}, wdt, tag::any);
    const dnnl::memory::desc bias_md({1, n}, dt::f32, tag::ab);
    const dnnl::memory::desc dst_md({packing_rows, n}, dt::f32, tag::ab);
    const std::string what = "matmul for " + name_ + " (weights " + matmul_type_name(type_) + " [" +
                             std::to_string(n) + "," + std::to_string(k) + "])";
    // The source of the reorder into the packed layout: W itself, or W converted to bf16 or s8 (same layout).
    std::vector<uint16_t> w_bf16;
    std::vector<int8_t> w_s8;
    const void* plain_data = weight.f32();
    if (type_ == MatmulType::bf16) {
        w_bf16.resize(static_cast<std::size_t>(n * k));
        to_bf16(weight.f32(), n * k, w_bf16.data());
        plain_data = w_bf16.data();
    } else if (type_ == MatmulType::s8) {
        // Row n of W is output channel n: one scale each, so a channel with small weights keeps its precision.
        // Without VNNI, oneDNN multiplies u8 activations (q + 128, see u8_sources) by s8 weights with vpmaddubsw,
        // whose pairwise int16 sums saturate past 32767: weights within +-63 keep 2 * 255 * 63 below that, at the
        // cost of one bit of weight precision (measured: up to 6x the expected error with +-127 on AVX2). The
        // panel kernel multiplies that way on any CPU.
        const int limit = cpu_has_vnni() && !panel ? 127 : 63;
        w_s8.resize(static_cast<std::size_t>(n * k));
        packed->column_scales.resize(static_cast<std::size_t>(n));
        quantize_rows_s8(weight.f32(), n, k, w_s8.data(), packed->column_scales.data(), limit);
        for (float scale : packed->column_scales)
            TOLK_CHECK(std::isfinite(scale), name_, ": weights are not finite (NaN or infinity)");
        plain_data = w_s8.data();
        if (bias) packed->bias_values.assign(bias->f32(), bias->f32() + n);
        if (sdt == dt::u8) {
            packed->column_shift.resize(static_cast<std::size_t>(n));
            for (int64_t row = 0; row < n; ++row) {
                int64_t sum = 0;
                for (int64_t col = 0; col < k; ++col) sum += w_s8[static_cast<std::size_t>(row * k + col)];
                packed->column_shift[static_cast<std::size_t>(row)] = static_cast<float>(128 * sum);
            }
        }
        if (panel) {
            auto* storage = static_cast<int8_t*>(gemm_storage(panel_gemm::packed_bytes_s8(n, k)));
            panel_gemm::pack_s8(w_s8.data(), n, k, storage);
            packed->gemm_weights = storage;
            packed->panel = true;
            packed_ = std::move(packed);
            return;
        }
    }
    if (gemm) {
        const auto kind = type_ == MatmulType::s8 ? packed_gemm::Kind::s8 : packed_gemm::Kind::f32;
        void* storage = gemm_storage(gemm_bytes);
        packed_gemm::pack(kind, plain_data, n, k, storage, name_.c_str());
        packed->gemm_weights = storage;
        if (bias && type_ == MatmulType::f32) packed->bias_values.assign(bias->f32(), bias->f32() + n);
        packed_ = std::move(packed);
        return;
    }
    const bool primitive_bias = bias && type_ != MatmulType::s8;
    // The implementation oneDNN picks for `rows` rows and the weights in `weights_md` (a descriptor only: no
    // kernel is generated), or "" where it has none.
    const auto implementation_for = [&](int64_t rows, const dnnl::memory::desc& weights_md) {
        try {
            const dnnl::matmul::desc desc(dnnl::memory::desc({rows, k}, sdt, tag::ab), weights_md,
                                          primitive_bias ? bias_md : dnnl::memory::desc(),
                                          dnnl::memory::desc({rows, n}, dt::f32, tag::ab));
            return dnnl::matmul::primitive_desc(desc, engine);
        } catch (const dnnl::error&) {
            return dnnl::matmul::primitive_desc();
        }
    };
    const auto is_reference = [](const dnnl::matmul::primitive_desc& pd) {
        return !pd || std::string_view(pd.impl_info_str()).starts_with("ref");
    };
    const dnnl::memory::desc given_md =
        gemm_keeps_rows(type_, sdt, k, n) ? dnnl::memory::desc({k, n}, wdt, tag::ba) : any_md;
    auto pd = make_pd(what, [&] {
        return dnnl::matmul::primitive_desc(
            dnnl::matmul::desc(src_md, given_md, primitive_bias ? bias_md : dnnl::memory::desc(), dst_md), engine);
    });
    packed->weights_md = pd.weights_desc();
    // On a CPU with AMX, oneDNN 2.6 lays int8 weights out for its AMX kernel, which it picks only when a product
    // has enough rows (2 for 256 inputs, 9 for 32); fewer rows go to the AVX-512 VNNI kernel, which does not read
    // that layout (it wants s8 compensation sums appended), leaving the reference kernel for them: measured
    // 1.7 ms instead of ~0.01 ms for one row of 256x256. The layout chosen for one row serves both kernels, so
    // it is taken instead wherever the first one fails a single row.
    if (is_reference(implementation_for(1, packed->weights_md))) {
        const auto one_row = implementation_for(1, any_md);
        if (!is_reference(one_row) && !is_reference(implementation_for(packing_rows, one_row.weights_desc())))
            packed->weights_md = one_row.weights_desc();
    }
    try {
        // W is [out, in] row-major, which is the {in, out} matmul weight with strides {1, in} ("ba").
        const dnnl::memory::desc plain_md({k, n}, wdt, tag::ba);
        dnnl::memory plain(plain_md, engine, const_cast<void*>(plain_data));
        if (arena) {
            packed->weights =
                dnnl::memory(packed->weights_md, engine, arena->allocate(packed->weights_md.get_size()));
            packed->arena = std::move(arena);
        } else {
            packed->weights = dnnl::memory(packed->weights_md, engine);
        }
        dnnl::stream stream(engine);
        dnnl::reorder(plain, packed->weights).execute(stream, plain, packed->weights);
        stream.wait();
        if (primitive_bias) {
            packed->bias = dnnl::memory(bias_md, engine);
            std::memcpy(packed->bias.get_data_handle(), bias->f32(), static_cast<std::size_t>(n) * sizeof(float));
        }
    } catch (const dnnl::error& e) {
        TOLK_FAIL("oneDNN cannot prepack the weights of ", name_, " [", n, ",", k, "]: ", e.what());
    }
    packed_ = std::move(packed);
    // oneDNN's jit gemm (CPUs without AVX-512) multiplies one f32 row by a wide W on a fast one-row path, but
    // 2-4 rows through its general path, which costs more than running them one by one: 256 x 8001 (the
    // vocabulary projection), cold caches, one thread, AMD Zen 3: 1 row 0.21-0.33 ms, 2 rows 2.0-2.1 ms, 4 rows
    // 1.7 ms, 8 rows 1.4-2.1 ms (scripts/bench/onednn_micro.cpp layouts f32 256 8001 1,2,4,8, two runs). Narrower
    // shapes gain nothing (256 x 256: 2 rows 10.7 us, 1 row 6.1 us), so this is for products at least 16 times
    // wider than deep.
    one_row_pieces_ = type_ == MatmulType::f32 && !cpu_has_avx512() && out_features_ >= 16 * in_features_;
}

Linear::PackedRows Linear::packed_rows() const {
    PackedRows rows;
    if (!packed_ || type_ != MatmulType::f32) return rows;
    if (packed_->panel) {
        // Element (n, k) at (n / 16 * in_features + k) * 16 + n % 16 (see panel_gemm::pack).
        const int64_t width = panel_gemm::kPanelWidth;
        rows.row_offset.resize(static_cast<std::size_t>(out_features_));
        for (int64_t n = 0; n < out_features_; ++n)
            rows.row_offset[static_cast<std::size_t>(n)] = n / width * in_features_ * width + n % width;
        rows.column_offset.resize(static_cast<std::size_t>(in_features_));
        for (int64_t k = 0; k < in_features_; ++k) rows.column_offset[static_cast<std::size_t>(k)] = k * width;
        rows.data = static_cast<const float*>(packed_->gemm_weights);
        rows.owner = packed_;
        return rows;
    }
    const dnnl_memory_desc_t& md = packed_->weights_md.data;
    if (md.format_kind != dnnl_blocked || md.ndims != 2) return rows;
    const dnnl_blocking_desc_t& blocking = md.format_desc.blocking;
    // The offset of logical index (k, n) of the {in, out} matmul weight, as oneDNN lays out a blocked
    // descriptor: inner blocks innermost (last block fastest), then each dimension's block number times its
    // stride. Every term depends on one dimension only.
    const auto dimension_offsets = [&](int dim, int64_t size) {
        std::vector<int64_t> offsets(static_cast<std::size_t>(size));
        for (int64_t i = 0; i < size; ++i) {
            int64_t index = i + md.padded_offsets[dim], inner = 0, inner_stride = 1;
            for (int b = blocking.inner_nblks - 1; b >= 0; --b) {
                const int64_t block = blocking.inner_blks[b];
                if (blocking.inner_idxs[b] == dim) {
                    inner += (index % block) * inner_stride;
                    index /= block;
                }
                inner_stride *= block;
            }
            offsets[static_cast<std::size_t>(i)] = inner + index * blocking.strides[dim];
        }
        return offsets;
    };
    rows.column_offset = dimension_offsets(0, in_features_);
    rows.row_offset = dimension_offsets(1, out_features_);
    for (int64_t& offset : rows.row_offset) offset += md.offset0;
    rows.data = static_cast<const float*>(packed_->weights.get_data_handle());
    rows.owner = packed_;
    return rows;
}

std::size_t Linear::packed_bytes() const {
    if (!packed_) return 0;
    std::size_t bytes = packed_->weights_md.get_size() + packed_->gemm_bytes;
    if (packed_->bias) bytes += packed_->bias.get_desc().get_size();
    return bytes + (packed_->bias_values.size() + packed_->column_scales.size() + packed_->column_shift.size()) *
                       sizeof(float);
}

BoundPrimitive& Linear::bind(DnnlContext& ctx, int64_t rows, bool accumulate) const {
    TOLK_CHECK(packed_ != nullptr, "Linear used before it was built");
    TOLK_CHECK(rows > 0, name_, ": row count must be positive, got ", rows);
    TOLK_CHECK(!accumulate || activation_ == Activation::none, name_,
               ": a fused residual sum cannot follow an activation");
    const bool s8 = type_ == MatmulType::s8;
    const bool has_bias = static_cast<bool>(packed_->bias);
    // A primitive does not own its weights (they are an argument), so every Linear of the same shape, precision
    // and post-ops shares one primitive per row count; the s8 matmul has no post-ops at all (its scales, bias,
    // residual and activation are applied after it).
    auto& impl = ctx.impl();
    OpKey key;
    key.op = dnnl_detail::op_linear;
    key.v = {rows, in_features_, out_features_, static_cast<int64_t>(type_), has_bias,
             s8 ? 0 : static_cast<int64_t>(activation_), s8 ? 0 : accumulate, packed_->u8_sources, 0, 0, 0, 0};
    if (BoundPrimitive* found = impl.find(key)) return *found;

    const auto& engine = dnnl_detail::cpu_engine();
    const dnnl::memory::desc src_md({rows, in_features_}, packed_->u8_sources ? dt::u8 : data_type(type_), tag::ab);
    const dnnl::memory::desc dst_md({rows, out_features_}, dt::f32, tag::ab);
    const dnnl::memory::desc bias_md = has_bias ? packed_->bias.get_desc() : dnnl::memory::desc();
    BoundPrimitive bound;
    bound.description = "matmul " + name_ + " src " + md_str(src_md) + " weights " + md_str(packed_->weights_md) +
                        (has_bias ? " bias " + md_str(bias_md) : std::string()) + " dst " + md_str(dst_md) +
                        (s8 ? std::string() : std::string(activation_name(activation_)) + (accumulate ? "+sum" : ""));
    auto pd = make_pd(bound.description, [&] {
        const dnnl::matmul::desc desc(src_md, packed_->weights_md, bias_md, dst_md);
        return dnnl::matmul::primitive_desc(
            desc, dnnl_detail::with_user_scratchpad(s8 ? dnnl::primitive_attr() : make_attr(activation_, accumulate)),
            engine);
    });
    bound.impl = pd.impl_info_str();
    bound.scratchpad = pd.scratchpad_desc();
    bound.primitive = dnnl::matmul(pd);
    bound.args = {{DNNL_ARG_SRC, dnnl::memory(src_md, engine, nullptr)},
                  {DNNL_ARG_WEIGHTS, dnnl::memory(packed_->weights_md, engine, nullptr)},
                  {DNNL_ARG_DST, dnnl::memory(dst_md, engine, nullptr)}};
    if (has_bias) bound.args.emplace(DNNL_ARG_BIAS, dnnl::memory(bias_md, engine, nullptr));
    return impl.insert(key, std::move(bound));
}

BoundPrimitive& Linear::bind_activation(DnnlContext& ctx, int64_t rows) const {
    auto& impl = ctx.impl();
    OpKey key;
    key.op = dnnl_detail::op_activation;
    key.v[0] = rows;
    key.v[1] = out_features_;
    key.v[2] = static_cast<int64_t>(activation_);
    if (BoundPrimitive* found = impl.find(key)) return *found;
    const auto& engine = dnnl_detail::cpu_engine();
    const dnnl::memory::desc md({rows, out_features_}, dt::f32, tag::ab);
    const float alpha = activation_ == Activation::swish ? 1.f : 0.f;
    BoundPrimitive bound;
    bound.description = "eltwise " + name_ + activation_name(activation_) + " " + md_str(md);
    auto pd = make_pd(bound.description, [&] {
        return dnnl::eltwise_forward::primitive_desc(
            dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_inference, eltwise_algorithm(activation_), md,
                                        alpha, 0.f),
            dnnl_detail::with_user_scratchpad(), engine);
    });
    bound.impl = pd.impl_info_str();
    bound.scratchpad = pd.scratchpad_desc();
    bound.primitive = dnnl::eltwise_forward(pd);
    bound.args = {{DNNL_ARG_SRC, dnnl::memory(md, engine, nullptr)}, {DNNL_ARG_DST, dnnl::memory(md, engine, nullptr)}};
    return impl.insert(key, std::move(bound));
}

namespace {
void copy_floats(float* dst, const float* src, int64_t count) {
    std::memcpy(dst, src, static_cast<std::size_t>(count) * sizeof(float));
}
}  // namespace

const void* Linear::stage_input(DnnlContext& ctx, const float* x, int64_t rows, int64_t padded) const {
    // The primitive runs on `padded` rows (see row_bucket); rows below `rows` are zeros.
    auto& impl = ctx.impl();
    const int64_t k = in_features_;
    switch (type_) {
        case MatmulType::f32: {
            if (padded == rows) return x;
            float* staged = impl.scratch_in(padded * k);  // [padded, in_features]
            copy_floats(staged, x, rows * k);
            std::memset(staged + rows * k, 0, static_cast<std::size_t>((padded - rows) * k) * sizeof(float));
            return staged;
        }
        case MatmulType::bf16: {
            uint16_t* staged = impl.scratch_bf16(padded * k);  // [padded, in_features]
            to_bf16(x, rows * k, staged);
            std::memset(staged + rows * k, 0, static_cast<std::size_t>((padded - rows) * k) * sizeof(uint16_t));
            return staged;
        }
        case MatmulType::s8: {
            int8_t* staged = impl.scratch_s8(padded * k);  // [padded, in_features]
            if (packed_->u8_sources)
                quantize_rows_u8_shifted(x, rows, k, reinterpret_cast<uint8_t*>(staged), impl.scratch_row_scales(rows));
            else
                quantize_rows_s8(x, rows, k, staged, impl.scratch_row_scales(rows));
            std::memset(staged + rows * k, 0, static_cast<std::size_t>((padded - rows) * k));
            return staged;
        }
    }
    return x;
}

void Linear::run_staged(DnnlContext& ctx, const void* src, float* y, int64_t rows, int64_t padded,
                        bool accumulate) const {
    const int64_t n = out_features_;
    BoundPrimitive& bound = bind(ctx, padded, accumulate);
    auto& impl = ctx.impl();
    bound.set(DNNL_ARG_WEIGHTS, packed_->weights.get_data_handle());
    if (packed_->bias) bound.set(DNNL_ARG_BIAS, packed_->bias.get_data_handle());
    bound.set(DNNL_ARG_SRC, src);
    if (type_ != MatmulType::s8) {
        // The f32 and bf16 matmuls write y themselves (bias, activation and residual sum fused).
        if (padded == rows) {
            bound.set(DNNL_ARG_DST, y);
            impl.execute(bound);
            return;
        }
        float* out = impl.scratch_out(padded * n);  // [padded, out_features]
        if (accumulate) copy_floats(out, y, rows * n);
        bound.set(DNNL_ARG_DST, out);
        impl.execute(bound);
        copy_floats(y, out, rows * n);
        return;
    }
    // The integer products (exact in f32 up to 2^24) land in y when it has the rows and is not needed for a
    // residual sum (the epilogue then scales them in place), else in scratch.
    float* product = accumulate || padded != rows ? impl.scratch_out(padded * n) : y;  // [padded, out]
    bound.set(DNNL_ARG_DST, product);
    impl.execute(bound);
    dequantize_rows(product, impl.scratch_row_scales(rows), packed_->column_scales.data(),
                    packed_->bias_values.empty() ? nullptr : packed_->bias_values.data(),
                    packed_->column_shift.empty() ? nullptr : packed_->column_shift.data(), rows, n, y, accumulate);
    apply_activation(ctx, y, rows);
}

void Linear::run_packed_gemm(DnnlContext& ctx, const void* src, float* y, int64_t rows, bool accumulate) const {
    const int64_t n = out_features_, k = in_features_;
    const float* bias = packed_->bias_values.empty() ? nullptr : packed_->bias_values.data();
    if (packed_->panel) {
        // relu and swish run in the kernel's epilogue; gelu afterwards.
        const auto epilogue = activation_ == Activation::relu    ? panel_gemm::Epilogue::relu
                              : activation_ == Activation::swish ? panel_gemm::Epilogue::swish
                                                                 : panel_gemm::Epilogue::none;
        if (type_ == MatmulType::s8) {
            const panel_gemm::Dequantize dequantize{
                ctx.impl().scratch_row_scales(rows), packed_->column_scales.data(),
                packed_->column_shift.empty() ? nullptr : packed_->column_shift.data()};
            panel_gemm::multiply_u8s8(static_cast<const int8_t*>(packed_->gemm_weights), n, k,
                                      static_cast<const uint8_t*>(src), rows, y, dequantize, bias, epilogue,
                                      accumulate, num_threads());
        } else {
            panel_gemm::multiply(static_cast<const float*>(packed_->gemm_weights), n, k,
                                 static_cast<const float*>(src), rows, y, bias, epilogue, accumulate, num_threads());
        }
        if (activation_ == Activation::gelu) apply_activation(ctx, y, rows);
        return;
    }
    if (type_ == MatmulType::s8) {
        // Integer products into scratch, then the same epilogue as the matmul primitive's.
        auto* product = reinterpret_cast<int32_t*>(ctx.impl().scratch_out(rows * n));  // [rows, out_features]
        packed_gemm::multiply_u8s8(packed_->gemm_weights, n, k, static_cast<const uint8_t*>(src), rows, product,
                                   name_.c_str());
        dequantize_rows(product, ctx.impl().scratch_row_scales(rows), packed_->column_scales.data(), bias,
                        packed_->column_shift.empty() ? nullptr : packed_->column_shift.data(), rows, n, y,
                        accumulate);
    } else {
        packed_gemm::multiply_f32(packed_->gemm_weights, n, k, static_cast<const float*>(src), rows, y, accumulate,
                                  name_.c_str());
        if (bias) add_to_rows(bias, rows, n, y);
    }
    apply_activation(ctx, y, rows);
}

void Linear::apply_activation(DnnlContext& ctx, float* y, int64_t rows) const {
    if (activation_ == Activation::none) return;
    // The eltwise primitive runs on the matmuls' bucketed pieces (one primitive per bucket), whatever row count
    // the packed gemm produced.
    const int64_t n = out_features_;
    auto& impl = ctx.impl();
    for_each_piece(rows, /*one_row_pieces=*/false, [&](int64_t begin, int64_t piece) {
        const int64_t padded = row_bucket(piece);
        BoundPrimitive& act = bind_activation(ctx, padded);
        float* rows_y = y + begin * n;  // [piece, out_features]
        float* out = rows_y;
        if (padded != piece) {
            out = impl.scratch_out(padded * n);
            copy_floats(out, rows_y, piece * n);
        }
        act.set(DNNL_ARG_SRC, out);
        act.set(DNNL_ARG_DST, out);
        impl.execute(act);
        if (out != rows_y) copy_floats(rows_y, out, piece * n);
    });
}

void Linear::forward(DnnlContext& ctx, const float* x, float* y, int64_t rows, bool accumulate) const {
    TOLK_CHECK(rows > 0, name_, ": row count must be positive, got ", rows);
    TOLK_CHECK(packed_ != nullptr, "Linear used before it was built");
    TOLK_CHECK(!accumulate || activation_ == Activation::none, name_,
               ": a fused residual sum cannot follow an activation");
    if (packed_->gemm_weights != nullptr) {
        for_each_gemm_piece(rows, [&](int64_t begin, int64_t n) {
            const void* src = stage_input(ctx, x + begin * in_features_, n, n);
            run_packed_gemm(ctx, src, y + begin * out_features_, n, accumulate);
        });
        return;
    }
    // The matmul primitives run on a few bucketed row counts.
    for_each_piece(rows, one_row_pieces_, [&](int64_t begin, int64_t n) {
        const int64_t padded = row_bucket(n);
        const void* src = stage_input(ctx, x + begin * in_features_, n, padded);
        run_staged(ctx, src, y + begin * out_features_, n, padded, accumulate);
    });
}

void Linear::forward_same_input(DnnlContext& ctx, const float* x, int64_t rows,
                                std::initializer_list<std::pair<const Linear*, float*>> outputs) {
    TOLK_CHECK(outputs.size() > 0 && rows > 0, "Linear::forward_same_input: nothing to compute");
    const Linear& first = *outputs.begin()->first;
    for (const auto& [linear, y] : outputs)
        TOLK_CHECK(linear->in_features_ == first.in_features_ && linear->type_ == first.type_ &&
                       linear->packed_ && first.packed_ &&
                       linear->packed_->u8_sources == first.packed_->u8_sources &&
                       linear->on_packed_gemm() == first.on_packed_gemm(),
                   linear->name_, ": cannot share the input of ", first.name_,
                   " (different width, precision or kernel)");
    // One conversion (padding, bf16 rounding or int8 quantization) of each chunk serves every product.
    if (first.on_packed_gemm()) {
        for_each_gemm_piece(rows, [&](int64_t begin, int64_t n) {
            const void* src = first.stage_input(ctx, x + begin * first.in_features_, n, n);
            for (const auto& [linear, y] : outputs)
                linear->run_packed_gemm(ctx, src, y + begin * linear->out_features_, n, /*accumulate=*/false);
        });
        return;
    }
    for_each_piece(rows, first.one_row_pieces_, [&](int64_t begin, int64_t n) {
        const int64_t padded = row_bucket(n);
        const void* src = first.stage_input(ctx, x + begin * first.in_features_, n, padded);
        for (const auto& [linear, y] : outputs)
            linear->run_staged(ctx, src, y + begin * linear->out_features_, n, padded, /*accumulate=*/false);
    });
}

bool Linear::on_packed_gemm() const { return packed_ && packed_->gemm_weights != nullptr; }
bool Linear::on_panel_gemm() const { return packed_ && packed_->panel; }

std::string Linear::implementation(DnnlContext& ctx, int64_t rows, bool accumulate) const {
    if (on_panel_gemm()) return "panel gemm";
    if (on_packed_gemm()) return "packed gemm";
    return bind(ctx, row_bucket(first_piece(rows, one_row_pieces_)), accumulate).impl;
}

}  // namespace tolk
