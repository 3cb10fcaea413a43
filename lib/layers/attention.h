// MultiHeadAttention: the q/k/v/out projections of one Marian attention block (Hugging Face names
// <prefix>.{q,k,v,out}_proj) and the attention itself, run for the whole batch at once (core/attention_ops.h).
#pragma once

#include <cstdint>
#include <string>

#include "core/tensor.h"
#include "core/attention_ops.h"
#include "dnnl/linear.h"
#include "layers/workspace.h"
#include "model/weights.h"

namespace tolk {

struct MultiHeadAttention {
    MultiHeadAttention() = default;
    // prefix: e.g. "model.decoder.layers.0.encoder_attn".
    MultiHeadAttention(const WeightStore& weights, const std::string& prefix, int64_t d_model, int64_t n_heads,
                       MatmulType type = MatmulType::f32);

    // Self-attention inputs for `rows` rows of x [rows, d_model]: ws.q, ws.k, ws.v = the three projections
    // [rows, d_model] each, and ws.attn sized [rows, d_model] for attend()'s output.
    void project_self(DnnlContext& ctx, const float* x, int64_t rows, Workspace& ws) const;

    // out rows [q.batch * q.len, d_model] (dense) = softmax(Q K^T + mask) V with the heads merged (mask nullptr:
    // every key is visible to every query); `probs` is scratch, resized to [n_heads, k_len] (one query's).
    void attend(const HeadsView& q, const HeadsView& k, const HeadsView& v, const float* mask, MaskKind mask_kind,
                Tensor& probs, float* out) const;

    Linear q_proj;  // scaled by 1/sqrt(d_head) at load
    Linear k_proj;
    Linear v_proj;
    Linear out_proj;
    int64_t d_model = 0;
    int64_t n_heads = 0;
    int64_t d_head = 0;
};

}  // namespace tolk
