// Linear: y = act(x * W^T + b) on a oneDNN matmul, with W converted once to its compute precision (f32, bf16, or
// s8 with a scale per output channel), prepacked into the layout the kernel wants, and one primitive per row
// count, built on first use and cached in the caller's DnnlContext; or, on CPUs without AVX-512 (see LinearKernel),
// on tolk's panel kernel (f32, int8) or oneDNN's packed gemm, W packed once for it and any row count run as it is.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <utility>
#include <vector>
#include <string>
#include <string_view>

#include "core/heap.h"
#include "core/tensor.h"
#include "dnnl/compute_type.h"
#include "dnnl/context.h"

namespace tolk {

namespace dnnl_detail {
struct BoundPrimitive;
}

// Elementwise activation fused into a matmul as a oneDNN post-op.
enum class Activation { none, relu, gelu, swish };

// The kernel a Linear built from now on runs its products on. `automatic`: on CPUs without AVX-512 (where the
// matmul primitive runs on oneDNN's jit gemm, which repacks the weights on every call) f32 and int8 on tolk's panel
// kernel (lib/core/panel_gemm.h, AVX2), everything else on the matmul primitive (brgemm with weights blocked once
// from AVX-512 on). `packed_gemm` puts f32 and int8 on oneDNN's packed gemm; `panel` puts them on the panel kernel
// (on any CPU with AVX2); bf16 always runs on the matmul primitive. Tests force each kernel on any CPU.
// Process-wide; a Linear keeps the kernel it was built for.
enum class LinearKernel { automatic, matmul, packed_gemm, panel };
void set_linear_kernel(LinearKernel kernel);
LinearKernel linear_kernel();

// Maps a config's activation_function ("swish"/"silu", "gelu", "relu") to an Activation; throws naming the
// value otherwise. "gelu" is the exact (erf) GELU, as transformers' ACT2FN["gelu"].
Activation activation_from_name(std::string_view name);

class Linear {
public:
    Linear();
    // weight: [out_features, in_features] (PyTorch's layout); bias: [out_features] or [1, out_features], or
    // nullptr for none. `name` identifies the layer in errors and reports (e.g. "model.encoder.layers.0.fc1").
    // `type`: the matmul precision. f32 computes exactly the reference's products; bf16 rounds x and W to bf16
    // and accumulates in f32; s8 quantizes W per output channel here and x per row on every call (oneDNN int8
    // matmul to f32, then the row scale, bias, residual and activation in f32). With an arena the packed weights
    // live in it (kept alive by this layer), else oneDNN allocates them.
    Linear(const Tensor& weight, const Tensor* bias, Activation activation, std::string name,
           MatmulType type = MatmulType::f32, std::shared_ptr<PageArena> arena = nullptr);
    Linear(Linear&&) noexcept;
    Linear& operator=(Linear&&) noexcept;
    ~Linear();

    // y[rows, out_features] = act(x[rows, in_features] * W^T + b). With accumulate, y += x * W^T + b instead
    // (a fused residual add: oneDNN's sum post-op); accumulate needs Activation::none.
    void forward(DnnlContext& ctx, const float* x, float* y, int64_t rows, bool accumulate = false) const;

    // y_i[rows, out_i] = act_i(x * W_i^T + b_i) for several Linears of the same input width and precision (the
    // q/k/v projections): x is padded, converted or quantized once for all of them.
    static void forward_same_input(DnnlContext& ctx, const float* x, int64_t rows,
                                   std::initializer_list<std::pair<const Linear*, float*>> outputs);

    // The implementation oneDNN picks for `rows` rows (builds and caches the primitive if needed), "packed gemm"
    // for a Linear on oneDNN's packed gemm, or "panel gemm" on tolk's panel kernel.
    std::string implementation(DnnlContext& ctx, int64_t rows, bool accumulate = false) const;
    // Whether this Linear runs on weights packed for a gemm that takes any row count (oneDNN's packed gemm or
    // tolk's panel kernel, see LinearKernel) rather than on matmul primitives.
    bool on_packed_gemm() const;
    // Whether that gemm is tolk's panel kernel.
    bool on_panel_gemm() const;

    // Where the f32 weights sit in their packed layout: W[n][k] (PyTorch's [out_features, in_features]) is
    // data[row_offset[n] + column_offset[k]]. A blocked layout's offset is a sum of one term per dimension, so
    // two tables describe it. Lets a tied embedding table read its rows from the output projection instead of
    // keeping its own copy. Empty (data nullptr) unless the layer is f32 and its layout is a blocked one.
    struct PackedRows {
        const float* data = nullptr;
        std::vector<int64_t> row_offset;     // [out_features]
        std::vector<int64_t> column_offset;  // [in_features]
        std::shared_ptr<const void> owner;   // keeps the packed weights alive
    };
    PackedRows packed_rows() const;

    MatmulType type() const { return type_; }
    // Bytes of packed weights (and bias and scales) this layer holds.
    std::size_t packed_bytes() const;
    int64_t in_features() const { return in_features_; }
    int64_t out_features() const { return out_features_; }
    const std::string& name() const { return name_; }

private:
    struct Packed;
    dnnl_detail::BoundPrimitive& bind(DnnlContext& ctx, int64_t rows, bool accumulate) const;
    dnnl_detail::BoundPrimitive& bind_activation(DnnlContext& ctx, int64_t rows) const;  // s8: eltwise after
    // x as the matmul reads it: itself, or padded to `padded` rows / converted to bf16 / quantized (with the row
    // scales) in the context's scratch.
    const void* stage_input(DnnlContext& ctx, const float* x, int64_t rows, int64_t padded) const;
    void run_staged(DnnlContext& ctx, const void* src, float* y, int64_t rows, int64_t padded, bool accumulate) const;
    void run_packed_gemm(DnnlContext& ctx, const void* src, float* y, int64_t rows, bool accumulate) const;
    void apply_activation(DnnlContext& ctx, float* y, int64_t rows) const;

    std::shared_ptr<const Packed> packed_;  // prepacked weights and bias, immutable, shared by all threads
    int64_t in_features_ = 0;
    int64_t out_features_ = 0;
    Activation activation_ = Activation::none;
    MatmulType type_ = MatmulType::f32;
    bool one_row_pieces_ = false;  // up to 4 rows run as 1-row products (see the constructor)
    std::string name_;
};

}  // namespace tolk
