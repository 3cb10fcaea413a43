// Row scans for the searches, written as fixed-width lane loops (no reassociated float reductions, no -ffast-math):
// each of 16 lanes accumulates its own elements, lanes are combined at the end, whatever the CPU's vector width.
#include "decode/row_ops.h"

#include "core/simd.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace tolk::row_ops {
namespace {

constexpr int kLanes = 16;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// The maximum, lane by lane over 16 lanes held in vectors of the CPU's width.
struct MaxLanes {
    template <int W>
    [[gnu::always_inline]] static float run(const float* x, int n) {
        constexpr int V = kLanes / W;
        simd::F<W> lanes[V];
        for (auto& lane : lanes) lane = simd::splat<W>(kNegInf);
        int i = 0;
        for (; i + kLanes <= n; i += kLanes) {
            for (int v = 0; v < V; ++v) lanes[v] = simd::max<W>(simd::load<W>(x + i + v * W), lanes[v]);
        }
        float m = kNegInf;
        for (int l = 0; l < kLanes; ++l) m = lanes[l / W][l % W] > m ? lanes[l / W][l % W] : m;
        for (; i < n; ++i) m = x[i] > m ? x[i] : m;
        return m;
    }
};

// sum(exp(x[i] - max)): 16 lanes sum 256 values in float, then flush to double, so a 60k-entry row loses nothing
// visible; the elements after the last whole block are added one by one in double.
struct SumExpLanes {
    template <int W>
    [[gnu::always_inline]] static double run(const float* x, int n, float max) {
        constexpr int V = kLanes / W;
        constexpr int kChunk = 16 * kLanes;
        double total = 0.0;
        int i = 0;
        for (; i + kChunk <= n; i += kChunk) {
            simd::F<W> lanes[V] = {};
            for (int j = 0; j < kChunk; j += kLanes) {
                for (int v = 0; v < V; ++v)
                    lanes[v] += simd::exp_nonpositive<W>(simd::load<W>(x + i + j + v * W) - max);
            }
            for (int l = 0; l < kLanes; ++l) total += lanes[l / W][l % W];
        }
        for (; i < n; i += W) {
            float part[W];
            const int count = n - i < W ? n - i : W;
            for (int l = 0; l < W; ++l) part[l] = l < count ? x[i + l] : max;
            const simd::F<W> e = simd::exp_nonpositive<W>(simd::load<W>(part) - max);
            for (int l = 0; l < count; ++l) total += e[l];
        }
        return total;
    }
};

float max_lanes(const float* x, int n) { return simd::call<MaxLanes>(x, n); }
double sum_exp_lanes(const float* x, int n, float max) { return simd::call<SumExpLanes>(x, n, max); }

__attribute__((target_clones("avx512f", "avx2", "default")))
int first_above_lanes(const float* x, int from, int n, float bound) {
    // Whole chunks are tested without an early exit (that is what vectorises); a hit is then found element by
    // element inside its chunk.
    constexpr int kChunk = 8 * kLanes;
    int i = from;
    for (; i + kChunk <= n; i += kChunk) {
        int32_t lane[kLanes] = {};
        for (int j = 0; j < kChunk; j += kLanes) {
            for (int l = 0; l < kLanes; ++l) lane[l] |= x[i + j + l] > bound ? 1 : 0;
        }
        int32_t any = 0;
        for (int l = 0; l < kLanes; ++l) any |= lane[l];
        if (any) break;
    }
    for (; i < n; ++i) {
        if (x[i] > bound) return i;
    }
    return n;
}

}  // namespace

float max_value(const float* x, int n) { return max_lanes(x, n); }

RowStats row_stats(const float* x, int n) {
    // 2048 floats = 8 KB per block: the second scan of a block (sum of exp) reads it from L1. Blocks combine as
    // sum = sum * exp(old_max - new_max) + block_sum when a block raises the maximum.
    constexpr int kBlock = 2048;
    float max = kNegInf;
    int max_block = -1;
    double sum = 0.0;
    for (int i = 0; i < n; i += kBlock) {
        const int len = std::min(kBlock, n - i);
        const float block_max = max_lanes(x + i, len);
        if (!(block_max > kNegInf)) continue;
        const double block_sum = sum_exp_lanes(x + i, len, block_max);
        if (block_max > max) {
            sum = sum * std::exp(static_cast<double>(max) - block_max) + block_sum;
            max = block_max;
            max_block = i;
        } else {
            sum += block_sum * std::exp(static_cast<double>(block_max) - max);
        }
    }
    RowStats stats{max, n, max};
    if (max_block >= 0) {
        stats.argmax = max_block + first_equal(x + max_block, std::min(kBlock, n - max_block), max);
        stats.lse = max + static_cast<float>(std::log(sum));
    }
    return stats;
}

float log_sum_exp(const float* x, int n, float max) {
    if (!(max > kNegInf)) return max;
    return max + static_cast<float>(std::log(sum_exp_lanes(x, n, max)));
}

int first_above(const float* x, int from, int n, float bound) { return first_above_lanes(x, from, n, bound); }

int first_equal(const float* x, int n, float value) {
    // Everything before the first element above the largest float below `value` is below `value`.
    const float below = std::nextafter(value, kNegInf);
    for (int i = first_above(x, 0, n, below); i < n; i = first_above(x, i + 1, n, below)) {
        if (x[i] == value) return i;
    }
    return n;
}

}  // namespace tolk::row_ops
