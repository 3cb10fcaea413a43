// The panel kernel: for each panel of 16 weight columns (16 KB at k = 256, held in the first-level cache), every
// block of 6 activation rows is multiplied over the whole depth in 12 AVX2 registers, then bias, activation or
// residual sum are applied before the tile is stored. The weights are read once per block of rows, the activations
// once per panel from the second-level cache. While the first tile of a panel runs, the next panel is prefetched:
// the vocabulary's 8 MB of weights come from the third-level cache or memory every step, and the hardware
// prefetcher stops at each 4 KB page of a 16 KB panel (AMD Zen 5 held to AVX2, Multi30k greedy float32, 5
// alternating runs: 1.71 -> 1.57 s).
#include "core/panel_gemm.h"

#include <immintrin.h>

#include <algorithm>
#include <bit>
#include <cstring>

#include "core/simd.h"

namespace tolk::panel_gemm {

namespace {

// Rows per register tile: 6 x 2 accumulators + 2 weight vectors + 1 broadcast fit AVX2's 16 registers.
constexpr int kTileRows = 6;

// Rows of x per block, whole tiles of `tile_rows`: 65,536 elements at most (256 KB of floats, 64 KB of bytes), so
// that they stay in the second-level cache while every panel of W passes by.
int64_t block_rows(int64_t k, int64_t tile_rows) {
    return std::max<int64_t>(tile_rows, 65536 / k / tile_rows * tile_rows);
}

// Runs kernel(first_panel, end_panel) over the panels of an n-column product: on the calling thread alone, or,
// with `threads` > 1, as that many runs of panels (each its own columns of y, all rows) on OpenMP threads.
template <typename Kernel>
void for_panel_runs(int64_t n, int threads, Kernel&& kernel) {
    const int64_t panels = (n + kPanelWidth - 1) / kPanelWidth;
    const int64_t parts = std::clamp<int64_t>(threads, 1, panels);
    if (parts == 1) {
        kernel(int64_t{0}, panels);
        return;
    }
#ifdef _OPENMP
#pragma omp parallel for num_threads(parts) schedule(static, 1)
#endif
    for (int64_t part = 0; part < parts; ++part) kernel(panels * part / parts, panels * (part + 1) / parts);
}

// v[0..7] <- v * sigmoid(v), in place. With e = exp(-|v|) <= 1, sigmoid is 1 / (1 + e) for v >= 0 and e / (1 + e)
// below. Through memory and without a target of its own: clang rejects 256-bit vector arguments between functions
// compiled for different targets, and once inlined into the AVX2 kernel this is AVX2 code.
[[gnu::always_inline]] inline void swish8(float* v) {
    using simd::F;
    const F<8> x = simd::load<8>(v);
    const F<8> negative = x < 0.0f ? x : -x;  // -|x|
    const F<8> e = simd::exp_nonpositive<8>(negative);
    const F<8> one = simd::splat<8>(1.0f);
    simd::store<8>(v, x * ((x < 0.0f ? e : one) / (one + e)));
}

[[gnu::target("avx2,fma")]] [[gnu::always_inline]] inline __m256 swish(__m256 v) {
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, v);
    swish8(lanes);
    return _mm256_load_ps(lanes);
}

[[gnu::target("avx2,fma")]] [[gnu::always_inline]] inline __m256 finish(__m256 v, const float* bias, const float* y,
                                                                         Epilogue epilogue, bool accumulate) {
    if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias));
    if (accumulate) v = _mm256_add_ps(v, _mm256_loadu_ps(y));
    switch (epilogue) {
        case Epilogue::none: break;
        case Epilogue::relu: v = _mm256_max_ps(v, _mm256_setzero_ps()); break;
        case Epilogue::swish: v = swish(v); break;
    }
    return v;
}

// Stores the finished sums of `Rows` rows of one panel (`low`: columns 0-7, `high`: 8-15) into y (row stride n).
// `bias` and `y` point at the panel's first column; cols < 16 for the last panel of a width that is not a
// multiple of 16, which goes through a buffer so that only the real columns are written.
template <int Rows>
[[gnu::target("avx2,fma")]] [[gnu::always_inline]] inline void store_panel(const __m256* low, const __m256* high,
                                                                           float* y, int64_t n, int64_t cols,
                                                                           const float* bias, Epilogue epilogue,
                                                                           bool accumulate) {
    if (cols == kPanelWidth) {
#pragma GCC unroll 8
        for (int i = 0; i < Rows; ++i) {
            float* out = y + i * n;
            const __m256 v0 = finish(low[i], bias, out, epilogue, accumulate);
            const __m256 v1 = finish(high[i], bias ? bias + 8 : nullptr, out + 8, epilogue, accumulate);
            _mm256_storeu_ps(out, v0);
            _mm256_storeu_ps(out + 8, v1);
        }
        return;
    }
    alignas(32) float bias_part[kPanelWidth] = {};
    alignas(32) float part[kPanelWidth] = {};
    if (bias) std::memcpy(bias_part, bias, static_cast<std::size_t>(cols) * sizeof(float));
#pragma GCC unroll 8
    for (int i = 0; i < Rows; ++i) {
        float* out = y + i * n;
        if (accumulate) std::memcpy(part, out, static_cast<std::size_t>(cols) * sizeof(float));
        const __m256 v0 = finish(low[i], bias ? bias_part : nullptr, part, epilogue, accumulate);
        const __m256 v1 = finish(high[i], bias ? bias_part + 8 : nullptr, part + 8, epilogue, accumulate);
        _mm256_store_ps(part, v0);
        _mm256_store_ps(part + 8, v1);
        std::memcpy(out, part, static_cast<std::size_t>(cols) * sizeof(float));
    }
}

// y[rows <= kTileRows, cols <= 16] for one panel. `bias` and `y` point at the panel's first column. Every output
// is a chain of multiply-adds over k in order, from 0, then finish(): the same arithmetic in every tile shape, so a
// row's bits do not depend on how many rows share the call (a sentence's on its batch).
template <int Rows>
[[gnu::target("avx2,fma")]] [[gnu::always_inline]] inline void tile(const float* x, int64_t k, const float* panel,
                                                                     float* y, int64_t n, int64_t cols,
                                                                     const float* bias, Epilogue epilogue,
                                                                     bool accumulate, const float* next) {
    __m256 low[Rows], high[Rows];
#pragma GCC unroll 8
    for (int i = 0; i < Rows; ++i) low[i] = high[i] = _mm256_setzero_ps();
    const float* b = panel;
#pragma GCC unroll 4
    for (int64_t p = 0; p < k; ++p, b += kPanelWidth) {
        if (next) _mm_prefetch(reinterpret_cast<const char*>(next + p * kPanelWidth), _MM_HINT_T0);
        const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 8
        for (int i = 0; i < Rows; ++i) {
            const __m256 a = _mm256_broadcast_ss(x + i * k + p);
            low[i] = _mm256_fmadd_ps(a, b0, low[i]);
            high[i] = _mm256_fmadd_ps(a, b1, high[i]);
        }
    }
    store_panel<Rows>(low, high, y, n, cols, bias, epilogue, accumulate);
}

// One or two rows against `Panels` consecutive panels at once (y, bias: the first panel's first column; cols: the
// columns left from there). A panel gives a row only 2 accumulators, each waiting on its last multiply-add (4
// cycles), so a lone row on one panel would run at a quarter of the multiply-add rate; over 4 panels (2 for two
// rows) 8 chains are in flight, each summed in the same order as in tile().
template <int Rows, int Panels>
[[gnu::target("avx2,fma")]] [[gnu::always_inline]] inline void wide_tile(const float* x, int64_t k,
                                                                          const float* panel, float* y, int64_t n,
                                                                          int64_t cols, const float* bias,
                                                                          Epilogue epilogue, bool accumulate) {
    __m256 low[Panels][Rows], high[Panels][Rows];
#pragma GCC unroll 8
    for (int j = 0; j < Panels; ++j)
#pragma GCC unroll 8
        for (int i = 0; i < Rows; ++i) low[j][i] = high[j][i] = _mm256_setzero_ps();
    const int64_t panel_floats = k * kPanelWidth;
#pragma GCC unroll 2
    for (int64_t p = 0; p < k; ++p) {
        __m256 a[Rows];
#pragma GCC unroll 8
        for (int i = 0; i < Rows; ++i) a[i] = _mm256_broadcast_ss(x + i * k + p);
#pragma GCC unroll 8
        for (int j = 0; j < Panels; ++j) {
            const float* b = panel + j * panel_floats + p * kPanelWidth;
            const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 8
            for (int i = 0; i < Rows; ++i) {
                low[j][i] = _mm256_fmadd_ps(a[i], b0, low[j][i]);
                high[j][i] = _mm256_fmadd_ps(a[i], b1, high[j][i]);
            }
        }
    }
#pragma GCC unroll 8
    for (int j = 0; j < Panels; ++j) {
        const int64_t c = j * kPanelWidth;
        store_panel<Rows>(low[j], high[j], y + c, n, std::min(kPanelWidth, cols - c), bias ? bias + c : nullptr,
                          epilogue, accumulate);
    }
}

// Panels per wide_tile for a remainder of 1 or 2 rows.
constexpr int64_t wide_panels(int64_t rows) { return rows == 1 ? 4 : 2; }

// `rows` (1 or 2) rows against `count` (1 .. wide_panels(rows)) panels from `panel`.
[[gnu::target("avx2,fma")]] void few_rows(int64_t rows, int64_t count, const float* x, int64_t k,
                                          const float* panel, float* y, int64_t n, int64_t cols,
                                          const float* bias, Epilogue epilogue, bool accumulate) {
    switch (rows * 8 + count) {
        case 8 + 4: wide_tile<1, 4>(x, k, panel, y, n, cols, bias, epilogue, accumulate); break;
        case 8 + 3: wide_tile<1, 3>(x, k, panel, y, n, cols, bias, epilogue, accumulate); break;
        case 8 + 2: wide_tile<1, 2>(x, k, panel, y, n, cols, bias, epilogue, accumulate); break;
        case 8 + 1: wide_tile<1, 1>(x, k, panel, y, n, cols, bias, epilogue, accumulate); break;
        case 16 + 2: wide_tile<2, 2>(x, k, panel, y, n, cols, bias, epilogue, accumulate); break;
        case 16 + 1: wide_tile<2, 1>(x, k, panel, y, n, cols, bias, epilogue, accumulate); break;
        default: break;
    }
}

// Panels [first_panel, end_panel) of the product.
[[gnu::target("avx2,fma")]] void multiply_avx2(const float* packed, int64_t n, int64_t k, const float* x,
                                               int64_t rows, float* y, const float* bias, Epilogue epilogue,
                                               bool accumulate, int64_t first_panel, int64_t end_panel) {
    const int64_t block = block_rows(k, kTileRows);
    for (int64_t r0 = 0; r0 < rows; r0 += block) {
        const int64_t block_end = std::min(rows, r0 + block);
        const int64_t rest = (block_end - r0) % kTileRows;  // rows after the block's whole tiles
        const int64_t r_rest = block_end - rest;
        for (int64_t p = first_panel; p < end_panel; ++p) {
            const float* panel = packed + p * k * kPanelWidth;
            const int64_t c0 = p * kPanelWidth;
            const int64_t cols = std::min(kPanelWidth, n - c0);
            const float* panel_bias = bias ? bias + c0 : nullptr;
            // The first full tile of a panel fetches the next panel into the cache while it works on this one. With
            // fewer rows than a tile the weights stream through once, and the hardware prefetcher keeps up.
            const float* next = p + 1 < end_panel ? panel + k * kPanelWidth : nullptr;
            for (int64_t r = r0; r < r_rest; r += kTileRows, next = nullptr)
                tile<kTileRows>(x + r * k, k, panel, y + r * n + c0, n, cols, panel_bias, epilogue, accumulate, next);
            const float* xr = x + r_rest * k;
            float* yr = y + r_rest * n;
            switch (rest) {
                case 5: tile<5>(xr, k, panel, yr + c0, n, cols, panel_bias, epilogue, accumulate, nullptr); break;
                case 4: tile<4>(xr, k, panel, yr + c0, n, cols, panel_bias, epilogue, accumulate, nullptr); break;
                case 3: tile<3>(xr, k, panel, yr + c0, n, cols, panel_bias, epilogue, accumulate, nullptr); break;
                case 2:
                case 1: {
                    // Once a group of panels has passed (still in the cache), its last rows run across all of them.
                    const int64_t group = wide_panels(rest);
                    const int64_t in_group = (p - first_panel) % group + 1;
                    if (in_group == group || p + 1 == end_panel) {
                        const int64_t g0 = (p + 1 - in_group) * kPanelWidth;  // the group's first column
                        few_rows(rest, in_group, xr, k, packed + g0 * k, yr + g0, n, n - g0,
                                 bias ? bias + g0 : nullptr, epilogue, accumulate);
                    }
                    break;
                }
                default: break;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// int8. Four rows per tile: 4 x 2 int32 accumulators, 2 weight vectors, a broadcast, the pair sums and the int16
// ones fill AVX2's 16 registers.
constexpr int kTileRowsS8 = 4;
constexpr int64_t kQuad = 4;  // depths per 32-bit group

// The 4 bytes x[p..p+3] of a row as one int32 (past k: zeros, which meet zero weights).
[[gnu::always_inline]] inline int32_t quad(const uint8_t* x, int64_t p, int64_t k) {
    int32_t v = 0;
    std::memcpy(&v, x + p, static_cast<std::size_t>(std::min<int64_t>(kQuad, k - p)));
    return v;
}

// One group of 4 depths: 16 columns x 4 bytes of W in two vectors, against 4 bytes of each row broadcast.
template <int Rows>
[[gnu::target("avx2,fma")]] [[gnu::always_inline]] inline void step_s8(const int8_t* b, const int32_t* quads,
                                                                        __m256i* low, __m256i* high) {
    const __m256i ones = _mm256_set1_epi16(1);
    const __m256i b0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b));
    const __m256i b1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + 32));
#pragma GCC unroll 8
    for (int i = 0; i < Rows; ++i) {
        const __m256i a = _mm256_set1_epi32(quads[i]);
        low[i] = _mm256_add_epi32(low[i], _mm256_madd_epi16(_mm256_maddubs_epi16(a, b0), ones));
        high[i] = _mm256_add_epi32(high[i], _mm256_madd_epi16(_mm256_maddubs_epi16(a, b1), ones));
    }
}

[[gnu::target("avx2,fma")]] [[gnu::always_inline]] inline __m256 dequantize(__m256i acc, const float* shift,
                                                                             float row_scale, const float* col_scale,
                                                                             const float* bias) {
    __m256 v = _mm256_cvtepi32_ps(acc);
    if (shift) v = _mm256_sub_ps(v, _mm256_loadu_ps(shift));
    v = _mm256_mul_ps(_mm256_mul_ps(v, _mm256_set1_ps(row_scale)), _mm256_loadu_ps(col_scale));
    if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias));
    return v;
}

// y[rows <= kTileRowsS8, cols <= 16] for one panel; `c0` is the panel's first column.
template <int Rows>
[[gnu::target("avx2,fma")]] [[gnu::always_inline]] inline void tile_s8(const uint8_t* x, int64_t k,
                                                                        const int8_t* panel, float* y, int64_t n,
                                                                        int64_t c0, int64_t cols, int64_t r0,
                                                                        const Dequantize& dq, const float* bias,
                                                                        Epilogue epilogue, bool accumulate,
                                                                        const int8_t* next) {
    __m256i low[Rows], high[Rows];
#pragma GCC unroll 8
    for (int i = 0; i < Rows; ++i) low[i] = high[i] = _mm256_setzero_si256();
    const int8_t* b = panel;
    int32_t quads[Rows];
    int64_t p = 0;
    for (; p + kQuad <= k; p += kQuad, b += kQuad * kPanelWidth) {
        if (next) _mm_prefetch(reinterpret_cast<const char*>(next + p * kPanelWidth), _MM_HINT_T0);
#pragma GCC unroll 8
        for (int i = 0; i < Rows; ++i) std::memcpy(&quads[i], x + i * k + p, sizeof(int32_t));
        step_s8<Rows>(b, quads, low, high);
    }
    if (p < k) {
#pragma GCC unroll 8
        for (int i = 0; i < Rows; ++i) quads[i] = quad(x + i * k, p, k);
        step_s8<Rows>(b, quads, low, high);
    }

    alignas(32) float part[kPanelWidth];
    const float* shift = dq.col_shift ? dq.col_shift + c0 : nullptr;
    const float* col_scale = dq.col_scales + c0;
    const float* panel_bias = bias ? bias + c0 : nullptr;
    // The last panel of a width that is not a multiple of 16: its scales, shift and bias through zero-padded copies.
    alignas(32) float shift_part[kPanelWidth] = {}, scale_part[kPanelWidth] = {}, bias_part[kPanelWidth] = {};
    if (cols < kPanelWidth) {
        const auto size = static_cast<std::size_t>(cols) * sizeof(float);
        if (shift) shift = static_cast<const float*>(std::memcpy(shift_part, shift, size));
        col_scale = static_cast<const float*>(std::memcpy(scale_part, col_scale, size));
        if (panel_bias) panel_bias = static_cast<const float*>(std::memcpy(bias_part, panel_bias, size));
    }
#pragma GCC unroll 8
    for (int i = 0; i < Rows; ++i) {
        float* out = y + i * n;
        const float row_scale = dq.row_scales[r0 + i];
        __m256 v0 = dequantize(low[i], shift, row_scale, col_scale, panel_bias);
        __m256 v1 = dequantize(high[i], shift ? shift + 8 : nullptr, row_scale, col_scale + 8,
                               panel_bias ? panel_bias + 8 : nullptr);
        if (cols == kPanelWidth) {
            v0 = finish(v0, nullptr, out, epilogue, accumulate);
            v1 = finish(v1, nullptr, out + 8, epilogue, accumulate);
            _mm256_storeu_ps(out, v0);
            _mm256_storeu_ps(out + 8, v1);
        } else {
            if (accumulate) std::memcpy(part, out, static_cast<std::size_t>(cols) * sizeof(float));
            v0 = finish(v0, nullptr, part, epilogue, accumulate);
            v1 = finish(v1, nullptr, part + 8, epilogue, accumulate);
            _mm256_store_ps(part, v0);
            _mm256_store_ps(part + 8, v1);
            std::memcpy(out, part, static_cast<std::size_t>(cols) * sizeof(float));
        }
    }
}

[[gnu::target("avx2,fma")]] void multiply_u8s8_avx2(const int8_t* packed, int64_t n, int64_t k, const uint8_t* x,
                                                    int64_t rows, float* y, const Dequantize& dq, const float* bias,
                                                    Epilogue epilogue, bool accumulate, int64_t first_panel,
                                                    int64_t end_panel) {
    const int64_t panel_bytes = (k + kQuad - 1) / kQuad * kQuad * kPanelWidth;
    const int64_t block = block_rows(k, kTileRowsS8);
    for (int64_t r0 = 0; r0 < rows; r0 += block) {
        const int64_t block_end = std::min(rows, r0 + block);
        for (int64_t p = first_panel; p < end_panel; ++p) {
            const int8_t* panel = packed + p * panel_bytes;
            const int64_t c0 = p * kPanelWidth;
            const int64_t cols = std::min(kPanelWidth, n - c0);
            // As the f32 kernel: the first full tile of a panel prefetches the next panel.
            const int8_t* next = p + 1 < end_panel ? panel + panel_bytes : nullptr;
            int64_t r = r0;
            for (; r + kTileRowsS8 <= block_end; r += kTileRowsS8, next = nullptr)
                tile_s8<kTileRowsS8>(x + r * k, k, panel, y + r * n + c0, n, c0, cols, r, dq, bias, epilogue,
                                     accumulate, next);
            const uint8_t* xr = x + r * k;
            float* yr = y + r * n + c0;
            switch (block_end - r) {
                case 3: tile_s8<3>(xr, k, panel, yr, n, c0, cols, r, dq, bias, epilogue, accumulate, nullptr); break;
                case 2: tile_s8<2>(xr, k, panel, yr, n, c0, cols, r, dq, bias, epilogue, accumulate, nullptr); break;
                case 1: tile_s8<1>(xr, k, panel, yr, n, c0, cols, r, dq, bias, epilogue, accumulate, nullptr); break;
                default: break;
            }
        }
    }
}

}  // namespace

bool available() { return simd::level() >= simd::Level::avx2; }

std::size_t packed_bytes_s8(int64_t n, int64_t k) {
    return static_cast<std::size_t>((n + kPanelWidth - 1) / kPanelWidth * kPanelWidth * ((k + kQuad - 1) / kQuad) *
                                    kQuad);
}

void pack_s8(const int8_t* w, int64_t n, int64_t k, int8_t* packed) {
    const int64_t panels = (n + kPanelWidth - 1) / kPanelWidth, quads = (k + kQuad - 1) / kQuad;
    for (int64_t p = 0; p < panels; ++p)
        for (int64_t g = 0; g < quads; ++g)
            for (int64_t j = 0; j < kPanelWidth; ++j)
                for (int64_t e = 0; e < kQuad; ++e) {
                    const int64_t column = p * kPanelWidth + j, depth = g * kQuad + e;
                    packed[((p * quads + g) * kPanelWidth + j) * kQuad + e] =
                        column < n && depth < k ? w[column * k + depth] : int8_t{0};
                }
}

void multiply_u8s8(const int8_t* packed, int64_t n, int64_t k, const uint8_t* x, int64_t rows, float* y,
                   const Dequantize& dequantize, const float* bias, Epilogue epilogue, bool accumulate,
                   int threads) {
    for_panel_runs(n, threads, [&](int64_t first_panel, int64_t end_panel) {
        multiply_u8s8_avx2(packed, n, k, x, rows, y, dequantize, bias, epilogue, accumulate, first_panel, end_panel);
    });
}

std::size_t packed_floats(int64_t n, int64_t k) {
    return static_cast<std::size_t>((n + kPanelWidth - 1) / kPanelWidth * kPanelWidth * k);
}

void pack(const float* w, int64_t n, int64_t k, float* packed) {
    const int64_t panels = (n + kPanelWidth - 1) / kPanelWidth;
    for (int64_t p = 0; p < panels; ++p) {
        float* panel = packed + p * k * kPanelWidth;
        for (int64_t j = 0; j < kPanelWidth; ++j) {
            const int64_t column = p * kPanelWidth + j;
            for (int64_t d = 0; d < k; ++d) panel[d * kPanelWidth + j] = column < n ? w[column * k + d] : 0.0f;
        }
    }
}

void multiply(const float* packed, int64_t n, int64_t k, const float* x, int64_t rows, float* y, const float* bias,
              Epilogue epilogue, bool accumulate, int threads) {
    for_panel_runs(n, threads, [&](int64_t first_panel, int64_t end_panel) {
        multiply_avx2(packed, n, k, x, rows, y, bias, epilogue, accumulate, first_panel, end_panel);
    });
}

}  // namespace tolk::panel_gemm
