// FeedForward: Marian's position-wise block fc2(act(fc1(x))) (Hugging Face names <layer>.fc1, <layer>.fc2),
// with the activation fused into fc1 and the residual add fused into fc2.
#pragma once

#include <cstdint>
#include <string>

#include "core/tensor.h"
#include "dnnl/linear.h"
#include "model/weights.h"

namespace tolk {

struct FeedForward {
    FeedForward() = default;
    // prefix: e.g. "model.encoder.layers.0." (fc1 and fc2 sit directly in the layer).
    FeedForward(const WeightStore& weights, const std::string& prefix, Activation activation,
                MatmulType type = MatmulType::f32);

    // x[rows, d_model] += fc2(act(fc1(x))); `hidden` is scratch, resized to [rows, d_ff].
    void add_to(DnnlContext& ctx, float* x, int64_t rows, Tensor& hidden) const;

    Linear fc1;  // [d_ff, d_model], activation fused
    Linear fc2;  // [d_model, d_ff]
};

}  // namespace tolk
