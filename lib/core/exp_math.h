// exp(t) for t <= 0 as plain float arithmetic that GCC vectorises inside lane loops (no -ffast-math, no libm
// call): shared by the searches' log-sum-exp and the attention softmax.
#pragma once

#include <bit>
#include <cstdint>

namespace tolk {

// exp(t) for t <= 0 (an argument minus the row maximum): t = n*ln2 + r with |r| <= ln2/2, exp(r) by its Taylor
// polynomial to degree 7 (relative error < 1e-8, below float rounding), 2^n from the exponent bits. Arguments
// below -87 give exp(-87) ~ 1.6e-38 instead of 0: nothing next to the maximum's exp(0) = 1.
inline float exp_nonpositive(float t) {
    t = t < -87.0f ? -87.0f : t;
    // Round t/ln2 to the nearest integer with the 1.5*2^23 trick (exact in float without -ffast-math).
    const float shifted = t * 1.44269504088896341f + 12582912.0f;
    const float n = shifted - 12582912.0f;
    // ln2 split in a part with few mantissa bits (n * hi is exact) and the rest.
    const float r = (t - n * 0.693145751953125f) - n * 1.428606765330187e-06f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
    return p * std::bit_cast<float>(bits);
}

}  // namespace tolk
