// The dot products and weighted sums of a few attention queries, written once over W-float vectors and run at the
// CPU's width (see attention_kernels.h for why the width never changes the result).
#include "core/attention_kernels.h"

#include <cstring>

#include "core/simd.h"

namespace tolk::attention_kernels {
namespace {

// A dot product's lanes: the head's floats d, d + 16, d + 32, ... accumulate in lane d % 16.
constexpr int kLanes = 16;
// Heads of up to kMaxBlocks * kLanes floats keep the query in vectors; wider ones, and heads that are not a
// multiple of 16 floats, take the plain loops below (OPUS-MT models have heads of 64).
constexpr int64_t kMaxBlocks = 16;
// A weighted sum runs this many output floats at a time when the head allows it: independent sums that keep the
// adder busy while each waits for its previous addition.
constexpr int64_t kWideChunk = 64;

// Lanes l and l + W/2 added: the first half of the vector plus the second.
template <int W>
[[gnu::always_inline]] inline simd::F<W / 2> fold(simd::F<W> v) {
    simd::F<W / 2> lo, hi;
    std::memcpy(&lo, &v, sizeof lo);
    std::memcpy(&hi, reinterpret_cast<const char*>(&v) + sizeof lo, sizeof hi);
    return lo + hi;
}

// The sum of 16 lanes held in 16 / W vectors (lane l of vector v is lane v * W + l), always in the same tree:
// x[l] + x[l + 8], then pairs 4 apart, 2 apart, 1 apart.
template <int W>
[[gnu::always_inline]] inline float sum16(const simd::F<W>* x) {
    simd::F<4> quarter;
    if constexpr (W == 16) {
        quarter = fold<8>(fold<16>(x[0]));
    } else if constexpr (W == 8) {
        quarter = fold<8>(x[0] + x[1]);
    } else {
        static_assert(W == 4);
        quarter = (x[0] + x[2]) + (x[1] + x[3]);
    }
    const simd::F<2> pair = fold<4>(quarter);
    return pair[0] + pair[1];
}

float plain_dot(const float* a, const float* b, int64_t n) {
    float sum = 0.0f;
    for (int64_t i = 0; i < n; ++i) sum += a[i] * b[i];
    return sum;
}

struct DotRows {
    template <int W>
    [[gnu::always_inline]] static void run(const float* q, const float* keys, int64_t stride, int64_t n, int64_t d,
                                           const float* add, float* out) {
        constexpr int V = kLanes / W;
        const int64_t blocks = d / kLanes;
        if (d % kLanes != 0 || blocks > kMaxBlocks) {
            for (int64_t j = 0; j < n; ++j) {
                const float dot = plain_dot(q, keys + j * stride, d);
                out[j] = add ? dot + add[j] : dot;
            }
            return;
        }
        simd::F<W> qv[kMaxBlocks * V];
        for (int64_t i = 0; i < blocks * V; ++i) qv[i] = simd::load<W>(q + i * W);
        // Four keys at a time: four independent sums.
        constexpr int kKeys = 4;
        int64_t j = 0;
        for (; j + kKeys <= n; j += kKeys) {
            simd::F<W> acc[kKeys][V] = {};
            for (int64_t c = 0; c < blocks; ++c)
                for (int r = 0; r < kKeys; ++r)
                    for (int v = 0; v < V; ++v)
                        acc[r][v] += qv[c * V + v] * simd::load<W>(keys + (j + r) * stride + c * kLanes + v * W);
            for (int r = 0; r < kKeys; ++r) {
                const float dot = sum16<W>(acc[r]);
                out[j + r] = add ? dot + add[j + r] : dot;
            }
        }
        for (; j < n; ++j) {
            simd::F<W> acc[V] = {};
            for (int64_t c = 0; c < blocks; ++c)
                for (int v = 0; v < V; ++v)
                    acc[v] += qv[c * V + v] * simd::load<W>(keys + j * stride + c * kLanes + v * W);
            const float dot = sum16<W>(acc);
            out[j] = add ? dot + add[j] : dot;
        }
    }
};

// out[0, C) = sum_j p[j] * values[j * stride + (0, C)] for one chunk of C floats (a multiple of W).
template <int W, int64_t C>
[[gnu::always_inline]] inline void weighted_chunk(const float* p, const float* values, int64_t stride, int64_t n,
                                                  float* out) {
    constexpr int64_t V = C / W;
    simd::F<W> acc[V] = {};
    for (int64_t j = 0; j < n; ++j) {
        const simd::F<W> pj = simd::splat<W>(p[j]);
        const float* row = values + j * stride;
        for (int64_t v = 0; v < V; ++v) acc[v] += pj * simd::load<W>(row + v * W);
    }
    for (int64_t v = 0; v < V; ++v) simd::store<W>(out + v * W, acc[v]);
}

struct WeightedRows {
    template <int W>
    [[gnu::always_inline]] static void run(const float* p, const float* values, int64_t stride, int64_t n, int64_t d,
                                           float* out) {
        int64_t c = 0;
        if (d % kWideChunk == 0)
            for (; c < d; c += kWideChunk) weighted_chunk<W, kWideChunk>(p, values + c, stride, n, out + c);
        for (; c + kLanes <= d; c += kLanes) weighted_chunk<W, kLanes>(p, values + c, stride, n, out + c);
        for (; c < d; ++c) {
            float sum = 0.0f;
            for (int64_t j = 0; j < n; ++j) sum += p[j] * values[j * stride + c];
            out[c] = sum;
        }
    }
};

}  // namespace

void dot_rows(const float* q, const float* keys, int64_t key_stride, int64_t n, int64_t d_head, const float* add,
              float* out) {
    simd::call<DotRows>(q, keys, key_stride, n, d_head, add, out);
}

void weighted_rows(const float* p, const float* values, int64_t value_stride, int64_t n, int64_t d_head, float* out) {
    simd::call<WeightedRows>(p, values, value_stride, n, d_head, out);
}

}  // namespace tolk::attention_kernels
