// LayerNorm over the last axis with scale and shift: a vector loop of our own (core/simd.h).
#pragma once

#include <cstdint>
#include <string>

#include "core/tensor.h"
#include "dnnl/context.h"

namespace tolk {

class LayerNorm {
public:
    LayerNorm() = default;
    // gamma, beta: [dim]. `name` identifies the layer in errors (e.g. "model.encoder.layers.0.final_layer_norm").
    LayerNorm(const Tensor& gamma, const Tensor& beta, float eps, std::string name);

    // y[rows, dim] = (x - mean) / sqrt(var + eps) * gamma + beta, per row; y may equal x (in place). The mean and
    // the (biased) variance are sums of 16 lanes in a fixed order, so every vector width gives the same bits.
    // `ctx` is unused: kept so that every op of a layer takes its worker's context.
    void forward(DnnlContext& ctx, const float* x, float* y, int64_t rows) const;

    int64_t dim() const { return dim_; }

private:
    Tensor gamma_;  // [dim]
    Tensor beta_;   // [dim]
    float eps_ = 1e-5f;
    int64_t dim_ = 0;
    std::string name_;
};

}  // namespace tolk
