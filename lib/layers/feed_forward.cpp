// The feed-forward block on two fused oneDNN matmuls.
#include "layers/feed_forward.h"

namespace tolk {

FeedForward::FeedForward(const WeightStore& weights, const std::string& prefix, Activation activation, MatmulType type)
    : fc1(weights.get(prefix + "fc1.weight"), &weights.get(prefix + "fc1.bias"), activation, prefix + "fc1", type),
      fc2(weights.get(prefix + "fc2.weight"), &weights.get(prefix + "fc2.bias"), Activation::none, prefix + "fc2",
          type) {}

void FeedForward::add_to(DnnlContext& ctx, float* x, int64_t rows, Tensor& hidden) const {
    hidden.resize({rows, fc1.out_features()});  // [rows, d_ff]
    fc1.forward(ctx, x, hidden.f32(), rows);
    fc2.forward(ctx, hidden.f32(), x, rows, /*accumulate=*/true);  // [rows, d_model]
}

}  // namespace tolk
