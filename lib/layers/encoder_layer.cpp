// The post-norm encoder block: weights by Hugging Face name and the forward pass.
#include "layers/encoder_layer.h"

#include <string>

#include "layers/norm_weights.h"

namespace tolk {

EncoderLayer::EncoderLayer(const WeightStore& weights, const ModelConfig& config, int index, MatmulType type) {
    const std::string p = "model.encoder.layers." + std::to_string(index) + ".";
    self_attn = MultiHeadAttention(weights, p + "self_attn", config.d_model, config.encoder_attention_heads, type);
    self_attn_layer_norm = load_layer_norm(weights, p + "self_attn_layer_norm");
    ffn = FeedForward(weights, p, activation_from_name(config.activation_function), type);
    final_layer_norm = load_layer_norm(weights, p + "final_layer_norm");
}

void EncoderLayer::forward(DnnlContext& ctx, float* x, int64_t batch, int64_t src_len, const float* mask,
                           Workspace& ws) const {
    const int64_t rows = batch * src_len, d_model = self_attn.d_model;
    self_attn.project_self(ctx, x, rows, ws);
    self_attn.attend(dense_heads(ws.q.f32(), batch, src_len, d_model),
                     dense_heads(ws.k.f32(), batch, src_len, d_model), dense_heads(ws.v.f32(), batch, src_len, d_model),
                     mask, MaskKind::per_key, ws.probs, ws.attn.f32());
    self_attn.out_proj.forward(ctx, ws.attn.f32(), x, rows, /*accumulate=*/true);  // x + SelfAttn(x)
    self_attn_layer_norm.forward(ctx, x, x, rows);
    ffn.add_to(ctx, x, rows, ws.hidden);  // x + FFN(x)
    final_layer_norm.forward(ctx, x, x, rows);
}

}  // namespace tolk
