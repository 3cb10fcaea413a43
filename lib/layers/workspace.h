// Workspace: the activation buffers a forward pass reuses from layer to layer. A session owns one; buffers are
// resized per call and keep their capacity, so steady-state decoding allocates nothing.
#pragma once

#include "core/tensor.h"

namespace tolk {

struct Workspace {
    Tensor q;       // [rows, d_model] query projection (1/sqrt(d_head) folded in)
    Tensor k;       // [rows, d_model] key projection
    Tensor v;       // [rows, d_model] value projection
    Tensor attn;    // [rows, d_model] attention output, heads merged
    Tensor probs;   // [n_heads, k_len]: one query's scores, then probabilities (attend())
    Tensor hidden;  // [rows, d_ff] feed-forward activations
};

}  // namespace tolk
