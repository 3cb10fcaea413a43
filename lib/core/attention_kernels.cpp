// The dot products and weighted sums of a few attention queries, written once over W-float vectors and run at the
// CPU's width (see attention_kernels.h for why the width never changes the result).
#include "core/attention_kernels.h"

#include <cstring>

#include "core/simd.h"

namespace tolk::attention_kernels {
namespace {

// A dot product's lanes: the head's floats d, d + 16, d + 32, ... accumulate in lane d % 16.
constexpr int kLanes = 16;
// Queries of up to kMaxBlocks * kLanes floats (all heads) stay in vectors; wider ones, and heads that are not a
// multiple of 16 floats, take the plain loops below (OPUS-MT models have heads of 64 and up to 1,024 floats).
constexpr int64_t kMaxBlocks = 64;

// Key or value row j (see attention_kernels.h).
[[gnu::always_inline]] inline const float* row_at(const float* base, int64_t stride, const int32_t* slots,
                                                  int64_t slot_stride, int64_t j) {
    return base + j * stride + (slots ? slots[j] * slot_stride : 0);
}

struct DotRows {
    template <int W>
    [[gnu::always_inline]] static void run(const float* q, const float* keys, int64_t stride, int64_t n,
                                           int64_t heads, int64_t d, const float* add, float* out,
                                           int64_t out_stride, const int32_t* slots, int64_t slot_stride) {
        constexpr int V = kLanes / W;
        const int64_t blocks = d / kLanes;  // per head
        if (d % kLanes != 0 || heads * blocks > kMaxBlocks) {
            for (int64_t j = 0; j < n; ++j)
                for (int64_t h = 0; h < heads; ++h) {
                    const float* k = row_at(keys, stride, slots, slot_stride, j) + h * d;
                    float dot = 0.0f;
                    for (int64_t i = 0; i < d; ++i) dot += q[h * d + i] * k[i];
                    out[h * out_stride + j] = add ? dot + add[j] : dot;
                }
            return;
        }
        simd::F<W> qv[kMaxBlocks * V];
        for (int64_t i = 0; i < heads * blocks * V; ++i) qv[i] = simd::load<W>(q + i * W);
        for (int64_t j = 0; j < n; ++j) {
            const float* row = row_at(keys, stride, slots, slot_stride, j);
            for (int64_t h = 0; h < heads; ++h) {
                simd::F<W> acc[V] = {};
                for (int64_t c = h * blocks; c < (h + 1) * blocks; ++c)
                    for (int v = 0; v < V; ++v)
                        acc[v] += qv[c * V + v] * simd::load<W>(row + c * kLanes + v * W);
                const float dot = simd::sum16<W>(acc);
                out[h * out_stride + j] = add ? dot + add[j] : dot;
            }
        }
    }
};

// Output floats a weighted sum keeps in registers at a time (heads that are a multiple of it).
constexpr int64_t kSumFloats = 32;

struct WeightedRows {
    template <int W>
    [[gnu::always_inline]] static void run(const float* p, int64_t p_stride, const float* values, int64_t stride,
                                           int64_t n, int64_t heads, int64_t d, float* out, const int32_t* slots,
                                           int64_t slot_stride) {
        const int64_t width = heads * d;
        if (d % W != 0) {
            std::memset(out, 0, static_cast<std::size_t>(width) * sizeof(float));
            for (int64_t j = 0; j < n; ++j)
                for (int64_t h = 0; h < heads; ++h) {
                    const float pj = p[h * p_stride + j];
                    const float* v = row_at(values, stride, slots, slot_stride, j) + h * d;
                    for (int64_t i = 0; i < d; ++i) out[h * d + i] += pj * v[i];
                }
            return;
        }
        if (d % kSumFloats == 0) {
            // Every output float is its own running sum over j, in order. Here kSumFloats of them at a time stay in
            // registers while the keys pass by, instead of being loaded from and stored to `out` at every key.
            constexpr int V = kSumFloats / W;
            for (int64_t h = 0; h < heads; ++h)
                for (int64_t c = h * d; c < (h + 1) * d; c += kSumFloats) {
                    simd::F<W> acc[V] = {};
                    for (int64_t j = 0; j < n; ++j) {
                        const float* row = row_at(values, stride, slots, slot_stride, j) + c;
                        const simd::F<W> pj = simd::splat<W>(p[h * p_stride + j]);
#pragma GCC unroll 8
                        for (int v = 0; v < V; ++v) acc[v] += pj * simd::load<W>(row + v * W);
                    }
#pragma GCC unroll 8
                    for (int v = 0; v < V; ++v) simd::store<W>(out + c + v * W, acc[v]);
                }
            return;
        }
        // Every output float is its own running sum over j, kept in `out` (a few kB, in L1) between key rows.
        std::memset(out, 0, static_cast<std::size_t>(width) * sizeof(float));
        for (int64_t j = 0; j < n; ++j) {
            const float* row = row_at(values, stride, slots, slot_stride, j);
            for (int64_t h = 0; h < heads; ++h) {
                const simd::F<W> pj = simd::splat<W>(p[h * p_stride + j]);
                for (int64_t i = h * d; i < (h + 1) * d; i += W)
                    simd::store<W>(out + i, simd::load<W>(out + i) + pj * simd::load<W>(row + i));
            }
        }
    }
};

}  // namespace

void dot_rows(const float* q, const float* keys, int64_t key_stride, int64_t n, int64_t heads, int64_t d_head,
              const float* add, float* out, int64_t out_head_stride, const int32_t* slots, int64_t slot_stride) {
    simd::call<DotRows>(q, keys, key_stride, n, heads, d_head, add, out, out_head_stride, slots, slot_stride);
}

void weighted_rows(const float* p, int64_t p_head_stride, const float* values, int64_t value_stride, int64_t n,
                   int64_t heads, int64_t d_head, float* out, const int32_t* slots, int64_t slot_stride) {
    simd::call<WeightedRows>(p, p_head_stride, values, value_stride, n, heads, d_head, out, slots, slot_stride);
}

}  // namespace tolk::attention_kernels
