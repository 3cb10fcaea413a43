// Multi-head attention: loads the projections (folding the score scale into Q) and runs scores, softmax and the
// weighted sum of values (core/attention_ops.h: tolk's loops).
#include "layers/attention.h"

#include <cmath>

namespace tolk {

MultiHeadAttention::MultiHeadAttention(const WeightStore& weights, const std::string& prefix, int64_t model_dim,
                                       int64_t heads, MatmulType type)
    : d_model(model_dim), n_heads(heads) {
    TOLK_CHECK(n_heads > 0 && d_model % n_heads == 0, prefix, ": d_model ", d_model, " is not divisible by ",
               n_heads, " heads");
    d_head = d_model / n_heads;
    // Scores are (x W_q + b_q) K^T / sqrt(d_head). Scaling W_q and b_q once here instead saves a pass over the
    // [batch, n_heads, q_len, k_len] scores in every layer and step, and keeps the score matmul free of an
    // output-scale attribute; transformers scales the projected queries too, so this differs only in rounding.
    const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(d_head)));
    Tensor q_weight = weights.load(prefix + ".q_proj.weight");  // [d_model, d_model]
    Tensor q_bias = weights.load(prefix + ".q_proj.bias");      // [d_model]
    for (int64_t i = 0; i < q_weight.numel(); ++i) q_weight.f32()[i] *= scale;
    for (int64_t i = 0; i < q_bias.numel(); ++i) q_bias.f32()[i] *= scale;
    q_proj = Linear(q_weight, &q_bias, Activation::none, prefix + ".q_proj", type, weights.arena());
    const auto load = [&](const char* name) {
        const std::string p = prefix + "." + name;
        const Tensor bias = weights.load(p + ".bias");  // [d_model]
        return Linear(weights.load(p + ".weight"), &bias, Activation::none, p, type, weights.arena());
    };
    k_proj = load("k_proj");
    v_proj = load("v_proj");
    out_proj = load("out_proj");
}

void MultiHeadAttention::project_self(DnnlContext& ctx, const float* x, int64_t rows, Workspace& ws) const {
    ws.q.resize({rows, d_model});  // [rows, d_model]
    ws.k.resize({rows, d_model});
    ws.v.resize({rows, d_model});
    ws.attn.resize({rows, d_model});
    Linear::forward_same_input(ctx, x, rows, {{&q_proj, ws.q.f32()}, {&k_proj, ws.k.f32()}, {&v_proj, ws.v.f32()}});
}

void MultiHeadAttention::attend(const HeadsView& q, const HeadsView& k, const HeadsView& v, const float* mask,
                                MaskKind mask_kind, Tensor& probs, float* out) const {
    probs.resize({n_heads, k.len});  // [n_heads, k_len]: one query's at a time
    attention(n_heads, d_head, q, k, v, mask, mask_kind, out, q.len * d_model, d_model, probs.f32());
}

}  // namespace tolk
