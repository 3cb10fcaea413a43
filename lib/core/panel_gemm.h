// panel_gemm: float32 and int8 matrix products of our own for weights packed once into column panels, for CPUs
// with AVX2 and FMA but without AVX-512. There oneDNN 2.6 has no brgemm: its f32 matmul runs on the jit gemm, which
// copies the weights into its panel layout on every call; here they are laid out that way once, at load. Its int8
// packed gemm returns int32 products that a second pass turns into floats; here that happens in registers.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tolk::panel_gemm {

// Output columns per panel: two 8-float AVX2 vectors.
inline constexpr int64_t kPanelWidth = 16;

// The epilogue applied to x W^T + bias inside the kernel (an activation the kernel lacks runs afterwards).
enum class Epilogue { none, relu, swish };

// Whether this CPU runs the kernel (AVX2 and FMA, capped like the other vector kernels: see simd::level()).
bool available();

// Floats of packed storage for W [n, k]: n rounded up to whole panels, times k.
std::size_t packed_floats(int64_t n, int64_t k);

// Packs W [n, k] (row-major, PyTorch's [out_features, in_features]) into `packed` (packed_floats(n, k) floats,
// 32-byte aligned): panel p holds columns 16p..16p+15, k-major, so that element (n, k) sits at
// packed[(n / 16 * k_total + k) * 16 + n % 16]; the columns past n are zero.
void pack(const float* w, int64_t n, int64_t k, float* packed);

// y[rows, n] = epilogue(x[rows, k] W^T + bias), or y += x W^T + bias with accumulate (epilogue none). bias:
// [n] or nullptr. Each output is a sum over k of fused multiply-adds in order, whatever the row count (so a row
// gets the same bits in any batch) and the thread count. `threads` > 1 splits the columns among that
// many OpenMP threads; 1 runs on the calling thread alone. Needs available().
void multiply(const float* packed, int64_t n, int64_t k, const float* x, int64_t rows, float* y, const float* bias,
              Epilogue epilogue, bool accumulate, int threads = 1);

// int8: W [n, k] in signed bytes, every |w| <= 63, against activations in unsigned bytes. AVX2 has no byte dot
// product of its own: vpmaddubsw multiplies u8 by s8 and adds pairs into int16 (saturating, which |w| <= 63 keeps
// from happening: 2 * 255 * 63 < 32768), then vpmaddwd adds those pairs into int32. A panel holds 16 columns over
// k rounded up to a multiple of 4, in groups of 4 consecutive depths per column: byte (n, k) sits at
// packed[((n / 16 * k4 + k / 4) * 16 + n % 16) * 4 + k % 4] with k4 = (k + 3) / 4; the padding is zero.
std::size_t packed_bytes_s8(int64_t n, int64_t k);
void pack_s8(const int8_t* w, int64_t n, int64_t k, int8_t* packed);

// The int8 product's way back to floats, per output (r, c): acc is the exact integer sum of x[r, :] * W[c, :];
// y = ((float(acc) - col_shift[c]) * row_scales[r]) * col_scales[c] + bias[c], in that order and without fused
// multiply-adds (as dnnl/quantize.h's dequantize_rows, so both give the same bits), then y += the old y with
// accumulate, or the epilogue. col_shift (128 * the column's weight sum when x holds q + 128) and bias may be
// nullptr.
struct Dequantize {
    const float* row_scales;
    const float* col_scales;
    const float* col_shift;
};

// y[rows, n] from x[rows, k] (unsigned bytes) and W packed by pack_s8, as described above. `threads` as multiply.
void multiply_u8s8(const int8_t* packed, int64_t n, int64_t k, const uint8_t* x, int64_t rows, float* y,
                   const Dequantize& dequantize, const float* bias, Epilogue epilogue, bool accumulate,
                   int threads = 1);

}  // namespace tolk::panel_gemm
