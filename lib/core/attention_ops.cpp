// Attention on tolk's own loops (core/attention_kernels.h) over strided views of the projection buffers, for
// every block: decoding steps, beams against their source, and encoder blocks of any length. Until 2026-12 blocks
// of more than 128 queries ran on oneDNN matmuls made per shape instead. Those summed in another order, so a
// sentence batched beside a long partner (its block padded past 128 positions) got other bits than alone (int8:
// 10 of the first 500 newstest2014 lines changed between --batch-size 16 and 32), and each new long length cost
// a JIT-compiled primitive. The loops give every sentence the same bits in any batch, and long lines lost no
// speed (the 109 newstest2014 lines over 250 characters, greedy, 3 alternating runs of scripts/bench/alternate.py
// on AMD Zen 5: float32 1.983 -> 1.860 s, int8 1.069 -> 1.048 s; held to AVX2, float32 2.478 -> 2.450 s).
#include "core/attention_ops.h"

#include <cstring>
#include <limits>

#include "core/attention_kernels.h"
#include "core/error.h"
#include "core/simd.h"

namespace tolk {

namespace {

void check_view(const char* what, const HeadsView& v, int64_t width) {
    TOLK_CHECK(v.data != nullptr && v.batch > 0 && v.len > 0, "attention: ", what, " view is empty (batch ",
               v.batch, ", len ", v.len, ")");
    TOLK_CHECK(v.row_stride >= width && v.batch_stride >= (v.len - 1) * v.row_stride + width, "attention: ", what,
               " view strides (batch ", v.batch_stride, ", row ", v.row_stride, ") cannot hold ", v.len,
               " rows of ", width, " floats");
}

constexpr int kLanes = 16;

// Scores below max - 87 get probability 0: exp_nonpositive stops at exp(-87) ~ 1.6e-38, and a masked key (a
// score near mask_value) must weigh exactly nothing.
constexpr float kZeroBelow = -87.0f;

// One row in place: maximum, then exp(x - max) written back and summed lane by lane, then scaled by 1 / sum (as
// PyTorch's CPU softmax does). 16 lanes in vectors of the CPU's width (core/simd.h), no -ffast-math. The tail runs
// through the same vector code from a padded copy and into the same lanes: element i always lands in lane
// i % kLanes and gets the same exp, so a row and the same row with masked (exactly 0) entries appended sum to the
// same float, and a decoding step agrees bit for bit with the teacher-forced pass over the whole sequence.
struct SoftmaxRow {
    template <int W>
    [[gnu::always_inline]] static simd::F<W> exp_or_zero(simd::F<W> t) {
        const simd::F<W> e = simd::exp_nonpositive<W>(t);
        return t < simd::splat<W>(kZeroBelow) ? simd::splat<W>(0.0f) : e;
    }

    template <int W>
    [[gnu::always_inline]] static void run(float* x, int n) {
        constexpr int V = kLanes / W;
        simd::F<W> lane_max[V];
        for (auto& lane : lane_max) lane = simd::splat<W>(x[0]);
        int i = 0;
        for (; i + kLanes <= n; i += kLanes) {
            for (int v = 0; v < V; ++v) lane_max[v] = simd::max<W>(simd::load<W>(x + i + v * W), lane_max[v]);
        }
        float max = x[0];
        for (int l = 0; l < kLanes; ++l) max = lane_max[l / W][l % W] > max ? lane_max[l / W][l % W] : max;
        for (int j = i; j < n; ++j) max = x[j] > max ? x[j] : max;

        simd::F<W> lane_sum[V] = {};
        for (i = 0; i + kLanes <= n; i += kLanes) {
            for (int v = 0; v < V; ++v) {
                const simd::F<W> e = exp_or_zero<W>(simd::load<W>(x + i + v * W) - max);
                simd::store<W>(x + i + v * W, e);
                lane_sum[v] += e;
            }
        }
        if (i < n) {
            // Padding is -inf: exp_or_zero gives it exactly 0.
            float tail[kLanes];
            for (int l = 0; l < kLanes; ++l) tail[l] = i + l < n ? x[i + l] : -std::numeric_limits<float>::infinity();
            for (int v = 0; v < V; ++v) {
                const simd::F<W> e = exp_or_zero<W>(simd::load<W>(tail + v * W) - max);
                simd::store<W>(tail + v * W, e);
                lane_sum[v] += e;
            }
            std::memcpy(x + i, tail, static_cast<std::size_t>(n - i) * sizeof(float));
        }
        float sum = 0.0f;
        for (int l = 0; l < kLanes; ++l) sum += lane_sum[l / W][l % W];
        const float scale = 1.0f / sum;
        for (i = 0; i < n; ++i) x[i] *= scale;
    }
};

void softmax_row(float* x, int n) { simd::call<SoftmaxRow>(x, n); }

}  // namespace

void attention(int64_t n_heads, int64_t d_head, const HeadsView& q, const HeadsView& k, const HeadsView& v,
               const float* mask, MaskKind mask_kind, float* out, int64_t out_batch_stride, int64_t out_row_stride,
               float* probs) {
    const int64_t width = n_heads * d_head;
    check_view("query", q, width);
    check_view("key", k, width);
    check_view("value", v, width);
    TOLK_CHECK(q.batch == k.batch && k.batch == v.batch, "attention: query, key and value batches ", q.batch, ", ",
               k.batch, " and ", v.batch, " differ");
    TOLK_CHECK(k.len == v.len && k.len <= std::numeric_limits<int>::max(), "attention: ", k.len, " keys but ", v.len,
               " values");
    TOLK_CHECK(!q.slots, "attention: queries cannot be read through shared cache rows (slots)");
    TOLK_CHECK(out != nullptr && probs != nullptr, "attention: no output or scratch");
    TOLK_CHECK(out_row_stride >= width && out_batch_stride >= (q.len - 1) * out_row_stride + width,
               "attention: output strides (batch ", out_batch_stride, ", row ", out_row_stride, ") cannot hold ",
               q.len, " rows of ", width, " floats");
    const int64_t q_len = q.len, k_len = k.len;
    const int64_t mask_items = (mask_kind == MaskKind::per_query ? q_len : 1) * k_len;  // per batch item
    for (int64_t b = 0; b < q.batch; ++b) {
        const float* keys = k.slots ? k.data : k.data + b * k.batch_stride;
        const float* values = v.slots ? v.data : v.data + b * v.batch_stride;
        const int32_t* key_slots = k.slots ? k.slots + b * k.slots_stride : nullptr;
        const int32_t* value_slots = v.slots ? v.slots + b * v.slots_stride : nullptr;
        for (int64_t t = 0; t < q_len; ++t) {
            const float* add = nullptr;
            if (mask) add = mask + b * mask_items + (mask_kind == MaskKind::per_query ? t * k_len : 0);
            // probs[h, :] = this query's scores against every key, head by head, then their softmax
            attention_kernels::dot_rows(q.data + b * q.batch_stride + t * q.row_stride, keys, k.row_stride, k_len,
                                        n_heads, d_head, add, probs, k_len, key_slots, k.batch_stride);
            softmax_rows(probs, n_heads, k_len);
            attention_kernels::weighted_rows(probs, k_len, values, v.row_stride, k_len, n_heads, d_head,
                                             out + b * out_batch_stride + t * out_row_stride, value_slots,
                                             v.batch_stride);
        }
    }
}

void softmax_rows(float* x, int64_t rows, int64_t cols) {
    TOLK_CHECK(x != nullptr && rows > 0 && cols > 0 && cols <= std::numeric_limits<int>::max(),
               "softmax: bad input [", rows, ",", cols, "]");
    for (int64_t r = 0; r < rows; ++r) softmax_row(x + r * cols, static_cast<int>(cols));
}

}  // namespace tolk
