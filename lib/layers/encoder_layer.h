// EncoderLayer: one post-norm Marian encoder block (Hugging Face names model.encoder.layers.N.*):
// x = LN(x + SelfAttn(x)); x = LN(x + FFN(x)).
#pragma once

#include <cstdint>

#include "dnnl/layer_norm.h"
#include "layers/attention.h"
#include "layers/feed_forward.h"
#include "layers/workspace.h"
#include "model/config.h"
#include "model/weights.h"

namespace tolk {

struct EncoderLayer {
    EncoderLayer(const WeightStore& weights, const ModelConfig& config, int index, MatmulType type = MatmulType::f32);

    // x: [batch * src_len, d_model], updated in place; mask: [batch, src_len] additive (padding).
    void forward(DnnlContext& ctx, float* x, int64_t batch, int64_t src_len, const float* mask,
                 Workspace& ws) const;

    MultiHeadAttention self_attn;
    LayerNorm self_attn_layer_norm;
    FeedForward ffn;  // fc1, fc2
    LayerNorm final_layer_norm;
};

}  // namespace tolk
