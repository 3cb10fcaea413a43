// The post-norm decoder block: weights by Hugging Face name, the cached step and the teacher-forced pass.
#include "layers/decoder_layer.h"

#include <cstring>
#include <string>

#include "layers/norm_weights.h"

namespace tolk {

DecoderLayer::DecoderLayer(const WeightStore& weights, const ModelConfig& config, int index, MatmulType type) {
    const std::string p = "model.decoder.layers." + std::to_string(index) + ".";
    self_attn = MultiHeadAttention(weights, p + "self_attn", config.d_model, config.decoder_attention_heads, type);
    self_attn_layer_norm = load_layer_norm(weights, p + "self_attn_layer_norm");
    encoder_attn =
        MultiHeadAttention(weights, p + "encoder_attn", config.d_model, config.decoder_attention_heads, type);
    encoder_attn_layer_norm = load_layer_norm(weights, p + "encoder_attn_layer_norm");
    ffn = FeedForward(weights, p, activation_from_name(config.activation_function), type);
    final_layer_norm = load_layer_norm(weights, p + "final_layer_norm");
}

void DecoderLayer::project_memory(DnnlContext& ctx, const float* memory, int64_t rows, float* k, float* v) const {
    // k, v: [rows, d_model] each, from one conversion of the memory
    Linear::forward_same_input(ctx, memory, rows, {{&encoder_attn.k_proj, k}, {&encoder_attn.v_proj, v}});
}

void DecoderLayer::forward_step(DnnlContext& ctx, float* x, int64_t rows, const SelfAttentionCache& cache,
                                const CrossAttentionMemory& memory, Workspace& ws) const {
    const int64_t d_model = self_attn.d_model;
    self_attn.project_self(ctx, x, rows, ws);
    const int64_t row_stride = cache.capacity * d_model;
    for (int64_t r = 0; r < rows; ++r) {
        const int64_t at = r * row_stride + cache.position * d_model;
        std::memcpy(cache.k + at, ws.k.f32() + r * d_model, static_cast<std::size_t>(d_model) * sizeof(float));
        std::memcpy(cache.v + at, ws.v.f32() + r * d_model, static_cast<std::size_t>(d_model) * sizeof(float));
    }
    // Each row is its own batch item with one query against exactly its written positions: no mask, and no
    // position past this one is read. Its past positions are read wherever they were written (the slots).
    const int64_t visible = cache.position + 1;
    const HeadsView q{ws.q.f32(), rows, 1, d_model, d_model};
    const HeadsView k{cache.k, rows, visible, row_stride, d_model, cache.slots, cache.capacity};
    const HeadsView v{cache.v, rows, visible, row_stride, d_model, cache.slots, cache.capacity};
    self_attn.attend(q, k, v, /*mask=*/nullptr, MaskKind::per_key, ws.probs, ws.attn.f32());
    self_attn.out_proj.forward(ctx, ws.attn.f32(), x, rows, /*accumulate=*/true);  // x + SelfAttn(x)
    self_attn_layer_norm.forward(ctx, x, x, rows);
    cross_attention(ctx, x, rows, memory, ws);
    feed_forward(ctx, x, rows, ws);
}

void DecoderLayer::forward_full(DnnlContext& ctx, float* x, int64_t batch, int64_t tgt_len, const float* causal_mask,
                                const CrossAttentionMemory& memory, Workspace& ws) const {
    const int64_t rows = batch * tgt_len, d_model = self_attn.d_model;
    self_attn.project_self(ctx, x, rows, ws);
    self_attn.attend(dense_heads(ws.q.f32(), batch, tgt_len, d_model),
                     dense_heads(ws.k.f32(), batch, tgt_len, d_model), dense_heads(ws.v.f32(), batch, tgt_len, d_model),
                     causal_mask, MaskKind::per_query, ws.probs, ws.attn.f32());
    self_attn.out_proj.forward(ctx, ws.attn.f32(), x, rows, /*accumulate=*/true);
    self_attn_layer_norm.forward(ctx, x, x, rows);
    cross_attention(ctx, x, rows, memory, ws);
    feed_forward(ctx, x, rows, ws);
}

void DecoderLayer::cross_attention(DnnlContext& ctx, float* x, int64_t rows, const CrossAttentionMemory& memory,
                                   Workspace& ws) const {
    const int64_t d_model = encoder_attn.d_model;
    TOLK_CHECK(memory.groups > 0 && rows % memory.groups == 0, "decoder: ", rows, " rows do not split into ",
               memory.groups, " source groups");
    const int64_t per_group = rows / memory.groups;
    encoder_attn.q_proj.forward(ctx, x, ws.q.f32(), rows);  // [rows, d_model]
    // The rows of a group (a sentence's beams, or its target positions) are the query positions of one batch
    // item, so all of them read that sentence's keys and values in one matmul.
    const HeadsView q = dense_heads(ws.q.f32(), memory.groups, per_group, d_model);
    const HeadsView k = dense_heads(memory.k, memory.groups, memory.src_len, d_model);
    const HeadsView v = dense_heads(memory.v, memory.groups, memory.src_len, d_model);
    encoder_attn.attend(q, k, v, memory.mask, MaskKind::per_key, ws.probs, ws.attn.f32());
    encoder_attn.out_proj.forward(ctx, ws.attn.f32(), x, rows, /*accumulate=*/true);  // x + CrossAttn(x, memory)
    encoder_attn_layer_norm.forward(ctx, x, x, rows);
}

void DecoderLayer::feed_forward(DnnlContext& ctx, float* x, int64_t rows, Workspace& ws) const {
    ffn.add_to(ctx, x, rows, ws.hidden);  // x + FFN(x)
    final_layer_norm.forward(ctx, x, x, rows);
}

}  // namespace tolk
