// oneDNN's packed gemm: a weight matrix packed once into the panels its jit gemm kernels read, then multiplied by
// any number of activation rows without being copied again. Linear runs on it where the matmul primitive would run
// on the jit gemm (CPUs without AVX-512), which repacks the weights on every call (see Linear).
//
// libdnnl 2.6 exports these entry points (cpu/gemm/gemm_pack.hpp in its sources, the ones its recurrent layers
// use) but ships no public header for them; packed_gemm.cpp declares them.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tolk::packed_gemm {

// The weights' element type: f32 (f32 activations) or s8 (u8 activations, int32 products).
enum class Kind { f32, s8 };

// Bytes of packed storage for W [n, k] (row-major, PyTorch's [out_features, in_features]), laid out for one
// thread (the products then run on the calling thread alone, whatever its OpenMP thread count), or 0 when oneDNN
// has no packed gemm of this kind for the CPU.
std::size_t packed_size(Kind kind, int64_t n, int64_t k);

// Packs W [n, k] into `packed` (packed_size bytes, 64-byte aligned). Throws tolk::Error naming `what`.
void pack(Kind kind, const void* w, int64_t n, int64_t k, void* packed, const char* what);

// y[rows, n] = x[rows, k] W^T, or y += x W^T with accumulate.
void multiply_f32(const void* packed, int64_t n, int64_t k, const float* x, int64_t rows, float* y, bool accumulate,
                  const char* what);

// y[rows, n] = x[rows, k] W^T in int32: x unsigned bytes, W signed (exact integer products).
void multiply_u8s8(const void* packed, int64_t n, int64_t k, const uint8_t* x, int64_t rows, int32_t* y,
                   const char* what);

}  // namespace tolk::packed_gemm
