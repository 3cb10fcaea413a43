// The element loops around the low-precision matmuls: per-row int8 quantization of activations, the int8
// epilogue (row scale, bias, residual), and f32 -> bf16 conversion. Vectorised for the CPU at hand.
#pragma once

#include <cstdint>

namespace tolk {

// Symmetric int8 with one scale per row: q[r, c] = round(x[r, c] / scales[r]), scales[r] = max_c |x[r, c]| / limit,
// so x ~ q * scale within half a step and |q| <= limit (127 at most). An all-zero row gets scale 0 and zeros; a
// row holding NaN or infinity gets a NaN scale. x, q: [rows, cols].
void quantize_rows_s8(const float* x, int64_t rows, int64_t cols, int8_t* q, float* scales, int limit = 127);

// The same quantization stored as unsigned bytes q + 128 (1..255), the operand the int8 kernels of CPUs without
// VNNI multiply natively (see Linear); the 128 comes back out through dequantize_rows' column shift.
void quantize_rows_u8_shifted(const float* x, int64_t rows, int64_t cols, uint8_t* q, float* scales, int limit = 127);

// y[r, c] = (accumulate ? y[r, c] : 0) + (acc[r, c] - (shift ? shift[c] : 0)) * row_scales[r] * col_scales[c]
// + (bias ? bias[c] : 0). acc may alias y when not accumulating. acc, y: [rows, cols]; row_scales: [rows];
// col_scales, bias, shift: [cols] (bias and shift may be nullptr).
void dequantize_rows(const float* acc, const float* row_scales, const float* col_scales, const float* bias,
                     const float* shift, int64_t rows, int64_t cols, float* y, bool accumulate);
// The same from int32 products; acc must not alias y.
void dequantize_rows(const int32_t* acc, const float* row_scales, const float* col_scales, const float* bias,
                     const float* shift, int64_t rows, int64_t cols, float* y, bool accumulate);

// y[r, c] += bias[c]. y: [rows, cols]; bias: [cols].
void add_to_rows(const float* bias, int64_t rows, int64_t cols, float* y);

// out[i] = x[i] rounded to the nearest bf16 (ties to even), as raw 16-bit patterns; NaN stays NaN.
void to_bf16(const float* x, int64_t n, uint16_t* out);

}  // namespace tolk
