// Row quantization, the int8 epilogue and bf16 conversion as lane loops GCC vectorises without -ffast-math,
// compiled for AVX-512, AVX2 and baseline x86-64 and picked at run time (target_clones).
#include "dnnl/quantize.h"

#include <bit>
#include <cmath>
#include <cstring>

namespace tolk {

namespace {
// max |x[i]| over n floats, on the bit patterns: with the sign bit cleared, IEEE floats order like unsigned
// integers, and NaNs sort above infinity, so a NaN or infinity anywhere shows in the result. An integer maximum
// vectorises as a plain loop (a float one would need -ffast-math).
__attribute__((target_clones("avx512f", "avx2", "default")))
float max_abs(const float* x, int64_t n) {
    uint32_t m = 0;
    for (int64_t i = 0; i < n; ++i) {
        uint32_t bits;
        std::memcpy(&bits, x + i, sizeof(bits));
        bits &= 0x7FFFFFFFu;
        m = bits > m ? bits : m;
    }
    return std::bit_cast<float>(m);
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void scale_round_s8(const float* x, int64_t n, float inv_scale, int8_t* q) {
    // Round half away from zero; |x * inv_scale| <= limit by the choice of scale.
    for (int64_t i = 0; i < n; ++i) {
        const float v = x[i] * inv_scale;
        q[i] = static_cast<int8_t>(static_cast<int32_t>(v + (v >= 0.0f ? 0.5f : -0.5f)));
    }
}

// The epilogue's four cases, with or without the column shift of u8 sources, on products in f32 (the matmul
// primitive's) or int32 (the packed gemm's). Both conversions and acc - shift are exact: the products and the
// shift are integers below 2^24 in the shapes tolk runs.
template <bool kShift, typename Acc>
[[gnu::always_inline]] inline void dequantize_row_body(const Acc* acc, float scale, const float* col_scales,
                                                       const float* bias, const float* shift, int64_t n, float* y,
                                                       bool accumulate) {
    const auto a = [&](int64_t i) {
        if constexpr (kShift) return static_cast<float>(acc[i]) - shift[i];
        else return static_cast<float>(acc[i]);
    };
    if (accumulate && bias) {
        for (int64_t i = 0; i < n; ++i) y[i] += a(i) * scale * col_scales[i] + bias[i];
    } else if (accumulate) {
        for (int64_t i = 0; i < n; ++i) y[i] += a(i) * scale * col_scales[i];
    } else if (bias) {
        for (int64_t i = 0; i < n; ++i) y[i] = a(i) * scale * col_scales[i] + bias[i];
    } else {
        for (int64_t i = 0; i < n; ++i) y[i] = a(i) * scale * col_scales[i];
    }
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void dequantize_row(const float* acc, float scale, const float* col_scales, const float* bias, const float* shift,
                    int64_t n, float* y, bool accumulate) {
    if (shift) dequantize_row_body<true>(acc, scale, col_scales, bias, shift, n, y, accumulate);
    else dequantize_row_body<false>(acc, scale, col_scales, bias, shift, n, y, accumulate);
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void dequantize_row(const int32_t* acc, float scale, const float* col_scales, const float* bias, const float* shift,
                    int64_t n, float* y, bool accumulate) {
    if (shift) dequantize_row_body<true>(acc, scale, col_scales, bias, shift, n, y, accumulate);
    else dequantize_row_body<false>(acc, scale, col_scales, bias, shift, n, y, accumulate);
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void add_row(const float* bias, int64_t n, float* y) {
    for (int64_t i = 0; i < n; ++i) y[i] += bias[i];
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void flip_sign_bits(uint8_t* q, int64_t n) {
    for (int64_t i = 0; i < n; ++i) q[i] ^= 0x80u;
}
}  // namespace

void quantize_rows_s8(const float* x, int64_t rows, int64_t cols, int8_t* q, float* scales, int limit) {
    const float top = static_cast<float>(limit);
    for (int64_t r = 0; r < rows; ++r) {
        const float* row = x + r * cols;
        const float m = max_abs(row, cols);
        // A NaN or infinite row cannot be quantized: its scale carries the NaN into the result instead.
        if (!std::isfinite(m)) {
            scales[r] = std::nanf("");
            std::memset(q + r * cols, 0, static_cast<std::size_t>(cols));
            continue;
        }
        scales[r] = m / top;
        scale_round_s8(row, cols, m > 0.0f ? top / m : 0.0f, q + r * cols);
    }
}

void quantize_rows_u8_shifted(const float* x, int64_t rows, int64_t cols, uint8_t* q, float* scales, int limit) {
    // Two's complement: the byte of q (-127..127) with its top bit flipped is q + 128.
    quantize_rows_s8(x, rows, cols, reinterpret_cast<int8_t*>(q), scales, limit);
    flip_sign_bits(q, rows * cols);
}

void dequantize_rows(const float* acc, const float* row_scales, const float* col_scales, const float* bias,
                     const float* shift, int64_t rows, int64_t cols, float* y, bool accumulate) {
    for (int64_t r = 0; r < rows; ++r)
        dequantize_row(acc + r * cols, row_scales[r], col_scales, bias, shift, cols, y + r * cols, accumulate);
}

void dequantize_rows(const int32_t* acc, const float* row_scales, const float* col_scales, const float* bias,
                     const float* shift, int64_t rows, int64_t cols, float* y, bool accumulate) {
    for (int64_t r = 0; r < rows; ++r)
        dequantize_row(acc + r * cols, row_scales[r], col_scales, bias, shift, cols, y + r * cols, accumulate);
}

void add_to_rows(const float* bias, int64_t rows, int64_t cols, float* y) {
    for (int64_t r = 0; r < rows; ++r) add_row(bias, cols, y + r * cols);
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void to_bf16(const float* x, int64_t n, uint16_t* out) {
    for (int64_t i = 0; i < n; ++i) {
        const uint32_t bits = std::bit_cast<uint32_t>(x[i]);
        // Round to nearest even on the dropped 16 bits; NaNs keep a set quiet bit so they stay NaN.
        const uint32_t rounded = (bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16;
        const bool nan = (bits & 0x7FFFFFFFu) > 0x7F800000u;
        out[i] = static_cast<uint16_t>(nan ? (bits >> 16) | 0x40u : rounded);
    }
}

}  // namespace tolk
