// panel_gemm: a float32 matrix product of our own for weights packed once into column panels, for CPUs with AVX2
// and FMA but without AVX-512. There oneDNN 2.6 has no brgemm: its matmul runs on the jit gemm, which copies the
// weights into its panel layout on every call; here they are laid out that way once, at load.
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
// [n] or nullptr. Each output is a sum over k of fused multiply-adds in order (with 1 or 2 rows, the even and
// the odd k summed apart, then added), whatever the thread count. `threads` > 1 splits the columns among that
// many OpenMP threads; 1 runs on the calling thread alone. Needs available().
void multiply(const float* packed, int64_t n, int64_t k, const float* x, int64_t rows, float* y, const float* bias,
              Epilogue epilogue, bool accumulate, int threads = 1);

}  // namespace tolk::panel_gemm
