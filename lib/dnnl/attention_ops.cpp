// Attention matmuls on oneDNN (4-D strided views over the projection buffers, one primitive per shape, cached in
// the calling context) or, for blocks of up to 128 queries, on tolk's own loops; the softmax between them, a
// vectorised loop of our own.
#include "dnnl/attention_ops.h"

#include <bit>
#include <cstring>
#include <limits>

#include "core/attention_kernels.h"
#include "core/simd.h"

#include "dnnl/dnnl_internal.h"

namespace tolk {

using dnnl_detail::BoundPrimitive;
using dnnl_detail::make_pd;
using dnnl_detail::md_str;
using dnnl_detail::OpKey;
using dims = dnnl::memory::dims;
using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

namespace {

constexpr int mask_arg = DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1;

void check_view(const char* what, const HeadsView& v, int64_t width) {
    TOLK_CHECK(v.data != nullptr && v.batch > 0 && v.len > 0, "attention: ", what, " view is empty (batch ",
               v.batch, ", len ", v.len, ")");
    TOLK_CHECK(v.row_stride >= width && v.batch_stride >= (v.len - 1) * v.row_stride + width, "attention: ", what,
               " view strides (batch ", v.batch_stride, ", row ", v.row_stride, ") cannot hold ", v.len,
               " rows of ", width, " floats");
}

}  // namespace

namespace {

// Batch sizes vary from call to call (sentences finish, batches differ), and every new shape costs a primitive
// (~0.2 ms of JIT compilation): 780 of the 956 primitives of a 1,000-line greedy run were step attention shapes.
// Running a batch as chunks of 2^k items keeps the shapes to a few per length; every item is computed on its own
// either way, so only the per-call overhead (a few microseconds a chunk) is added.
template <typename Run>
void in_power_of_two_chunks(int64_t n, Run&& run) {
    int64_t offset = 0;
    for (int64_t chunk = int64_t{1} << (std::bit_width(static_cast<uint64_t>(n)) - 1); chunk > 0; chunk >>= 1) {
        if (n - offset >= chunk) {
            run(offset, chunk);
            offset += chunk;
        }
    }
}

void scores_chunk(DnnlContext& ctx, int64_t n_heads, int64_t d_head, const HeadsView& q, const HeadsView& k,
                  const float* mask, MaskKind mask_kind, float* scores) {
    const int64_t batch = q.batch, q_len = q.len, k_len = k.len;

    auto& impl = ctx.impl();
    OpKey key;
    key.op = dnnl_detail::op_attention_scores;
    const bool masked = mask != nullptr;
    key.v = {n_heads, d_head, batch, q_len, k_len, q.batch_stride, q.row_stride, k.batch_stride, k.row_stride,
             masked ? static_cast<int64_t>(mask_kind) : -1, 0, 0};
    BoundPrimitive* bound = impl.find(key);
    if (!bound) {
        const auto& engine = dnnl_detail::cpu_engine();
        // Q as {batch, n_heads, q_len, d_head}; K^T as {batch, n_heads, d_head, k_len}: the transpose is a stride.
        const dnnl::memory::desc q_md({batch, n_heads, q_len, d_head}, dt::f32,
                                      dims{q.batch_stride, d_head, q.row_stride, 1});
        const dnnl::memory::desc k_md({batch, n_heads, d_head, k_len}, dt::f32,
                                      dims{k.batch_stride, d_head, 1, k.row_stride});
        const dnnl::memory::desc s_md({batch, n_heads, q_len, k_len}, dt::f32, tag::abcd);
        // The mask keeps its batch dimension: oneDNN 2.6 drops to a reference kernel when a binary post-op
        // broadcasts over the batch ({1, 1, q_len, k_len}).
        const dnnl::memory::desc m_md(
            {batch, 1, mask_kind == MaskKind::per_query ? q_len : 1, k_len}, dt::f32, tag::abcd);
        dnnl::post_ops ops;
        if (masked) ops.append_binary(dnnl::algorithm::binary_add, m_md);
        dnnl::primitive_attr attr = dnnl_detail::with_user_scratchpad();
        attr.set_post_ops(ops);
        BoundPrimitive b;
        b.description = "attention scores Q " + md_str(q_md) + " x K^T " + md_str(k_md) +
                        (masked ? " + mask " + md_str(m_md) : std::string()) + " -> " + md_str(s_md);
        auto pd = make_pd(b.description, [&] {
            return dnnl::matmul::primitive_desc(dnnl::matmul::desc(q_md, k_md, s_md), attr, engine);
        });
        b.impl = pd.impl_info_str();
        b.scratchpad = pd.scratchpad_desc();
        b.primitive = dnnl::matmul(pd);
        b.args = {{DNNL_ARG_SRC, dnnl::memory(q_md, engine, nullptr)},
                  {DNNL_ARG_WEIGHTS, dnnl::memory(k_md, engine, nullptr)},
                  {DNNL_ARG_DST, dnnl::memory(s_md, engine, nullptr)}};
        if (masked) b.args.emplace(mask_arg, dnnl::memory(m_md, engine, nullptr));
        bound = &impl.insert(key, std::move(b));
    }
    bound->set(DNNL_ARG_SRC, q.data);
    bound->set(DNNL_ARG_WEIGHTS, k.data);
    bound->set(DNNL_ARG_DST, scores);
    if (masked) bound->set(mask_arg, mask);
    impl.execute(*bound);
}

void context_chunk(DnnlContext& ctx, int64_t n_heads, int64_t d_head, const float* probs, int64_t q_len,
                   const HeadsView& v, float* out, int64_t out_batch_stride, int64_t out_row_stride) {
    const int64_t batch = v.batch, k_len = v.len;

    auto& impl = ctx.impl();
    OpKey key;
    key.op = dnnl_detail::op_attention_context;
    key.v = {n_heads, d_head, batch, q_len, k_len, v.batch_stride, v.row_stride, out_batch_stride, out_row_stride,
             0, 0, 0};
    BoundPrimitive* bound = impl.find(key);
    if (!bound) {
        const auto& engine = dnnl_detail::cpu_engine();
        const dnnl::memory::desc p_md({batch, n_heads, q_len, k_len}, dt::f32, tag::abcd);
        const dnnl::memory::desc v_md({batch, n_heads, k_len, d_head}, dt::f32,
                                      dims{v.batch_stride, d_head, v.row_stride, 1});
        // dst {batch, n_heads, q_len, d_head} with head h at column h * d_head of each output row: merged heads.
        const dnnl::memory::desc o_md({batch, n_heads, q_len, d_head}, dt::f32,
                                      dims{out_batch_stride, d_head, out_row_stride, 1});
        BoundPrimitive b;
        b.description = "attention context P " + md_str(p_md) + " x V " + md_str(v_md) + " -> " + md_str(o_md);
        auto pd = make_pd(b.description, [&] {
            return dnnl::matmul::primitive_desc(dnnl::matmul::desc(p_md, v_md, o_md),
                                                dnnl_detail::with_user_scratchpad(), engine);
        });
        b.impl = pd.impl_info_str();
        b.scratchpad = pd.scratchpad_desc();
        b.primitive = dnnl::matmul(pd);
        b.args = {{DNNL_ARG_SRC, dnnl::memory(p_md, engine, nullptr)},
                  {DNNL_ARG_WEIGHTS, dnnl::memory(v_md, engine, nullptr)},
                  {DNNL_ARG_DST, dnnl::memory(o_md, engine, nullptr)}};
        bound = &impl.insert(key, std::move(b));
    }
    bound->set(DNNL_ARG_SRC, probs);
    bound->set(DNNL_ARG_WEIGHTS, v.data);
    bound->set(DNNL_ARG_DST, out);
    impl.execute(*bound);
}

// Up to this many queries per batch item run on tolk's own loops (core/attention_kernels.h) instead of oneDNN:
// a decoding step (one query per row), the beams of a sentence against its source, and the encoder of all but
// very long batches. In a decoding step the key length grows by one every step and the batch shrinks as sentences
// finish, so oneDNN would need a primitive per (batch, length) pair or its run-time-shape matmul, whose driver
// costs ~0.2 us per row and head (scripts/bench/onednn_micro.cpp step): more than the arithmetic of a head of 64
// over a few dozen keys. The encoder's blocks made primitives per padded length (JIT-compiled and kept: memory
// that grew with the number of distinct lengths one sentence at a time) and ran no faster: AMD Zen 5, 3
// alternating runs, identical outputs, float32 greedy, limit 8 -> 32: Multi30k 1.018 -> 0.979 s, newstest2014 500
// lines 1.753 -> 1.675 s; 32 -> 128: 109 newstest2014 lines over 250 characters 2.307 -> 2.214 s (2.611 -> 2.553 s
// held to AVX2); 200 lines one at a time, beam 4, peak RSS 52.5 (limit 8) -> 51.1 MB. Longer blocks stay on
// oneDNN's batched matmuls.
constexpr int64_t kDirectQueries = kAttentionLoopQueries;

void direct_scores(int64_t n_heads, int64_t d_head, const HeadsView& q, const HeadsView& k, const float* mask,
                   MaskKind mask_kind, float* scores) {
    const int64_t q_len = q.len, k_len = k.len;
    const int64_t mask_items = (mask_kind == MaskKind::per_query ? q_len : 1) * k_len;  // per batch item
    for (int64_t b = 0; b < q.batch; ++b)
        for (int64_t t = 0; t < q_len; ++t) {
            const float* add = nullptr;
            if (mask) add = mask + b * mask_items + (mask_kind == MaskKind::per_query ? t * k_len : 0);
            // scores[b, h, t, :] for every head h
            attention_kernels::dot_rows(q.data + b * q.batch_stride + t * q.row_stride,
                                        k.slots ? k.data : k.data + b * k.batch_stride, k.row_stride, k_len,
                                        n_heads, d_head, add, scores + (b * n_heads * q_len + t) * k_len,
                                        q_len * k_len, k.slots ? k.slots + b * k.slots_stride : nullptr,
                                        k.batch_stride);
        }
}

void direct_context(int64_t n_heads, int64_t d_head, const float* probs, int64_t q_len, const HeadsView& v,
                    float* out, int64_t out_batch_stride, int64_t out_row_stride) {
    const int64_t k_len = v.len;
    for (int64_t b = 0; b < v.batch; ++b)
        for (int64_t t = 0; t < q_len; ++t)
            attention_kernels::weighted_rows(probs + (b * n_heads * q_len + t) * k_len, q_len * k_len,
                                             v.slots ? v.data : v.data + b * v.batch_stride, v.row_stride, k_len,
                                             n_heads, d_head, out + b * out_batch_stride + t * out_row_stride,
                                             v.slots ? v.slots + b * v.slots_stride : nullptr, v.batch_stride);
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

void attention_scores(DnnlContext& ctx, int64_t n_heads, int64_t d_head, const HeadsView& q, const HeadsView& k,
                      const float* mask, MaskKind mask_kind, float* scores) {
    const int64_t width = n_heads * d_head;
    check_view("query", q, width);
    check_view("key", k, width);
    TOLK_CHECK(q.batch == k.batch, "attention: query batch ", q.batch, " != key batch ", k.batch);
    TOLK_CHECK(!q.slots && (!k.slots || q.len <= kDirectQueries), "attention: shared cache rows (slots) are read "
               "only by blocks of up to ", kDirectQueries, " queries, got ", q.len);
    const int64_t mask_items = (mask_kind == MaskKind::per_query ? q.len : 1) * k.len;  // per batch item
    const int64_t score_items = n_heads * q.len * k.len;
    if (q.len <= kDirectQueries) return direct_scores(n_heads, d_head, q, k, mask, mask_kind, scores);
    in_power_of_two_chunks(q.batch, [&](int64_t offset, int64_t count) {
        scores_chunk(ctx, n_heads, d_head, q.items(offset, count), k.items(offset, count),
                     mask ? mask + offset * mask_items : nullptr, mask_kind, scores + offset * score_items);
    });
}

void attention_context(DnnlContext& ctx, int64_t n_heads, int64_t d_head, const float* probs, int64_t q_len,
                       const HeadsView& v, float* out, int64_t out_batch_stride, int64_t out_row_stride) {
    const int64_t width = n_heads * d_head;
    check_view("value", v, width);
    TOLK_CHECK(probs != nullptr && out != nullptr && q_len > 0, "attention: empty probabilities or output");
    TOLK_CHECK(out_row_stride >= width && out_batch_stride >= (q_len - 1) * out_row_stride + width,
               "attention: output strides (batch ", out_batch_stride, ", row ", out_row_stride, ") cannot hold ",
               q_len, " rows of ", width, " floats");
    TOLK_CHECK(!v.slots || q_len <= kDirectQueries, "attention: shared cache rows (slots) are read only by "
               "blocks of up to ", kDirectQueries, " queries, got ", q_len);
    const int64_t prob_items = n_heads * q_len * v.len;
    if (q_len <= kDirectQueries)
        return direct_context(n_heads, d_head, probs, q_len, v, out, out_batch_stride, out_row_stride);
    in_power_of_two_chunks(v.batch, [&](int64_t offset, int64_t count) {
        context_chunk(ctx, n_heads, d_head, probs + offset * prob_items, q_len, v.items(offset, count),
                      out + offset * out_batch_stride, out_batch_stride, out_row_stride);
    });
}

void softmax_rows(float* x, int64_t rows, int64_t cols) {
    TOLK_CHECK(x != nullptr && rows > 0 && cols > 0 && cols <= std::numeric_limits<int>::max(),
               "softmax: bad input [", rows, ",", cols, "]");
    for (int64_t r = 0; r < rows; ++r) softmax_row(x + r * cols, static_cast<int>(cols));
}

}  // namespace tolk
