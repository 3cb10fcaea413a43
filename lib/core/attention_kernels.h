// attention_kernels: the two products of attention for a few queries at a time (a decoding step: one query per
// row, or one per beam of a sentence against its source), as plain vector loops (core/simd.h).
//
// oneDNN runs these as batched matmuls of one row each: gemm:jit's matrix-vector kernels behind a driver that
// takes ~0.2 us per (row, head) whatever the work (scripts/bench/onednn_micro.cpp step). A step of 32 rows over
// 12 keys, 4 heads of 64, is ~100 k multiply-adds: the driver, not the arithmetic, set its time.
//
// Results do not depend on the vector width: a dot product accumulates 16 lanes (two 8-float vectors on AVX2, four
// 4-float ones on baseline x86-64) summed in one fixed tree, and a weighted sum is its own lane per output. The
// build compiles this file with -ffp-contract=off (CMakeLists.txt): no width fuses a multiply-add, so every width
// rounds the same products and sums in the same order, the same bits on every CPU.
#pragma once

#include <cstdint>

namespace tolk::attention_kernels {

// out[j] = sum_d q[d] * keys[j * key_stride + d] (+ add[j] when add is not nullptr), for j < n, d < d_head.
void dot_rows(const float* q, const float* keys, int64_t key_stride, int64_t n, int64_t d_head, const float* add,
              float* out);

// out[d] = sum_j p[j] * values[j * value_stride + d], for d < d_head, j < n (in order of j).
void weighted_rows(const float* p, const float* values, int64_t value_stride, int64_t n, int64_t d_head, float* out);

}  // namespace tolk::attention_kernels
