// Marian's fixed sinusoidal position table (never stored in checkpoints, so computed at load).
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace tolk {

// [n_positions, d_model]: with angle(pos, j) = pos / 10000^(2 * floor(j / 2) / d_model), the first
// ceil(d_model / 2) columns hold sin(angle(pos, 2i)) and the rest cos(angle(pos, 2i + 1)) (halves, not
// interleaved), as transformers' MarianSinusoidalPositionalEmbedding builds it: in double, then cast to float.
Tensor sinusoidal_positions(int64_t n_positions, int64_t d_model);

}  // namespace tolk
