// Stand-alone oneDNN measurements behind the design notes in lib/dnnl and the README (tolk code only in `panel`):
//   matmul   f32 matmul time and GFLOP/s for M rows x K x N with prepacked weights (the kernels tolk's Linear uses)
//   memory   resident memory each new matmul primitive adds (one per row count; the first ones also page in code)
//   step     a decoding step's attention scores, [batch, heads, 1, 64] x keys with K/V-cache strides: oneDNN with
//            run-time shapes (tolk's before lib/core/attention_kernels) and a fixed-shape primitive, against
//            tolk's loops (which also time the weighted sum of values)
//   blockdiag  a decoding step's self-attention matmuls (scores and weighted values) head by head, as tolk runs
//            them, against one block-diagonal product per row, cold caches
//   layouts  one matmul with the weights as "ab" ({in, out} row-major, what oneDNN's jit gemm picks) and as "ba"
//            (PyTorch's [out, in] as it is), f32, s8 or u8 sources (s8 weights), 16 MB of other memory written
//            between calls (as a decoder's other layers do); best of 5 rounds
//   packed   the same product on oneDNN's packed gemm (weights packed once, as tolk's int8 Linear does on CPUs
//            without AVX-512) against the matmul primitive with the layout Linear gives it there ("ba" for u8
//            sources, oneDNN's pick for f32), f32 or u8 sources, same cold-cache rounds
//   panel    f32: tolk's panel kernel (lib/core/panel_gemm.cpp, AVX2) against the matmul primitive with the
//            layout Linear gave it before the panel kernel, same cold-cache rounds; run it with
//            ONEDNN_MAX_CPU_ISA=AVX2 on an AVX-512 CPU
//   fma      the ceiling those kernels meet: 12 independent chains of AVX2 multiply-adds (vfmadd231ps on 8
//            floats), GFLOP/s of one thread; needs a CPU with AVX2 and FMA
// Build and run (from the repository root; one thread, as tolk's default workers):
//   g++ -O2 -std=c++20 -fopenmp -Wno-psabi -ffp-contract=off -Ilib scripts/bench/onednn_micro.cpp \
//       lib/core/panel_gemm.cpp lib/core/attention_kernels.cpp -ldnnl -o work/onednn_micro
//   OMP_NUM_THREADS=1 work/onednn_micro matmul 256 256 16,32,128
//   OMP_NUM_THREADS=1 work/onednn_micro matmul 256 8001 1,16,32,128
//   OMP_NUM_THREADS=1 work/onednn_micro memory 256 256 64
//   OMP_NUM_THREADS=1 work/onednn_micro step 32 12
//   OMP_NUM_THREADS=1 work/onednn_micro blockdiag 128 4,12,24
//   OMP_NUM_THREADS=1 work/onednn_micro layouts f32 256 1024 1,2,4,8,16,32,64,128
//   OMP_NUM_THREADS=1 work/onednn_micro layouts u8 256 8001 1,4,16,128
//   OMP_NUM_THREADS=1 ONEDNN_MAX_CPU_ISA=AVX2 work/onednn_micro packed f32 256 8001 1,2,4,8,16,32,128
//   OMP_NUM_THREADS=1 ONEDNN_MAX_CPU_ISA=AVX2 work/onednn_micro panel 256 8001 1,2,4,8,16,32,128
//   work/onednn_micro fma
#include <dnnl.hpp>

#include "core/attention_kernels.h"
#include "core/panel_gemm.h"
#include "core/simd.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

// oneDNN's packed gemm (column-major BLAS conventions), exported by libdnnl 2.6 from its internal
// cpu/gemm/gemm_pack.hpp; declared here as tolk declares it in lib/dnnl/packed_gemm.cpp.
namespace dnnl::impl::cpu {
dnnl_status_t sgemm_pack_get_size(const char*, const char*, const char*, const dnnl_dim_t*, const dnnl_dim_t*,
                                  const dnnl_dim_t*, const dnnl_dim_t*, const dnnl_dim_t*, size_t*, bool*);
dnnl_status_t sgemm_pack(const char*, const char*, const char*, const dnnl_dim_t*, const dnnl_dim_t*,
                         const dnnl_dim_t*, const dnnl_dim_t*, const dnnl_dim_t*, const float*, float*);
dnnl_status_t sgemm_compute(const char*, const char*, const dnnl_dim_t*, const dnnl_dim_t*, const dnnl_dim_t*,
                            const float*, const dnnl_dim_t*, const float*, const dnnl_dim_t*, const float*, float*,
                            const dnnl_dim_t*);
dnnl_status_t gemm_s8u8s32_pack_get_size(const char*, const char*, const char*, const dnnl_dim_t*,
                                         const dnnl_dim_t*, const dnnl_dim_t*, const dnnl_dim_t*, const dnnl_dim_t*,
                                         size_t*, bool*);
dnnl_status_t gemm_s8u8s32_pack(const char*, const char*, const char*, const dnnl_dim_t*, const dnnl_dim_t*,
                                const dnnl_dim_t*, const dnnl_dim_t*, const dnnl_dim_t*, const void*, void*);
dnnl_status_t gemm_s8u8s32_compute(const char*, const char*, const char*, const dnnl_dim_t*, const dnnl_dim_t*,
                                   const dnnl_dim_t*, const int8_t*, const dnnl_dim_t*, const uint8_t*,
                                   const dnnl_dim_t*, const float*, int32_t*, const dnnl_dim_t*, const int32_t*);
}  // namespace dnnl::impl::cpu

namespace {

using dims = dnnl::memory::dims;
using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

// Microseconds per call of f, after a warm-up, over at least ~0.2 s.
template <typename F>
double time_us(F&& f) {
    for (int i = 0; i < 20; ++i) f();
    int calls = 0;
    const auto start = std::chrono::steady_clock::now();
    double elapsed = 0;
    do {
        f();
        ++calls;
        elapsed = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
    } while (elapsed < 2e5);
    return elapsed / calls;
}

long rss_kb() {
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);)
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return 0;
}

std::vector<int64_t> parse_list(const char* text) {
    std::vector<int64_t> out;
    std::stringstream in(text);
    for (std::string item; std::getline(in, item, ',');) out.push_back(std::stoll(item));
    return out;
}

dnnl::matmul::primitive_desc matmul_pd(const dnnl::engine& engine, int64_t m, int64_t k, int64_t n) {
    return dnnl::matmul::primitive_desc(
        dnnl::matmul::desc(dnnl::memory::desc({m, k}, dt::f32, tag::ab), dnnl::memory::desc({k, n}, dt::f32, tag::any),
                           dnnl::memory::desc({m, n}, dt::f32, tag::ab)),
        engine);
}

void run_matmul(const dnnl::engine& engine, dnnl::stream& stream, int64_t k, int64_t n, const std::vector<int64_t>& rows) {
    for (const int64_t m : rows) {
        const auto pd = matmul_pd(engine, m, k, n);
        const dnnl::matmul matmul(pd);
        dnnl::memory a(pd.src_desc(), engine), w(pd.weights_desc(), engine), c(pd.dst_desc(), engine);
        const double us = time_us([&] {
            matmul.execute(stream, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, c}});
        });
        std::printf("matmul %ld x %ld x %ld: %9.1f us  %6.1f GFLOP/s  %s\n", static_cast<long>(m),
                    static_cast<long>(k), static_cast<long>(n), us, 2.0 * m * k * n / us / 1e3, pd.impl_info_str());
    }
}

void run_memory(const dnnl::engine& engine, int64_t k, int64_t n, int64_t count) {
    std::vector<dnnl::matmul> kept;
    const long before = rss_kb();
    for (int64_t m = 1; m <= count; ++m) {
        const auto pd = matmul_pd(engine, m, k, n);
        kept.emplace_back(pd);  // creating it generates its kernels; buffers would blur the count, so none
        if (m % 16 == 0 || m == count)
            std::printf("%ld primitives (%ld x %ld, rows 1..%ld): +%ld kB resident, %.1f kB each\n",
                        static_cast<long>(m), static_cast<long>(k), static_cast<long>(n), static_cast<long>(m),
                        rss_kb() - before, static_cast<double>(rss_kb() - before) / static_cast<double>(m));
    }
}

void run_step(const dnnl::engine& engine, dnnl::stream& stream, int64_t batch, int64_t keys) {
    // tolk's K/V cache: [batch, capacity, d_model] with heads side by side; K^T of a head is a strided view.
    const int64_t heads = 4, d_head = 64, d_model = heads * d_head, capacity = 64;
    std::vector<float> q(batch * d_model, 0.1f), k(batch * capacity * d_model, 0.2f), s(batch * heads * keys);
    const dnnl::memory::desc q_md({batch, heads, 1, d_head}, dt::f32, dims{d_model, d_head, d_model, 1});
    const dnnl::memory::desc k_md({batch, heads, d_head, keys}, dt::f32, dims{capacity * d_model, d_head, 1, d_model});
    const dnnl::memory::desc s_md({batch, heads, 1, keys}, dt::f32, tag::abcd);
    dnnl::memory qm(q_md, engine, q.data()), km(k_md, engine, k.data()), sm(s_md, engine, s.data());
    const auto r = DNNL_RUNTIME_DIM_VAL;
    const dnnl::matmul::primitive_desc run_time(
        dnnl::matmul::desc(dnnl::memory::desc({r, heads, 1, d_head}, dt::f32, dims{r, d_head, r, 1}),
                           dnnl::memory::desc({r, heads, d_head, r}, dt::f32, dims{r, d_head, 1, r}),
                           dnnl::memory::desc({r, heads, 1, r}, dt::f32, dims{r, r, r, 1})),
        engine);
    const dnnl::matmul::primitive_desc fixed(dnnl::matmul::desc(q_md, k_md, s_md), engine);
    for (const auto* pd : {&run_time, &fixed}) {
        const dnnl::matmul matmul(*pd);
        const double us = time_us([&] {
            matmul.execute(stream, {{DNNL_ARG_SRC, qm}, {DNNL_ARG_WEIGHTS, km}, {DNNL_ARG_DST, sm}});
        });
        std::printf("step scores, batch %ld, %ld keys, %s shape: %7.1f us (%.2f us per row and head)  %s\n",
                    static_cast<long>(batch), static_cast<long>(keys), pd == &run_time ? "run-time" : "fixed",
                    us, us / static_cast<double>(batch * heads), pd->impl_info_str());
    }
    // tolk's loops for the same scores, and for the weighted sum of the values (the cache as V) that follows.
    std::vector<float> out(batch * d_model);
    const double dots = time_us([&] {
        for (int64_t b = 0; b < batch; ++b)
            tolk::attention_kernels::dot_rows(q.data() + b * d_model, k.data() + b * capacity * d_model, d_model,
                                              keys, heads, d_head, nullptr, s.data() + b * heads * keys, keys);
    });
    const double sums = time_us([&] {
        for (int64_t b = 0; b < batch; ++b)
            tolk::attention_kernels::weighted_rows(s.data() + b * heads * keys, keys,
                                                   k.data() + b * capacity * d_model, d_model, keys, heads, d_head,
                                                   out.data() + b * d_model);
    });
    std::printf("step scores, batch %ld, %ld keys, tolk's loops: %7.1f us (%.2f us per row and head); weighted "
                "sums %7.1f us (%.2f us per row and head)\n",
                static_cast<long>(batch), static_cast<long>(keys), dots, dots / static_cast<double>(batch * heads),
                sums, sums / static_cast<double>(batch * heads));
}

// Best microseconds per call of run(t) for t = 0 and 1 over 5 alternating rounds, each call after `other` (16 MB)
// was written, so that the weights come from memory as they do between a decoder's layers.
template <typename Run>
void best_cold_us(std::vector<char>& other, Run&& run, double best[2]) {
    best[0] = best[1] = 1e30;
    for (int round = 0; round < 5; ++round) {
        for (int t = 0; t < 2; ++t) {
            int calls = 0;
            double total = 0;
            while (total < 4e4) {
                std::memset(other.data(), round + calls, other.size());
                const auto start = std::chrono::steady_clock::now();
                run(t);
                total += std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
                ++calls;
            }
            best[t] = std::min(best[t], total / calls);
        }
    }
}

// A decoding step's self-attention matmuls (scores and the weighted sum of values) for `batch` rows over `keys`
// cached positions, two ways: head by head as tolk runs them ([batch, heads] items of one query row each), and
// block-diagonal ([batch] items: the heads' queries as `heads` rows of d_model columns, zero outside their own
// head, against all of K, then the diagonal blocks of the product kept; `heads` times the flops, a quarter of the
// items). Cold caches as in `layouts`; the block-diagonal time includes building its queries and extracting the
// result. Softmax is left out (the same in both).
void run_blockdiag(const dnnl::engine& engine, dnnl::stream& stream, int64_t batch, int64_t keys) {
    const int64_t heads = 4, d_head = 64, d_model = heads * d_head, capacity = 64;
    std::vector<float> q(batch * d_model, 0.1f), k(batch * capacity * d_model, 0.2f), v(k.size(), 0.3f);
    std::vector<float> s(batch * heads * keys, 0.01f), out(batch * d_model), qbd(batch * heads * d_model),
        wide(batch * heads * d_model);
    struct Bound {
        std::string impl;
        dnnl::matmul matmul;
        std::unordered_map<int, dnnl::memory> args;
        void run(dnnl::stream& stream) { matmul.execute(stream, args); }
    };
    const auto bind = [&](const dnnl::memory::desc& a, const dnnl::memory::desc& b, const dnnl::memory::desc& c,
                          float* pa, float* pb, float* pc) {
        const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, b, c), engine);
        return Bound{pd.impl_info_str(), dnnl::matmul(pd),
                     {{DNNL_ARG_SRC, dnnl::memory(a, engine, pa)}, {DNNL_ARG_WEIGHTS, dnnl::memory(b, engine, pb)},
                      {DNNL_ARG_DST, dnnl::memory(c, engine, pc)}}};
    };
    // Head by head.
    auto hs = bind(dnnl::memory::desc({batch, heads, 1, d_head}, dt::f32, dims{d_model, d_head, d_model, 1}),
                   dnnl::memory::desc({batch, heads, d_head, keys}, dt::f32,
                                      dims{capacity * d_model, d_head, 1, d_model}),
                   dnnl::memory::desc({batch, heads, 1, keys}, dt::f32, tag::abcd), q.data(), k.data(), s.data());
    auto hc = bind(dnnl::memory::desc({batch, heads, 1, keys}, dt::f32, tag::abcd),
                   dnnl::memory::desc({batch, heads, keys, d_head}, dt::f32,
                                      dims{capacity * d_model, d_head, d_model, 1}),
                   dnnl::memory::desc({batch, heads, 1, d_head}, dt::f32, dims{d_model, d_head, d_model, 1}), s.data(),
                   v.data(), out.data());
    // Block-diagonal.
    auto bs = bind(dnnl::memory::desc({batch, heads, d_model}, dt::f32, tag::abc),
                   dnnl::memory::desc({batch, d_model, keys}, dt::f32, dims{capacity * d_model, 1, d_model}),
                   dnnl::memory::desc({batch, heads, keys}, dt::f32, tag::abc), qbd.data(), k.data(), s.data());
    auto bc = bind(dnnl::memory::desc({batch, heads, keys}, dt::f32, tag::abc),
                   dnnl::memory::desc({batch, keys, d_model}, dt::f32, dims{capacity * d_model, d_model, 1}),
                   dnnl::memory::desc({batch, heads, d_model}, dt::f32, tag::abc), s.data(), v.data(), wide.data());
    std::vector<char> other(16 << 20);
    double best[2];
    best_cold_us(
        other,
        [&](int t) {
            if (t == 0) {
                hs.run(stream);
                hc.run(stream);
            } else {
                std::memset(qbd.data(), 0, qbd.size() * sizeof(float));
                for (int64_t b = 0; b < batch; ++b)
                    for (int64_t h = 0; h < heads; ++h)
                        std::memcpy(&qbd[(b * heads + h) * d_model + h * d_head], &q[b * d_model + h * d_head],
                                    d_head * sizeof(float));
                bs.run(stream);
                bc.run(stream);
                for (int64_t b = 0; b < batch; ++b)
                    for (int64_t h = 0; h < heads; ++h)
                        std::memcpy(&out[b * d_model + h * d_head], &wide[(b * heads + h) * d_model + h * d_head],
                                    d_head * sizeof(float));
            }
            stream.wait();
        },
        best);
    std::printf("step self-attention, batch %ld, %ld keys: head by head %7.1f us (%s, %s)  block-diagonal %7.1f us "
                "(%s, %s)  ratio %.2f\n",
                static_cast<long>(batch), static_cast<long>(keys), best[0], hs.impl.c_str(), hc.impl.c_str(), best[1],
                bs.impl.c_str(), bc.impl.c_str(), best[1] / best[0]);
}

void run_layouts(const dnnl::engine& engine, dnnl::stream& stream, const std::string& source, int64_t k, int64_t n,
                 const std::vector<int64_t>& rows) {
    const dt src_type = source == "u8" ? dt::u8 : source == "s8" ? dt::s8 : dt::f32;
    const dt weight_type = src_type == dt::f32 ? dt::f32 : dt::s8;
    std::vector<char> other(16 << 20);
    for (const int64_t m : rows) {
        const dnnl::memory::desc a_md({m, k}, src_type, tag::ab), c_md({m, n}, dt::f32, tag::ab);
        dnnl::memory a(a_md, engine), c(c_md, engine);
        std::memset(a.get_data_handle(), 1, a_md.get_size());
        double best[2];
        std::string impl[2];
        dnnl::matmul matmul[2];
        dnnl::memory w[2];
        for (int t = 0; t < 2; ++t) {
            const dnnl::memory::desc w_md({k, n}, weight_type, t == 0 ? tag::ab : tag::ba);
            const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, w_md, c_md), engine);
            impl[t] = pd.impl_info_str();
            matmul[t] = dnnl::matmul(pd);
            w[t] = dnnl::memory(w_md, engine);
            std::memset(w[t].get_data_handle(), 1, w_md.get_size());
        }
        best_cold_us(
            other,
            [&](int t) {
                matmul[t].execute(stream, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, w[t]}, {DNNL_ARG_DST, c}});
                stream.wait();
            },
            best);
        std::printf("%s %ld x %ld x %ld: ab %8.1f us (%s)  ba %8.1f us (%s)  ba/ab %.2f\n", source.c_str(),
                    static_cast<long>(m), static_cast<long>(k), static_cast<long>(n), best[0], impl[0].c_str(), best[1],
                    impl[1].c_str(), best[1] / best[0]);
    }
}

// Y[m, n] = X[m, k] W[n, k]^T as column-major C[n, m] = W (packed A, stored [n, k]: "T") x X^T (B, "N").
void run_packed(const dnnl::engine& engine, dnnl::stream& stream, const std::string& source, int64_t k, int64_t n,
                const std::vector<int64_t>& rows) {
    namespace gemm = dnnl::impl::cpu;
    const bool u8 = source == "u8";
    const dt src_type = u8 ? dt::u8 : dt::f32;
    const dt weight_type = u8 ? dt::s8 : dt::f32;
    std::vector<char> other(16 << 20);
    std::vector<char> w_plain(static_cast<std::size_t>(n * k) * (u8 ? 1 : 4), 1);
    for (const int64_t m : rows) {
        size_t size = 0;
        bool pack = false;
        const dnnl_dim_t M = n, N = m, K = k, lda = k, ldb = k, ldc = n;
        const auto status = u8 ? gemm::gemm_s8u8s32_pack_get_size("A", "T", "N", &M, &N, &K, &lda, &ldb, &size, &pack)
                               : gemm::sgemm_pack_get_size("A", "T", "N", &M, &N, &K, &lda, &ldb, &size, &pack);
        if (status != dnnl_success) {
            std::printf("packed gemm unavailable: status %d\n", static_cast<int>(status));
            return;
        }
        std::vector<char> packed(size);
        if (u8)
            gemm::gemm_s8u8s32_pack("A", "T", "N", &M, &N, &K, &lda, &ldb, w_plain.data(), packed.data());
        else
            gemm::sgemm_pack("A", "T", "N", &M, &N, &K, &lda, &ldb, reinterpret_cast<const float*>(w_plain.data()),
                             reinterpret_cast<float*>(packed.data()));
        const dnnl::memory::desc a_md({m, k}, src_type, tag::ab), c_md({m, n}, dt::f32, tag::ab);
        dnnl::memory a(a_md, engine), c(c_md, engine);
        std::memset(a.get_data_handle(), 1, a_md.get_size());
        std::vector<int32_t> c_int(static_cast<std::size_t>(m * n));
        // The matmul gets the layout Linear gives it without AVX-512: "ba" for u8 sources, oneDNN's pick for f32.
        const dnnl::memory::desc w_md({k, n}, weight_type, u8 ? tag::ba : tag::any);
        const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, w_md, c_md), engine);
        const dnnl::matmul matmul(pd);
        dnnl::memory w(pd.weights_desc(), engine);
        std::memset(w.get_data_handle(), 1, pd.weights_desc().get_size());
        const float beta = 0.f;
        const int32_t offset = 0;
        const auto run = [&](int t) {
            if (t == 0) {
                matmul.execute(stream, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, c}});
                stream.wait();
            } else if (u8) {
                gemm::gemm_s8u8s32_compute("P", "N", "F", &M, &N, &K, reinterpret_cast<const int8_t*>(packed.data()),
                                           &lda, static_cast<const uint8_t*>(a.get_data_handle()), &ldb, &beta,
                                           c_int.data(), &ldc, &offset);
            } else {
                gemm::sgemm_compute("P", "N", &M, &N, &K, reinterpret_cast<const float*>(packed.data()), &lda,
                                    static_cast<const float*>(a.get_data_handle()), &ldb, &beta,
                                    static_cast<float*>(c.get_data_handle()), &ldc);
            }
        };
        double best[2];
        best_cold_us(other, run, best);
        std::printf("%s %ld x %ld x %ld: matmul %8.1f us (%s)  packed gemm %8.1f us (%zu bytes, pack %d)  "
                    "packed/matmul %.2f\n",
                    source.c_str(), static_cast<long>(m), static_cast<long>(k), static_cast<long>(n), best[0],
                    pd.impl_info_str(), best[1], size, pack ? 1 : 0, best[1] / best[0]);
    }
}

// Y[m, n] = X[m, k] W[n, k]^T on tolk's panel kernel against the f32 matmul primitive.
void run_panel(const dnnl::engine& engine, dnnl::stream& stream, int64_t k, int64_t n,
               const std::vector<int64_t>& rows) {
    namespace panel = tolk::panel_gemm;
    std::vector<char> other(16 << 20);
    std::vector<float> w_plain(static_cast<std::size_t>(n * k));
    for (std::size_t i = 0; i < w_plain.size(); ++i) w_plain[i] = static_cast<float>(i % 7) * 0.125f - 0.375f;
    const std::size_t floats = panel::packed_floats(n, k);
    float* packed = static_cast<float*>(std::aligned_alloc(64, (floats * sizeof(float) + 63) / 64 * 64));
    panel::pack(w_plain.data(), n, k, packed);
    for (const int64_t m : rows) {
        const dnnl::memory::desc a_md({m, k}, dt::f32, tag::ab), c_md({m, n}, dt::f32, tag::ab);
        dnnl::memory a(a_md, engine), c(c_md, engine);
        float* a_data = static_cast<float*>(a.get_data_handle());
        for (int64_t i = 0; i < m * k; ++i) a_data[i] = static_cast<float>(i % 5) * 0.25f - 0.5f;
        // The layout Linear gave the matmul on the jit gemm: [out, in] as it is for widening shapes up to 4x
        // (256 -> 1024), oneDNN's pick for the rest.
        const bool keeps_rows = n > k && n <= 4 * k;
        const dnnl::memory::desc w_md({k, n}, dt::f32, keeps_rows ? tag::ba : tag::any);
        const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, w_md, c_md), engine);
        const dnnl::matmul matmul(pd);
        dnnl::memory plain(dnnl::memory::desc({k, n}, dt::f32, tag::ba), engine, w_plain.data());
        dnnl::memory w(pd.weights_desc(), engine);
        dnnl::reorder(plain, w).execute(stream, plain, w);
        stream.wait();
        std::vector<float> y(static_cast<std::size_t>(m * n));
        const auto run = [&](int t) {
            if (t == 0) {
                matmul.execute(stream, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, c}});
                stream.wait();
            } else {
                panel::multiply(packed, n, k, a_data, m, y.data(), nullptr, panel::Epilogue::none, false);
            }
        };
        double best[2];
        best_cold_us(other, run, best);
        double diff = 0;
        const float* ref = static_cast<const float*>(c.get_data_handle());
        for (std::size_t i = 0; i < y.size(); ++i) diff = std::max(diff, static_cast<double>(std::abs(y[i] - ref[i])));
        std::printf("f32 %ld x %ld x %ld: matmul %8.1f us (%s)  panel %8.1f us  panel/matmul %.2f  "
                    "(max |difference| %.2g)\n",
                    static_cast<long>(m), static_cast<long>(k), static_cast<long>(n), best[0], pd.impl_info_str(),
                    best[1], best[1] / best[0], diff);
    }
    std::free(packed);
}

}  // namespace

// tolk's vector kernels ask this for the CPU's level (lib/dnnl/context.cpp in tolk): AVX-512 where the CPU has it
// and ONEDNN_MAX_CPU_ISA is not set, else AVX2.
tolk::simd::Level tolk::simd::level() {
    static const Level level = __builtin_cpu_supports("avx512f") && std::getenv("ONEDNN_MAX_CPU_ISA") == nullptr
                                   ? Level::avx512
                                   : Level::avx2;
    return level;
}

// 300 M iterations of 12 independent vfmadd231ps: enough chains to cover the instruction's latency on every
// x86-64 core with two FMA units, so the loop runs at their throughput.
void run_fma() {
    const long iterations = 300000000;
    long left = iterations;
    const auto start = std::chrono::steady_clock::now();
    __asm__ volatile(
        "vxorps %%ymm1, %%ymm1, %%ymm1\n"
        "1:\n"
        "vfmadd231ps %%ymm1, %%ymm1, %%ymm2\n vfmadd231ps %%ymm1, %%ymm1, %%ymm3\n"
        "vfmadd231ps %%ymm1, %%ymm1, %%ymm4\n vfmadd231ps %%ymm1, %%ymm1, %%ymm5\n"
        "vfmadd231ps %%ymm1, %%ymm1, %%ymm6\n vfmadd231ps %%ymm1, %%ymm1, %%ymm7\n"
        "vfmadd231ps %%ymm1, %%ymm1, %%ymm8\n vfmadd231ps %%ymm1, %%ymm1, %%ymm9\n"
        "vfmadd231ps %%ymm1, %%ymm1, %%ymm10\n vfmadd231ps %%ymm1, %%ymm1, %%ymm11\n"
        "vfmadd231ps %%ymm1, %%ymm1, %%ymm12\n vfmadd231ps %%ymm1, %%ymm1, %%ymm13\n"
        "dec %0\n jnz 1b\n"
        : "+r"(left)
        :
        : "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12",
          "xmm13", "cc");
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("AVX2 multiply-adds, one thread: %.1f GFLOP/s\n", 12.0 * 16.0 * iterations / seconds / 1e9);
}

int main(int argc, char** argv) {
    const std::string what = argc > 1 ? argv[1] : "";
    const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    dnnl::stream stream(engine);
    if (what == "matmul" && argc == 5) {
        run_matmul(engine, stream, std::atoll(argv[2]), std::atoll(argv[3]), parse_list(argv[4]));
    } else if (what == "memory" && argc == 5) {
        run_memory(engine, std::atoll(argv[2]), std::atoll(argv[3]), std::atoll(argv[4]));
    } else if (what == "blockdiag" && argc == 4) {
        for (const int64_t keys : parse_list(argv[3])) run_blockdiag(engine, stream, std::atoll(argv[2]), keys);
    } else if (what == "step" && argc == 4) {
        run_step(engine, stream, std::atoll(argv[2]), std::atoll(argv[3]));
    } else if (what == "layouts" && argc == 6) {
        run_layouts(engine, stream, argv[2], std::atoll(argv[3]), std::atoll(argv[4]), parse_list(argv[5]));
    } else if (what == "packed" && argc == 6) {
        run_packed(engine, stream, argv[2], std::atoll(argv[3]), std::atoll(argv[4]), parse_list(argv[5]));
    } else if (what == "fma" && argc == 2) {
        run_fma();
    } else if (what == "panel" && argc == 5) {
        run_panel(engine, stream, std::atoll(argv[2]), std::atoll(argv[3]), parse_list(argv[4]));
    } else {
        std::fprintf(stderr,
                     "usage: onednn_micro matmul K N ROWS,ROWS,... | memory K N COUNT | step BATCH KEYS | layouts "
                     "f32|s8|u8 K N ROWS,ROWS,... | packed f32|u8 K N ROWS,ROWS,... | panel K N ROWS,ROWS,... | fma\n");
        return 2;
    }
    return 0;
}
