// The core of multi-head attention: Q*K^T (+ additive mask), softmax over keys, and P*V written with the heads
// merged, on tolk's own loops over strided views of the [batch, len, n_heads * d_head] projection buffers
// (core/attention_kernels.h): all heads of a query at once, nothing transposed or copied. Every batch item is
// computed on its own and padding adds exact zeros, so a sentence gets the same bits in any batch.
#pragma once

#include <cstdint>

namespace tolk {

// Rows of n_heads * d_head floats seen as heads: element (b, h, t, d) lives at
// data[b * batch_stride + t * row_stride + h * d_head + d]. A dense [batch, len, d_model] buffer has
// row_stride = d_model and batch_stride = len * d_model; a K/V cache with room for more positions has a larger
// batch_stride.
// With `slots`, row t of batch item b is that of item slots[b * slots_stride + t] instead:
// data[slot * batch_stride + t * row_stride + ...], so that decoder rows (beams) share the cache rows of their
// common past (keys and values only).
struct HeadsView {
    const float* data = nullptr;
    int64_t batch = 0;
    int64_t len = 0;
    int64_t batch_stride = 0;
    int64_t row_stride = 0;
    const int32_t* slots = nullptr;  // [batch, slots_stride] or nullptr
    int64_t slots_stride = 0;
};

inline HeadsView dense_heads(const float* data, int64_t batch, int64_t len, int64_t d_model) {
    return {data, batch, len, len * d_model, d_model};
}

// The additive mask fused into Q*K^T (finite values: 0 keeps a score, a large negative value removes it).
enum class MaskKind {
    per_key,    // [batch, k_len]: one row per batch item, the same for every query (padding)
    per_query,  // [batch, q_len, k_len]: a row per query (causal)
};

// Masked score: large enough that exp() underflows to exactly 0 after softmax's max subtraction, finite so that
// a fully masked row still gives numbers, and far from float's limits so adding it to a score cannot overflow.
inline constexpr float mask_value = -1e9f;

// out(b, t, h * d_head + d) = sum_s softmax_s(Q(b, h, t) . K(b, h, s) + mask) V(b, h, s, d), written into rows of
// out_row_stride floats (batch item b starts at out + b * out_batch_stride): the heads come out merged. Query by
// query: its scores for every head go into `probs` (scratch of n_heads * k.len floats, in the first-level cache),
// become probabilities in place, and weigh the values, so no [batch, n_heads, q_len, k_len] block is ever held.
// Q, K and V must agree on batch and n_heads * d_head, K and V on length; mask nullptr: every key is visible.
// The 1/sqrt(d_head) scale is not applied here: the model folds it into the Q projection.
void attention(int64_t n_heads, int64_t d_head, const HeadsView& q, const HeadsView& k, const HeadsView& v,
               const float* mask, MaskKind mask_kind, float* out, int64_t out_batch_stride, int64_t out_row_stride,
               float* probs);

// In-place softmax over the last axis of x[rows, cols], max-subtracted; an entry more than 87 below its row's
// maximum (a masked score) becomes exactly 0. Our own loop rather than oneDNN's softmax_v2: that primitive is
// built per (rows, cols) shape, and a corpus of news sentences made ~1,900 of them (each JIT-compiled), far more
// time than the softmax itself.
void softmax_rows(float* x, int64_t rows, int64_t cols);

}  // namespace tolk
