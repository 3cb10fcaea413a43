// attention_kernels: the two products of attention query by query (a decoding step: one query per row, one per
// beam of a sentence against its source; the encoder's blocks of up to 128), as plain vector loops (core/simd.h).
//
// oneDNN runs these as batched matmuls of one row each: gemm:jit's matrix-vector kernels behind a driver that
// takes ~0.2 us per (row, head) whatever the work (scripts/bench/onednn_micro.cpp step). A step of 32 rows over
// 12 keys, 4 heads of 64, is ~100 k multiply-adds: the driver, not the arithmetic, set its time.
//
// Both loops take every head of a query at once and walk the keys (or values) row by row: a row holds all heads
// side by side, so the memory is read in order, not in one stride per head.
//
// Results do not depend on the vector width: a dot product accumulates 16 lanes (two 8-float vectors on AVX2, four
// 4-float ones on baseline x86-64) summed in one fixed tree, and a weighted sum is its own lane per output. The
// build compiles this file with -ffp-contract=off (CMakeLists.txt): no width fuses a multiply-add, so every width
// rounds the same products and sums in the same order, the same bits on every CPU.
#pragma once

#include <cstdint>

namespace tolk::attention_kernels {

// Key (or value) row j starts at keys + j * key_stride, or, with `slots`, at
// keys + slots[j] * slot_stride + j * key_stride: a decoder's cache, where the beams of a sentence share the rows
// of their common past instead of each holding a copy (slots[j]: the cache row that holds position j).

// For each head h < heads and key j < n, with K_j key row j:
//   out[h * out_head_stride + j] = sum_d q[h * d_head + d] * K_j[h * d_head + d] (+ add[j])
// (add nullptr: nothing added).
void dot_rows(const float* q, const float* keys, int64_t key_stride, int64_t n, int64_t heads, int64_t d_head,
              const float* add, float* out, int64_t out_head_stride, const int32_t* slots = nullptr,
              int64_t slot_stride = 0);

// For each head h < heads and d < d_head, summed over j < n in order, with V_j value row j:
//   out[h * d_head + d] = sum_j p[h * p_head_stride + j] * V_j[h * d_head + d]
void weighted_rows(const float* p, int64_t p_head_stride, const float* values, int64_t value_stride, int64_t n,
                   int64_t heads, int64_t d_head, float* out, const int32_t* slots = nullptr,
                   int64_t slot_stride = 0);

}  // namespace tolk::attention_kernels
