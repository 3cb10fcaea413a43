// The feed-forward block on two fused oneDNN matmuls.
#include "layers/feed_forward.h"

#include <algorithm>

namespace tolk {

FeedForward::FeedForward(const WeightStore& weights, const std::string& prefix, Activation activation, MatmulType type) {
    const Tensor fc1_bias = weights.load(prefix + "fc1.bias");  // [d_ff]
    fc1 = Linear(weights.load(prefix + "fc1.weight"), &fc1_bias, activation, prefix + "fc1", type,
                 weights.arena());
    const Tensor fc2_bias = weights.load(prefix + "fc2.bias");  // [d_model]
    fc2 = Linear(weights.load(prefix + "fc2.weight"), &fc2_bias, Activation::none, prefix + "fc2", type,
                 weights.arena());
}

void FeedForward::add_to(DnnlContext& ctx, float* x, int64_t rows, Tensor& hidden) const {
    // Rows are independent here, so a large batch (an encoder pass over thousands of tokens) goes through in
    // chunks: the [rows, d_ff] activations, the widest buffer of the model, then never exceed
    // [ffn_chunk_rows, d_ff] (0.5 MiB at d_ff 1024), and each chunk is one full-speed piece of Linear's (128 rows).
    constexpr int64_t ffn_chunk_rows = 128;
    const int64_t d_model = fc2.out_features();
    hidden.resize({std::min(rows, ffn_chunk_rows), fc1.out_features()});  // [chunk, d_ff]
    for (int64_t begin = 0; begin < rows; begin += ffn_chunk_rows) {
        const int64_t n = std::min(ffn_chunk_rows, rows - begin);
        fc1.forward(ctx, x + begin * d_model, hidden.f32(), n);
        fc2.forward(ctx, hidden.f32(), x + begin * d_model, n, /*accumulate=*/true);  // [n, d_model]
    }
}

}  // namespace tolk
