// DecoderLayer: one post-norm Marian decoder block (Hugging Face names model.decoder.layers.N.*):
// x = LN(x + SelfAttn(x)); x = LN(x + CrossAttn(x, memory)); x = LN(x + FFN(x)). Runs either one step for every
// live row against a K/V cache, or a whole target sequence at once (teacher forcing).
#pragma once

#include <cstdint>

#include "dnnl/layer_norm.h"
#include "layers/attention.h"
#include "layers/feed_forward.h"
#include "layers/workspace.h"
#include "model/config.h"
#include "model/weights.h"

namespace tolk {

// One layer's self-attention keys and values during step-by-step decoding.
struct SelfAttentionCache {
    float* k = nullptr;     // [cache rows, capacity, d_model]
    float* v = nullptr;     // [cache rows, capacity, d_model]
    int64_t capacity = 0;   // positions each cache row has room for
    int64_t position = 0;   // the position this step writes; the scores read positions [0, position]
    // [rows, capacity]: row r's keys and values at position p are in cache row slots[r * capacity + p]; row r
    // writes this step's into cache row r (slots[r * capacity + position] must be r).
    const int32_t* slots = nullptr;
};

// One layer's cross-attention keys and values: one entry per group (a source sentence), shared by the
// rows / groups consecutive decoder rows (the beams) that decode it.
struct CrossAttentionMemory {
    const float* k = nullptr;     // [groups, src_len, d_model]
    const float* v = nullptr;     // [groups, src_len, d_model]
    int64_t groups = 0;
    int64_t src_len = 0;
    const float* mask = nullptr;  // [groups, src_len] additive (source padding)
};

struct DecoderLayer {
    DecoderLayer(const WeightStore& weights, const ModelConfig& config, int index, MatmulType type = MatmulType::f32);

    // Cross-attention keys and values of the encoder output memory[rows, d_model] into k, v [rows, d_model].
    void project_memory(DnnlContext& ctx, const float* memory, int64_t rows, float* k, float* v) const;

    // One decoding step: x [rows, d_model] holds one token per row; writes this step's keys and values into the
    // cache at cache.position.
    void forward_step(DnnlContext& ctx, float* x, int64_t rows, const SelfAttentionCache& cache,
                      const CrossAttentionMemory& memory, Workspace& ws) const;

    // A whole target sequence: x [batch * tgt_len, d_model]; causal_mask [batch, tgt_len, tgt_len] additive;
    // memory has one group per batch item.
    void forward_full(DnnlContext& ctx, float* x, int64_t batch, int64_t tgt_len, const float* causal_mask,
                      const CrossAttentionMemory& memory, Workspace& ws) const;

    MultiHeadAttention self_attn;
    LayerNorm self_attn_layer_norm;
    MultiHeadAttention encoder_attn;
    LayerNorm encoder_attn_layer_norm;
    FeedForward ffn;  // fc1, fc2
    LayerNorm final_layer_norm;

private:
    void cross_attention(DnnlContext& ctx, float* x, int64_t rows, const CrossAttentionMemory& memory,
                         Workspace& ws) const;
    void feed_forward(DnnlContext& ctx, float* x, int64_t rows, Workspace& ws) const;
};

}  // namespace tolk
