// Tests for lib/dnnl: Linear, attention matmuls, softmax and layer norm against naive double-precision loops on
// random inputs, and the guard that hot-path shapes never run oneDNN's reference kernels.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "core/attention_kernels.h"
#include "core/attention_ops.h"
#include "core/panel_gemm.h"
#include "core/tensor.h"
#include "dnnl/context.h"
#include "dnnl/layer_norm.h"
#include "dnnl/linear.h"
#include "dnnl/quantize.h"
#include "test_support.h"

using namespace tolk;
using tolk::testing::linear_kernel_name;
using tolk::testing::linear_kernels;
using tolk::testing::LinearKernelScope;

namespace {

// One thread: these shapes are tiny, and OpenMP's spinning threads slow to a crawl when the test runner or
// other jobs already occupy the cores. Set before any test runs, on the thread that runs them.
const bool single_threaded = (set_num_threads(1), true);

std::vector<float> random_vector(std::size_t n, std::mt19937& rng, float lo = -1.f, float hi = 1.f) {
    std::uniform_real_distribution<float> dist(lo, hi);
    std::vector<float> v(n);
    for (float& x : v) x = dist(rng);
    return v;
}

Tensor random_tensor(Shape shape, std::mt19937& rng) {
    Tensor t(std::move(shape));
    std::uniform_real_distribution<float> dist(-1.f, 1.f);
    for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = dist(rng);
    return t;
}

// |got - want| within 1e-5 of the magnitude the result was summed from (the L1 norm of its terms), which is
// what float accumulation error scales with.
void check_close(float got, double want, double magnitude, const std::string& where) {
    const double tol = 1e-5 * (magnitude + 1e-3);
    if (!(std::fabs(got - want) <= tol)) {
        FAIL_CHECK(where << ": got " << got << ", want " << want << " (tolerance " << tol << ")");
    }
}

double apply_activation(Activation a, double x) {
    switch (a) {
        case Activation::none: return x;
        case Activation::relu: return x > 0 ? x : 0;
        case Activation::gelu: return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
        case Activation::swish: return x / (1.0 + std::exp(-x));
    }
    return x;
}

bool is_reference_kernel(const std::string& impl) { return impl.rfind("ref", 0) == 0; }

// The Linear's output for x (added to y0 when accumulating), computed twice: the second call reuses the cached
// primitive and must give the same numbers.
std::vector<float> forward_twice(const Linear& linear, DnnlContext& ctx, const std::vector<float>& x,
                                 const std::vector<float>& y0, int64_t rows, bool accumulate) {
    std::vector<float> y = y0, again = y0;
    linear.forward(ctx, x.data(), y.data(), rows, accumulate);
    linear.forward(ctx, x.data(), again.data(), rows, accumulate);
    CHECK(y == again);
    return y;
}

}  // namespace

TEST_CASE("activation_from_name maps Marian's names and rejects others") {
    CHECK(activation_from_name("swish") == Activation::swish);
    CHECK(activation_from_name("silu") == Activation::swish);
    CHECK(activation_from_name("gelu") == Activation::gelu);
    CHECK(activation_from_name("relu") == Activation::relu);
    CHECK_THROWS_WITH_AS(activation_from_name("tanh"), doctest::Contains("'tanh'"), Error);
}

TEST_CASE("Linear matches a naive loop with and without bias, activations and the fused residual sum") {
    std::mt19937 rng(1);
    DnnlContext ctx;
    struct Case { int64_t in, out; bool bias; Activation act; bool accumulate; };
    const Case cases[] = {
        {48, 80, true, Activation::none, false},   {32, 301, true, Activation::none, false},
        {64, 32, false, Activation::none, false},  {48, 96, true, Activation::swish, false},
        {48, 96, true, Activation::gelu, false},   {48, 96, true, Activation::relu, false},
        {96, 48, true, Activation::none, true},    {40, 24, false, Activation::none, true},
        // At least 16x wider than deep: on CPUs without AVX-512, up to 4 rows run one at a time.
        {16, 301, true, Activation::none, false},  {16, 260, false, Activation::none, true},
        // Deep enough that the panel kernel takes the rows in blocks of 60.
        {1024, 20, true, Activation::none, false},
    };
    for (const LinearKernel kernel : linear_kernels) {
        const LinearKernelScope scope(kernel);
        INFO("kernel: ", linear_kernel_name(kernel));
        for (const Case& c : cases) {
            const Tensor w = random_tensor({c.out, c.in}, rng);  // [out, in]
            const Tensor b = random_tensor({c.out}, rng);
            const Linear linear(w, c.bias ? &b : nullptr, c.act, "test.linear");
            const bool panel = kernel == LinearKernel::panel && panel_gemm::available();
            CHECK(linear.on_panel_gemm() == panel);
            CHECK(linear.on_packed_gemm() == (kernel == LinearKernel::packed_gemm || panel));
            CHECK(linear.in_features() == c.in);
            CHECK(linear.out_features() == c.out);
            // Rows run as pieces (see linear.cpp): 3 as they are (or one by one), 7 padded to 8, 33 as 32 + 1, 171
            // as 128 + 32 + 11 padded to 12. The panel kernel's tiles of 6 rows leave 1 to 5 rows over among these.
            for (int64_t rows : {1, 3, 7, 10, 11, 33, 171}) {
                const std::vector<float> x = random_vector(static_cast<std::size_t>(rows * c.in), rng);
                const std::vector<float> y0 = random_vector(static_cast<std::size_t>(rows * c.out), rng);
                const std::vector<float> y = forward_twice(linear, ctx, x, y0, rows, c.accumulate);
                for (int64_t r = 0; r < rows; ++r) {
                    for (int64_t o = 0; o < c.out; ++o) {
                        double acc = c.bias ? b.f32()[o] : 0.0;
                        double mag = std::fabs(acc);
                        for (int64_t i = 0; i < c.in; ++i) {
                            const double t = static_cast<double>(x[r * c.in + i]) * w.f32()[o * c.in + i];
                            acc += t;
                            mag += std::fabs(t);
                        }
                        double want = apply_activation(c.act, acc);
                        if (c.accumulate) {
                            want += y0[r * c.out + o];
                            mag += std::fabs(y0[r * c.out + o]);
                        }
                        check_close(y[r * c.out + o], want, mag,
                                    "Linear " + std::to_string(c.in) + "->" + std::to_string(c.out) + " row " +
                                        std::to_string(r) + " col " + std::to_string(o));
                    }
                }
            }
        }
    }
}

TEST_CASE("the float32 panel kernel sums every output as one in-order chain of fused multiply-adds, in any call") {
    // Oracle: acc = fma(x[k], w[k], acc) for k = 0, 1, ... from 0 in scalar code, then + bias, + the old y, relu.
    // Every row must get exactly those bits whatever the call's row count (1 and 2 rows run across several panels
    // at once, 3-5 as the rest of a 6-row tile) and thread count: a sentence's numbers must not depend on the
    // sentences batched with it.
    if (!panel_gemm::available()) return;
    std::mt19937 rng(41);
    for (const int64_t n : {16, 40, 77, 130}) {
        for (const int64_t k : {1, 9, 64}) {
            const std::vector<float> w = random_vector(static_cast<std::size_t>(n * k), rng);
            const std::vector<float> bias = random_vector(static_cast<std::size_t>(n), rng);
            std::vector<float> packed(panel_gemm::packed_floats(n, k) + 8);
            float* aligned = packed.data() + (32 - reinterpret_cast<std::uintptr_t>(packed.data()) % 32) % 32 / 4;
            panel_gemm::pack(w.data(), n, k, aligned);
            for (const int64_t rows : {1, 2, 3, 5, 7, 8, 13, 14}) {
                const std::vector<float> x = random_vector(static_cast<std::size_t>(rows * k), rng);
                const std::vector<float> y0 = random_vector(static_cast<std::size_t>(rows * n), rng);
                for (const bool relu_accumulate : {false, true}) {
                    std::vector<float> want(y0);
                    for (int64_t r = 0; r < rows; ++r)
                        for (int64_t c = 0; c < n; ++c) {
                            float acc = 0.0f;
                            for (int64_t i = 0; i < k; ++i) acc = std::fma(x[r * k + i], w[c * k + i], acc);
                            acc += bias[c];
                            float& out = want[r * n + c];
                            out = relu_accumulate ? std::max(acc + out, 0.0f) : acc;
                        }
                    for (const int threads : {1, 2}) {
                        INFO("n " << n << ", k " << k << ", rows " << rows << ", threads " << threads
                                  << (relu_accumulate ? ", relu + accumulate" : ""));
                        std::vector<float> y(y0);
                        panel_gemm::multiply(aligned, n, k, x.data(), rows, y.data(), bias.data(),
                                             relu_accumulate ? panel_gemm::Epilogue::relu : panel_gemm::Epilogue::none,
                                             relu_accumulate, threads);
                        CHECK(y == want);
                    }
                }
            }
        }
    }
}

TEST_CASE("low-precision Linear stays within its quantization error of the exact product") {
    // The exact product in double is the oracle; the bound is what rounding x and W can cost, term by term:
    // s8 rounds each x[i] within half its row's step (max|x|/127) and each W[o][i] within half its channel's step
    // (max|W[o]|/63: without VNNI tolk keeps weights within +-63 to avoid 16-bit overflow); bf16 rounds each
    // operand within 2^-9 relative. Activations are 1.2-Lipschitz at most.
    std::mt19937 rng(11);
    DnnlContext ctx;
    std::vector<MatmulType> types = {MatmulType::s8};
    if (cpu_has_avx512()) types.push_back(MatmulType::bf16);
    struct Case { int64_t in, out; bool bias; Activation act; bool accumulate; };
    const Case cases[] = {
        {48, 80, true, Activation::none, false},  {256, 301, true, Activation::none, false},
        {64, 32, false, Activation::none, false}, {48, 96, true, Activation::swish, false},
        {48, 96, true, Activation::gelu, false},  {48, 96, true, Activation::relu, false},
        {96, 48, true, Activation::none, true},   {40, 24, false, Activation::none, true},
    };
    for (const LinearKernel kernel : linear_kernels) {
        const LinearKernelScope scope(kernel);
        for (const MatmulType type : types) {
            for (const Case& c : cases) {
                const Tensor w = random_tensor({c.out, c.in}, rng);  // [out, in]
                const Tensor b = random_tensor({c.out}, rng);
                const Linear linear(w, c.bias ? &b : nullptr, c.act, "test.lowp", type);
                CHECK(linear.type() == type);
                // bf16 runs on the matmul primitive only; int8 on oneDNN's packed gemm or tolk's panel kernel
                // when forced (both wherever there is AVX2).
                CHECK(linear.on_packed_gemm() ==
                      (type == MatmulType::s8 &&
                       (kernel == LinearKernel::packed_gemm || kernel == LinearKernel::panel)));
                CHECK(linear.on_panel_gemm() == (type == MatmulType::s8 && kernel == LinearKernel::panel));
                for (int64_t rows : {1, 5, 40}) {
                    const std::vector<float> x = random_vector(static_cast<std::size_t>(rows * c.in), rng);
                    const std::vector<float> y0 = random_vector(static_cast<std::size_t>(rows * c.out), rng);
                    const std::vector<float> y = forward_twice(linear, ctx, x, y0, rows, c.accumulate);
                    double worst = 0;  // the largest error relative to its bound
                    for (int64_t r = 0; r < rows; ++r) {
                        double x_step = 0;
                        for (int64_t i = 0; i < c.in; ++i)
                            x_step = std::max(x_step, std::fabs(double(x[r * c.in + i])));
                        x_step /= 127;
                        for (int64_t o = 0; o < c.out; ++o) {
                            double w_step = 0;
                            for (int64_t i = 0; i < c.in; ++i)
                                w_step = std::max(w_step, std::fabs(double(w.f32()[o * c.in + i])));
                            w_step = w_step / 63;
                            double acc = c.bias ? b.f32()[o] : 0.0, bound = 1e-5 * std::fabs(acc);
                            for (int64_t i = 0; i < c.in; ++i) {
                                const double xi = x[r * c.in + i], wi = w.f32()[o * c.in + i];
                                acc += xi * wi;
                                bound += type == MatmulType::s8
                                             ? std::fabs(xi) * w_step / 2 + std::fabs(wi) * x_step / 2 +
                                                   x_step * w_step / 4
                                             : std::fabs(xi * wi) * (2.0 / 512 + 1e-5);
                            }
                            bound = 1.2 * bound + 1e-5;
                            double want = apply_activation(c.act, acc);
                            if (c.accumulate) {
                                want += y0[r * c.out + o];
                                bound += 1e-5 * std::fabs(y0[r * c.out + o]);
                            }
                            worst = std::max(worst, std::fabs(y[r * c.out + o] - want) / bound);
                        }
                    }
                    INFO(matmul_type_name(type), " on ", linear_kernel_name(kernel), " ", c.in, "->", c.out, " rows ",
                         rows);
                    CHECK(worst <= 1.0);
                    // And it is not exact: a test of a quantized path that equals f32 would not be testing it.
                    if (c.in >= 48 && rows == 40) CHECK(worst > 1e-3);
                }
            }
        }
    }
}

TEST_CASE("int8 Linear gives the same numbers on the matmul primitive and on the packed gemm") {
    // Both multiply the same quantized bytes exactly (integer products) and share the epilogue, whether the
    // activations go in signed or shifted by 128 (the shift's column sums come back out exactly).
    std::mt19937 rng(13);
    DnnlContext ctx;
    // Small shapes, and the shapes of models/en-de (d_model 256, d_ff 1024, 8001 words).
    const std::vector<std::pair<int64_t, int64_t>> shapes = {{48, 80},    {256, 301},   {96, 48},
                                                             {256, 1024}, {1024, 256}, {256, 8001}};
    for (const auto& [in, out] : shapes) {
        const Tensor w = random_tensor({out, in}, rng), b = random_tensor({out}, rng);
        // The feed-forward's first shape with its activation: the packed gemm's pieces (any row count) then go
        // through the eltwise primitive in the matmul's bucketed pieces.
        const Activation activation = out == 1024 ? Activation::swish : Activation::none;
        std::vector<Linear> pair;
        for (const LinearKernel kernel : {LinearKernel::matmul, LinearKernel::packed_gemm}) {
            const LinearKernelScope scope(kernel);
            pair.emplace_back(w, &b, activation, "test.s8", MatmulType::s8);
        }
        REQUIRE_FALSE(pair[0].on_packed_gemm());
        REQUIRE(pair[1].on_packed_gemm());
        // And one built with two OpenMP threads and run by another thread with two (tolk --threads 2: the model
        // loads on the main thread, a worker translates).
        const int threads = num_threads();
        set_num_threads(2);
        {
            const LinearKernelScope scope(LinearKernel::packed_gemm);
            pair.emplace_back(w, &b, activation, "test.s8.threads", MatmulType::s8);
        }
        set_num_threads(threads);
        for (int64_t rows : {1, 6, 40, 64, 100, 130, 300}) {
            const std::vector<float> x = random_vector(static_cast<std::size_t>(rows * in), rng);
            std::vector<float> y0(static_cast<std::size_t>(rows * out)), y1(y0.size()), y2(y0.size());
            pair[0].forward(ctx, x.data(), y0.data(), rows);
            pair[1].forward(ctx, x.data(), y1.data(), rows);
            std::thread worker([&] {
                DnnlContext worker_ctx;
                set_num_threads(2);
                pair[2].forward(worker_ctx, x.data(), y2.data(), rows);
            });
            worker.join();
            INFO(in, "->", out, " rows ", rows);
            CHECK(y0 == y1);
            CHECK(y0 == y2);
        }
    }
}

TEST_CASE("int8 on the panel kernel: exact integer products, then the epilogue's multiplies and adds in order") {
    // The oracle quantizes x and W itself (x per row within +-127, W per output channel within +-63, as the panel
    // kernel needs), sums the integer products in 64 bits and applies the scales and bias one rounding at a time
    // (volatile: no fused multiply-add), so the kernel must match it bit for bit; swish only within rounding.
    std::mt19937 rng(21);
    DnnlContext ctx;
    const LinearKernelScope scope(LinearKernel::panel);
    // Depths that are and are not multiples of 4, widths that are and are not multiples of 16.
    const std::vector<std::pair<int64_t, int64_t>> shapes = {{48, 80}, {7, 19}, {13, 16}, {256, 301}, {1024, 256}};
    for (const auto& [in, out] : shapes) {
        const Tensor w = random_tensor({out, in}, rng), b = random_tensor({out}, rng);
        std::vector<int8_t> wq(static_cast<std::size_t>(out * in));
        std::vector<float> col_scales(static_cast<std::size_t>(out));
        quantize_rows_s8(w.f32(), out, in, wq.data(), col_scales.data(), 63);
        for (const Activation act : {Activation::none, Activation::relu, Activation::swish}) {
            for (const bool accumulate : {false, true}) {
                if (accumulate && act != Activation::none) continue;
                for (const bool with_bias : {true, false}) {
                    const Linear linear(w, with_bias ? &b : nullptr, act, "test.s8.panel", MatmulType::s8);
                    REQUIRE(linear.on_panel_gemm());
                    for (int64_t rows : {1, 2, 3, 4, 5, 9, 40}) {
                        const std::vector<float> x = random_vector(static_cast<std::size_t>(rows * in), rng);
                        const std::vector<float> y0 = random_vector(static_cast<std::size_t>(rows * out), rng);
                        std::vector<int8_t> xq(x.size());
                        std::vector<float> row_scales(static_cast<std::size_t>(rows));
                        quantize_rows_s8(x.data(), rows, in, xq.data(), row_scales.data(), 127);
                        std::vector<float> y = y0, y_threads = y0;
                        linear.forward(ctx, x.data(), y.data(), rows, accumulate);
                        // The same product split among two threads (tolk --threads 2): the same bits.
                        const int threads = num_threads();
                        set_num_threads(2);
                        linear.forward(ctx, x.data(), y_threads.data(), rows, accumulate);
                        set_num_threads(threads);
                        CHECK(y_threads == y);
                        int mismatches = 0;
                        for (int64_t r = 0; r < rows; ++r)
                            for (int64_t o = 0; o < out; ++o) {
                                int64_t acc = 0;
                                for (int64_t i = 0; i < in; ++i)
                                    acc += int64_t{xq[r * in + i]} * wq[o * in + i];
                                volatile float v = static_cast<float>(acc) * row_scales[r];
                                v = v * col_scales[o];
                                if (with_bias) v = v + b.f32()[o];
                                if (accumulate) v = y0[r * out + o] + v;
                                const float got = y[r * out + o];
                                if (act == Activation::swish) {
                                    const double want = apply_activation(act, v);
                                    if (!(std::fabs(got - want) <= 1e-6 * std::fabs(want) + 1e-7)) ++mismatches;
                                } else if (got != (act == Activation::relu ? std::max(float(v), 0.0f) : float(v))) {
                                    ++mismatches;
                                }
                            }
                        INFO(in, "->", out, " rows ", rows, " activation ", static_cast<int>(act), " accumulate ",
                             accumulate, " bias ", with_bias);
                        CHECK(mismatches == 0);
                    }
                }
            }
        }
    }
}

TEST_CASE("one packed gemm or panel Linear serves two threads at once (workers share a model's weights)") {
    std::mt19937 rng(14);
    const int64_t in = 256, out = 1024, rows = 64;
    const Tensor w = random_tensor({out, in}, rng), b = random_tensor({out}, rng);
    for (const auto& [type, kernel] : {std::pair{MatmulType::s8, LinearKernel::packed_gemm},
                                       std::pair{MatmulType::f32, LinearKernel::packed_gemm},
                                       std::pair{MatmulType::f32, LinearKernel::panel}}) {
        const bool panel = kernel == LinearKernel::panel && panel_gemm::available();
        const LinearKernelScope scope(kernel);
        const Linear linear(w, &b, Activation::swish, "test.shared", type);
        REQUIRE(linear.on_packed_gemm());
        REQUIRE(linear.on_panel_gemm() == panel);
        const std::vector<float> x = random_vector(static_cast<std::size_t>(rows * in), rng);
        std::vector<float> want(static_cast<std::size_t>(rows * out));
        DnnlContext ctx;
        linear.forward(ctx, x.data(), want.data(), rows);
        std::vector<float> got[2];
        int mismatches[2] = {0, 0};
        const auto work = [&](int t) {
            DnnlContext own;
            got[t].resize(want.size());
            for (int i = 0; i < 50; ++i) {
                linear.forward(own, x.data(), got[t].data(), rows);
                mismatches[t] += got[t] != want;
            }
        };
        std::thread first(work, 0), second(work, 1);
        first.join();
        second.join();
        INFO(matmul_type_name(type), " on ", linear_kernel_name(kernel));
        CHECK(mismatches[0] == 0);
        CHECK(mismatches[1] == 0);
        // The panel kernel with two OpenMP threads (tolk --threads 2) splits the columns, each computed as before.
        std::vector<float> two_threads(want.size());
        std::thread worker([&] {
            DnnlContext own;
            set_num_threads(2);
            linear.forward(own, x.data(), two_threads.data(), rows);
        });
        worker.join();
        CHECK(two_threads == want);
    }
}

TEST_CASE("row quantization: s8 and shifted u8 agree with naive rounding, and the shift comes back out") {
    std::mt19937 rng(5);
    const int64_t rows = 3, cols = 37;
    std::vector<float> x = random_vector(static_cast<std::size_t>(rows * cols), rng, -3.f, 3.f);
    std::fill_n(x.begin() + cols, cols, 0.0f);  // an all-zero row: scale 0, zeros
    std::vector<int8_t> q(x.size());
    std::vector<uint8_t> u(x.size());
    std::vector<float> scales(rows), u_scales(rows);
    quantize_rows_s8(x.data(), rows, cols, q.data(), scales.data(), 63);
    quantize_rows_u8_shifted(x.data(), rows, cols, u.data(), u_scales.data(), 63);
    for (int64_t r = 0; r < rows; ++r) {
        float top = 0;
        for (int64_t c = 0; c < cols; ++c) top = std::max(top, std::fabs(x[r * cols + c]));
        CHECK(scales[r] == top / 63);
        CHECK(u_scales[r] == scales[r]);
        for (int64_t c = 0; c < cols; ++c) {
            const std::size_t i = static_cast<std::size_t>(r * cols + c);
            const long want = top > 0 ? std::lround(x[i] * (63 / top)) : 0;
            CHECK(q[i] == want);
            CHECK(int(u[i]) == want + 128);
        }
    }
    // The epilogue takes the column shift off before scaling: ((acc - shift) * row scale * column scale + bias).
    const int64_t n = 5;
    const std::vector<float> acc = {1000, -3, 0, 260, 7}, shift = {900, -3, 128, 0, -1}, col = {0.5f, 2, 1, 0.25f, 3},
                             bias = {1, 2, 3, 4, 5};
    const float row_scale = 0.125f;
    std::vector<float> y(n, 10.0f);
    dequantize_rows(acc.data(), &row_scale, col.data(), bias.data(), shift.data(), 1, n, y.data(), true);
    for (int64_t c = 0; c < n; ++c) CHECK(y[c] == 10.0f + (acc[c] - shift[c]) * row_scale * col[c] + bias[c]);
}

TEST_CASE("forward_same_input gives each Linear exactly what its own forward gives") {
    std::mt19937 rng(12);
    DnnlContext ctx;
    std::vector<MatmulType> types = {MatmulType::f32, MatmulType::s8};
    if (cpu_has_avx512()) types.push_back(MatmulType::bf16);
    for (const LinearKernel kernel : linear_kernels) {
        const LinearKernelScope scope(kernel);
        for (const MatmulType type : types) {
            const Tensor w1 = random_tensor({40, 32}, rng), w2 = random_tensor({24, 32}, rng),
                         b = random_tensor({40}, rng);
            const Linear a(w1, &b, Activation::none, "a", type), c(w2, nullptr, Activation::none, "c", type);
            for (int64_t rows : {1, 17, 33}) {  // 17 and 33 run as 16 + 1 and 32 + 1 rows
                const std::vector<float> x = random_vector(static_cast<std::size_t>(rows * 32), rng);
                std::vector<float> ya(static_cast<std::size_t>(rows * 40)), yc(static_cast<std::size_t>(rows * 24));
                std::vector<float> ya2 = ya, yc2 = yc;
                Linear::forward_same_input(ctx, x.data(), rows, {{&a, ya.data()}, {&c, yc.data()}});
                a.forward(ctx, x.data(), ya2.data(), rows);
                c.forward(ctx, x.data(), yc2.data(), rows);
                INFO(matmul_type_name(type), " on ", linear_kernel_name(kernel), " rows ", rows);
                CHECK(ya == ya2);
                CHECK(yc == yc2);
            }
        }
    }
    const Tensor w = random_tensor({8, 16}, rng), narrow = random_tensor({8, 12}, rng);
    const Linear l16(w, nullptr, Activation::none, "l16"), l12(narrow, nullptr, Activation::none, "l12");
    std::vector<float> x(16), y(8), z(8);
    CHECK_THROWS_WITH_AS(Linear::forward_same_input(ctx, x.data(), 1, {{&l16, y.data()}, {&l12, z.data()}}),
                         doctest::Contains("l12"), Error);
}

TEST_CASE("packed_rows finds every weight of an f32 Linear in its packed layout, and nothing for other types") {
    std::mt19937 rng(21);
    // Sizes that are not multiples of any block (the vocabulary of 8001 is padded the same way), on oneDNN's
    // blocked layout and on the panel kernel's.
    for (const auto& [n, k, kernel] : std::vector<std::tuple<int64_t, int64_t, LinearKernel>>{
             {100, 48, LinearKernel::matmul},
             {8001, 256, LinearKernel::matmul},
             {7, 3, LinearKernel::matmul},
             {100, 48, LinearKernel::panel},
             {7, 3, LinearKernel::panel}}) {
        const LinearKernelScope scope(kernel);
        const Tensor w = random_tensor({n, k}, rng);
        const Linear layer(w, nullptr, Activation::none, "tied");
        INFO(linear_kernel_name(kernel), " ", n, "x", k);
        const Linear::PackedRows rows = layer.packed_rows();
        REQUIRE(rows.data != nullptr);
        REQUIRE(static_cast<int64_t>(rows.row_offset.size()) == n);
        REQUIRE(static_cast<int64_t>(rows.column_offset.size()) == k);
        int64_t mismatches = 0;
        for (int64_t r = 0; r < n; ++r)
            for (int64_t c = 0; c < k; ++c)
                mismatches += rows.data[rows.row_offset[static_cast<std::size_t>(r)] +
                                        rows.column_offset[static_cast<std::size_t>(c)]] != w.f32()[r * k + c];
        CHECK(mismatches == 0);
    }
    const LinearKernelScope scope(LinearKernel::matmul);
    const Tensor w = random_tensor({64, 32}, rng);
    CHECK(Linear(w, nullptr, Activation::none, "s8", MatmulType::s8).packed_rows().data == nullptr);
    // The packed gemm's panels are oneDNN's own: no rows to read there.
    const LinearKernelScope gemm(LinearKernel::packed_gemm);
    CHECK(Linear(w, nullptr, Activation::none, "gemm").packed_rows().data == nullptr);
}

TEST_CASE("Linear rejects bad weights and reports the layer name") {
    const Tensor w({4, 3});
    const Tensor bad_bias({5});
    CHECK_THROWS_WITH_AS(Linear(w, &bad_bias, Activation::none, "enc.fc1"), doctest::Contains("enc.fc1"), Error);
    const Tensor w3({2, 3, 4});
    CHECK_THROWS_AS(Linear(w3, nullptr, Activation::none, "x"), Error);
    const Linear ok(w, nullptr, Activation::swish, "enc.fc1");
    DnnlContext ctx;
    std::vector<float> x(12), y(16);
    CHECK_THROWS_WITH_AS(ok.forward(ctx, x.data(), y.data(), 4, /*accumulate=*/true), doctest::Contains("enc.fc1"),
                         Error);
}

TEST_CASE("softmax_rows matches a naive softmax, also with masked entries, at every vector width") {
    for (const simd::Level level : testing::simd_levels()) {
        const testing::SimdLevelScope scope(level);
        CAPTURE(static_cast<int>(level));
        std::mt19937 rng(2);
        for (auto [rows, cols] : {std::pair<int64_t, int64_t>{1, 1}, {5, 7}, {24, 33}, {3, 100}}) {
            std::vector<float> x = random_vector(static_cast<std::size_t>(rows * cols), rng, -8.f, 8.f);
            if (cols > 2) x[1] = mask_value;  // a masked score must come out as exactly 0
            const std::vector<float> in = x;
            softmax_rows(x.data(), rows, cols);
            for (int64_t r = 0; r < rows; ++r) {
                double mx = -1e300;
                for (int64_t c = 0; c < cols; ++c) mx = std::max(mx, static_cast<double>(in[r * cols + c]));
                double sum = 0;
                for (int64_t c = 0; c < cols; ++c) sum += std::exp(in[r * cols + c] - mx);
                for (int64_t c = 0; c < cols; ++c) {
                    const double want = std::exp(in[r * cols + c] - mx) / sum;
                    const float got = x[r * cols + c];
                    if (!(std::fabs(got - want) <= 1e-5 * want + 1e-7))
                        FAIL_CHECK("softmax [" << rows << "," << cols << "] at " << r << "," << c << ": got "
                                               << got << ", want " << want);
                }
            }
            if (cols > 2) CHECK(x[1] == 0.0f);
            // The same rows with masked entries appended give the same probabilities, bit for bit (a decoding
            // step and the teacher-forced pass over the longer sequence must agree).
            const int64_t wide = cols + 21;
            std::vector<float> padded(static_cast<std::size_t>(rows * wide), mask_value);
            for (int64_t r = 0; r < rows; ++r) std::copy_n(in.begin() + r * cols, cols, padded.begin() + r * wide);
            softmax_rows(padded.data(), rows, wide);
            for (int64_t r = 0; r < rows; ++r)
                for (int64_t c = 0; c < wide; ++c)
                    CHECK(padded[r * wide + c] == (c < cols ? x[r * cols + c] : 0.0f));
        }
    }
}

TEST_CASE("LayerNorm matches a naive loop in place and out of place, with the same bits at every vector width") {
    std::mt19937 rng(3);
    DnnlContext ctx;
    // Widths that are and are not multiples of 16 (and of 8 and 4), up to a base-size model's 512.
    for (int64_t dim : {1, 7, 20, 32, 37, 48, 256, 512}) {
        const Tensor gamma = random_tensor({dim}, rng);
        const Tensor beta = random_tensor({dim}, rng);
        const LayerNorm norm(gamma, beta, 1e-5f, "test.norm");
        const int64_t rows = 9;
        const std::vector<float> x = random_vector(static_cast<std::size_t>(rows * dim), rng, -3.f, 5.f);
        std::vector<float> want(x.size());
        for (int64_t r = 0; r < rows; ++r) {
            double mean = 0, var = 0;
            for (int64_t c = 0; c < dim; ++c) mean += x[r * dim + c];
            mean /= static_cast<double>(dim);
            for (int64_t c = 0; c < dim; ++c) var += (x[r * dim + c] - mean) * (x[r * dim + c] - mean);
            var /= static_cast<double>(dim);
            for (int64_t c = 0; c < dim; ++c) {
                const double normalized = (x[r * dim + c] - mean) / std::sqrt(var + 1e-5);
                want[r * dim + c] = static_cast<float>(normalized * gamma.f32()[c] + beta.f32()[c]);
            }
        }
        std::vector<float> first;
        for (const simd::Level level : testing::simd_levels()) {
            const testing::SimdLevelScope scope(level);
            INFO("dim ", dim, " level ", static_cast<int>(level));
            std::vector<float> out(x.size()), in_place = x;
            norm.forward(ctx, x.data(), out.data(), rows);
            norm.forward(ctx, in_place.data(), in_place.data(), rows);
            for (std::size_t i = 0; i < x.size(); ++i) {
                const double mag = std::fabs(want[i]) + 1.0;
                check_close(out[i], want[i], mag, "layer norm out of place " + std::to_string(i));
            }
            CHECK(in_place == out);
            if (first.empty()) first = out;
            CHECK(out == first);
        }
    }
}

namespace {

// Naive multi-head attention on views: scores = QK^T + mask, softmax, P V with heads merged; double precision.
struct NaiveAttention {
    std::vector<double> probs;  // [batch, n_heads, q_len, k_len]
    std::vector<double> out;    // [batch, q_len, n_heads * d_head]
};

NaiveAttention naive_attention(int64_t n_heads, int64_t d_head, const HeadsView& q, const HeadsView& k,
                               const HeadsView& v, const std::vector<float>& mask, MaskKind kind) {
    const int64_t batch = q.batch, q_len = q.len, k_len = k.len, width = n_heads * d_head;
    NaiveAttention r;
    r.probs.assign(static_cast<std::size_t>(batch * n_heads * q_len * k_len), 0.0);
    r.out.assign(static_cast<std::size_t>(batch * q_len * width), 0.0);
    for (int64_t b = 0; b < batch; ++b)
        for (int64_t h = 0; h < n_heads; ++h)
            for (int64_t t = 0; t < q_len; ++t) {
                std::vector<double> s(static_cast<std::size_t>(k_len));
                double mx = -1e300;
                for (int64_t j = 0; j < k_len; ++j) {
                    double acc = 0;
                    for (int64_t d = 0; d < d_head; ++d)
                        acc += static_cast<double>(q.data[b * q.batch_stride + t * q.row_stride + h * d_head + d]) *
                               k.data[b * k.batch_stride + j * k.row_stride + h * d_head + d];
                    acc += kind == MaskKind::per_key ? mask[b * k_len + j] : mask[(b * q_len + t) * k_len + j];
                    s[j] = acc;
                    mx = std::max(mx, acc);
                }
                double sum = 0;
                for (double& x : s) sum += (x = std::exp(x - mx));
                for (int64_t j = 0; j < k_len; ++j) {
                    const double p = s[j] / sum;
                    r.probs[((b * n_heads + h) * q_len + t) * k_len + j] = p;
                    for (int64_t d = 0; d < d_head; ++d)
                        r.out[(b * q_len + t) * width + h * d_head + d] +=
                            p * v.data[b * v.batch_stride + j * v.row_stride + h * d_head + d];
                }
            }
    return r;
}

// Runs attention() and compares the merged output with a naive loop. When every key fits in a head
// (k_len <= d_head), it runs again with one-hot values (key j's value is 1 at position j of every head), whose
// output is the probabilities themselves: those are compared too, and a masked key's must be exactly 0.
// Without pass_mask attention() gets no mask at all (nullptr) and `mask` must be all zeros for the naive loop.
void check_attention(int64_t n_heads, int64_t d_head, const HeadsView& q, const HeadsView& k,
                     const HeadsView& v, const std::vector<float>& mask, MaskKind kind, const std::string& what,
                     bool pass_mask = true) {
    const int64_t batch = q.batch, q_len = q.len, k_len = k.len, width = n_heads * d_head;
    const float* mask_arg = pass_mask ? mask.data() : nullptr;
    std::vector<float> probs(static_cast<std::size_t>(n_heads * k_len));
    // Output rows wider than the heads (stride width + 3) check that the merge honours the destination strides.
    const int64_t out_stride = width + 3;
    std::vector<float> out(static_cast<std::size_t>(batch * q_len * out_stride), 7.0f);
    attention(n_heads, d_head, q, k, v, mask_arg, kind, out.data(), q_len * out_stride, out_stride, probs.data());
    const NaiveAttention want = naive_attention(n_heads, d_head, q, k, v, mask, kind);
    for (int64_t r = 0; r < batch * q_len; ++r) {
        for (int64_t c = 0; c < width; ++c)
            check_close(out[r * out_stride + c], want.out[r * width + c], 1.0,
                        what + " output row " + std::to_string(r) + " col " + std::to_string(c));
        for (int64_t c = width; c < out_stride; ++c) CHECK(out[r * out_stride + c] == 7.0f);
    }
    if (k_len > d_head) return;
    std::vector<float> one_hot(static_cast<std::size_t>(batch * k_len * width), 0.0f);
    for (int64_t b = 0; b < batch; ++b)
        for (int64_t j = 0; j < k_len; ++j)
            for (int64_t h = 0; h < n_heads; ++h)
                one_hot[static_cast<std::size_t>((b * k_len + j) * width + h * d_head + j)] = 1.0f;
    std::vector<float> p(static_cast<std::size_t>(batch * q_len * width));
    attention(n_heads, d_head, q, k, dense_heads(one_hot.data(), batch, k_len, width), mask_arg, kind, p.data(),
              q_len * width, width, probs.data());
    for (int64_t b = 0; b < batch; ++b)
        for (int64_t h = 0; h < n_heads; ++h)
            for (int64_t t = 0; t < q_len; ++t)
                for (int64_t j = 0; j < k_len; ++j) {
                    const double expected =
                        want.probs[static_cast<std::size_t>(((b * n_heads + h) * q_len + t) * k_len + j)];
                    const float got = p[static_cast<std::size_t>((b * q_len + t) * width + h * d_head + j)];
                    const std::string at = what + " probability b " + std::to_string(b) + " h " + std::to_string(h) +
                                           " t " + std::to_string(t) + " key " + std::to_string(j);
                    check_close(got, expected, 1.0, at);
                    if (expected == 0.0) CHECK_MESSAGE(got == 0.0f, at);
                }
}

}  // namespace

TEST_CASE("attention with a padding mask over several heads and batch items matches a naive loop") {
    std::mt19937 rng(4);
    const int64_t n_heads = 4, d_head = 8, width = n_heads * d_head, batch = 3;
    for (const int64_t len : {6, 12, 130}) {
        const std::vector<int64_t> lengths = {len, 2, len - 2};
        // Dense [batch, len, width] projections, as in the encoder.
        const std::vector<float> q = random_vector(static_cast<std::size_t>(batch * len * width), rng, -2.f, 2.f);
        const std::vector<float> k = random_vector(q.size(), rng, -2.f, 2.f);
        const std::vector<float> v = random_vector(q.size(), rng);
        std::vector<float> mask(static_cast<std::size_t>(batch * len), 0.0f);
        for (int64_t b = 0; b < batch; ++b)
            for (int64_t j = lengths[b]; j < len; ++j) mask[b * len + j] = mask_value;
        check_attention(n_heads, d_head, dense_heads(q.data(), batch, len, width),
                        dense_heads(k.data(), batch, len, width), dense_heads(v.data(), batch, len, width), mask,
                        MaskKind::per_key, "padding, length " + std::to_string(len));
    }
}

TEST_CASE("attention with a causal mask matches a naive loop, and masked keys get exactly zero weight") {
    std::mt19937 rng(5);
    const int64_t n_heads = 2, d_head = 16, width = n_heads * d_head, batch = 2;
    for (const int64_t len : {5, 11, 131}) {
        const std::vector<float> q = random_vector(static_cast<std::size_t>(batch * len * width), rng, -2.f, 2.f);
        const std::vector<float> k = random_vector(q.size(), rng, -2.f, 2.f);
        const std::vector<float> v = random_vector(q.size(), rng);
        std::vector<float> mask(static_cast<std::size_t>(batch * len * len), 0.0f);
        for (int64_t b = 0; b < batch; ++b)
            for (int64_t t = 0; t < len; ++t)
                for (int64_t j = t + 1; j < len; ++j) mask[(b * len + t) * len + j] = mask_value;
        check_attention(n_heads, d_head, dense_heads(q.data(), batch, len, width),
                        dense_heads(k.data(), batch, len, width), dense_heads(v.data(), batch, len, width), mask,
                        MaskKind::per_query, "causal, length " + std::to_string(len));
    }
}

TEST_CASE("attention reads strided views: a K/V cache with spare capacity and queries grouped per sentence") {
    std::mt19937 rng(6);
    const int64_t n_heads = 4, d_head = 8, width = n_heads * d_head;
    SUBCASE("decoder step: one query per row against a cache of capacity 16 holding 5 positions") {
        const int64_t rows = 3, capacity = 16, used = 5;
        const std::vector<float> q = random_vector(static_cast<std::size_t>(rows * width), rng, -2.f, 2.f);
        const std::vector<float> kc = random_vector(static_cast<std::size_t>(rows * capacity * width), rng);
        const std::vector<float> vc = random_vector(kc.size(), rng);
        const std::vector<float> mask(static_cast<std::size_t>(rows * used), 0.0f);
        const HeadsView kv{kc.data(), rows, used, capacity * width, width};
        const HeadsView vv{vc.data(), rows, used, capacity * width, width};
        check_attention(n_heads, d_head, {q.data(), rows, 1, width, width}, kv, vv, mask, MaskKind::per_key,
                        "cache");
    }
    SUBCASE("cross-attention: beams of a sentence as its query positions, keys per sentence, padding") {
        const int64_t sentences = 2, beam = 3, src_len = 7;
        const std::vector<float> q = random_vector(static_cast<std::size_t>(sentences * beam * width), rng);
        const std::vector<float> k = random_vector(static_cast<std::size_t>(sentences * src_len * width), rng);
        const std::vector<float> v = random_vector(k.size(), rng);
        std::vector<float> mask(static_cast<std::size_t>(sentences * src_len), 0.0f);
        for (int64_t j = 4; j < src_len; ++j) mask[src_len + j] = mask_value;
        check_attention(n_heads, d_head, dense_heads(q.data(), sentences, beam, width),
                        dense_heads(k.data(), sentences, src_len, width),
                        dense_heads(v.data(), sentences, src_len, width), mask, MaskKind::per_key, "grouped");
    }
}

TEST_CASE("decoding steps of any batch, key length and head size match a naive loop, at every vector width") {
    // One query per row against a K/V cache with spare room, a padding mask that differs per row; the batch and the
    // key length change from call to call as they do while decoding. Heads of 64 (OPUS-MT's) and 32 floats take the
    // vector loops, heads of 8 the plain ones; at every width. (That the products give the same bits at every width
    // is checked on the loops themselves below; softmax's exp need not.)
    const int64_t n_heads = 4, capacity = 40;
    for (const int64_t d_head : {8, 32, 64}) {
        const int64_t width = n_heads * d_head;
        std::mt19937 rng(11);
        for (const auto& [rows, used] :
             std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {3, 5}, {7, 17}, {2, 33}, {5, 2}}) {
            const std::vector<float> q = random_vector(static_cast<std::size_t>(rows * width), rng, -2.f, 2.f);
            const std::vector<float> kc =
                random_vector(static_cast<std::size_t>(rows * capacity * width), rng, -2.f, 2.f);
            const std::vector<float> vc = random_vector(kc.size(), rng);
            std::vector<float> mask(static_cast<std::size_t>(rows * used), 0.0f);
            for (int64_t r = 0; r < rows; ++r)
                for (int64_t j = used - r % 3; j < used; ++j)
                    if (j > 0) mask[r * used + j] = mask_value;  // row r: its last r % 3 keys are padding
            const HeadsView kv{kc.data(), rows, used, capacity * width, width};
            const HeadsView vv{vc.data(), rows, used, capacity * width, width};
            const HeadsView qv{q.data(), rows, 1, width, width};
            for (const simd::Level level : testing::simd_levels()) {
                const testing::SimdLevelScope scope(level);
                const std::string what = "step, head " + std::to_string(d_head) + ", rows " + std::to_string(rows) +
                                         ", keys " + std::to_string(used) + ", level " +
                                         std::to_string(static_cast<int>(level));
                check_attention(n_heads, d_head, qv, kv, vv, mask, MaskKind::per_key, what);
            }
        }
    }
}

TEST_CASE("the few-query attention loops match naive sums for any head size, head count, key count and stride") {
    // Key/value rows of `stride` floats whose tail past the heads is NaN, and weights per head `p_stride` apart with
    // NaN between them: a loop that reads past what it was given poisons its result.
    std::mt19937 rng(13);
    for (const int64_t heads : {1, 3}) {
        for (const int64_t d : {1, 7, 8, 16, 24, 48, 64, 80, 256, 272}) {
            for (const int64_t n : {1, 2, 3, 4, 5, 8, 9, 33}) {
                const int64_t width = heads * d, stride = width + 5, p_stride = n + 2, out_stride = n + 1;
                const std::vector<float> q = random_vector(static_cast<std::size_t>(width), rng, -2.f, 2.f);
                std::vector<float> rows = random_vector(static_cast<std::size_t>(n * stride), rng, -2.f, 2.f);
                for (int64_t j = 0; j < n; ++j)
                    for (int64_t c = width; c < stride; ++c)
                        rows[static_cast<std::size_t>(j * stride + c)] = std::nanf("");
                const std::vector<float> add = random_vector(static_cast<std::size_t>(n), rng, -3.f, 3.f);
                std::vector<float> p = random_vector(static_cast<std::size_t>(heads * p_stride), rng, 0.f, 1.f);
                for (int64_t h = 0; h < heads; ++h)
                    for (int64_t j = n; j < p_stride; ++j)
                        p[static_cast<std::size_t>(h * p_stride + j)] = std::nanf("");
                std::vector<float> first_dots, first_plain, first_sums;
                for (const simd::Level level : testing::simd_levels()) {
                    const testing::SimdLevelScope scope(level);
                    const std::string what = "heads " + std::to_string(heads) + ", d " + std::to_string(d) +
                                             ", n " + std::to_string(n) + ", level " +
                                             std::to_string(static_cast<int>(level));
                    // Outputs start as 7: the score gaps between heads must keep it.
                    std::vector<float> dots(static_cast<std::size_t>(heads * out_stride), 7.0f), plain(dots);
                    std::vector<float> sums(static_cast<std::size_t>(width), 7.0f);
                    attention_kernels::dot_rows(q.data(), rows.data(), stride, n, heads, d, add.data(), dots.data(),
                                                out_stride);
                    attention_kernels::dot_rows(q.data(), rows.data(), stride, n, heads, d, nullptr, plain.data(),
                                                out_stride);
                    attention_kernels::weighted_rows(p.data(), p_stride, rows.data(), stride, n, heads, d,
                                                     sums.data());
                    for (int64_t h = 0; h < heads; ++h) {
                        for (int64_t j = 0; j < n; ++j) {
                            double want = 0, magnitude = 0;
                            for (int64_t c = 0; c < d; ++c) {
                                const double term =
                                    double(q[h * d + c]) * rows[static_cast<std::size_t>(j * stride + h * d + c)];
                                want += term;
                                magnitude += std::fabs(term);
                            }
                            const std::string at = what + " head " + std::to_string(h) + " key " + std::to_string(j);
                            check_close(plain[h * out_stride + j], want, magnitude, at + " dot");
                            check_close(dots[h * out_stride + j], want + add[j], magnitude + std::fabs(add[j]),
                                        at + " dot + add");
                        }
                        CHECK(dots[h * out_stride + n] == 7.0f);
                        CHECK(plain[h * out_stride + n] == 7.0f);
                        for (int64_t c = 0; c < d; ++c) {
                            double want = 0, magnitude = 0;
                            for (int64_t j = 0; j < n; ++j) {
                                const double term = double(p[h * p_stride + j]) *
                                                    rows[static_cast<std::size_t>(j * stride + h * d + c)];
                                want += term;
                                magnitude += std::fabs(term);
                            }
                            check_close(sums[h * d + c], want, magnitude,
                                        what + " head " + std::to_string(h) + " weighted sum " + std::to_string(c));
                        }
                    }
                    if (first_dots.empty()) {
                        first_dots = dots;
                        first_plain = plain;
                        first_sums = sums;
                    } else {  // the same bits at every width
                        INFO(what);
                        CHECK(dots == first_dots);
                        CHECK(plain == first_plain);
                        CHECK(sums == first_sums);
                    }
                }
            }
        }
    }
}

TEST_CASE("the few-query attention loops read each key and value from the cache row its slot names") {
    // A cache of 5 rows x (n + 3) positions, all NaN except position j of row slots[j]: a loop that reads any
    // other row or position poisons its result. The results must equal, bit for bit, the same loops over the
    // named rows copied one after another (checked against naive double sums by the test above).
    std::mt19937 rng(17);
    const int64_t cache_rows = 5;
    for (const int64_t heads : {1, 4}) {
        for (const int64_t d : {7, 16, 64}) {
            for (const int64_t n : {1, 5, 33}) {
                const int64_t width = heads * d, capacity = n + 3, row_stride = capacity * width;
                std::vector<int32_t> slots(static_cast<std::size_t>(n));
                for (int32_t& slot : slots) slot = static_cast<int32_t>(rng() % cache_rows);
                std::vector<float> cache(static_cast<std::size_t>(cache_rows * row_stride), std::nanf(""));
                const std::vector<float> rows = random_vector(static_cast<std::size_t>(n * width), rng, -2.f, 2.f);
                for (int64_t j = 0; j < n; ++j)
                    std::copy_n(rows.begin() + j * width, width, cache.begin() + slots[j] * row_stride + j * width);
                const std::vector<float> q = random_vector(static_cast<std::size_t>(width), rng, -2.f, 2.f);
                const std::vector<float> p = random_vector(static_cast<std::size_t>(heads * n), rng, 0.f, 1.f);
                for (const simd::Level level : testing::simd_levels()) {
                    const testing::SimdLevelScope scope(level);
                    INFO("heads " << heads << ", d " << d << ", n " << n << ", level " << static_cast<int>(level));
                    std::vector<float> dots(static_cast<std::size_t>(heads * n)), want_dots(dots);
                    std::vector<float> sums(static_cast<std::size_t>(width)), want_sums(sums);
                    attention_kernels::dot_rows(q.data(), cache.data(), width, n, heads, d, nullptr, dots.data(), n,
                                                slots.data(), row_stride);
                    attention_kernels::weighted_rows(p.data(), n, cache.data(), width, n, heads, d, sums.data(),
                                                     slots.data(), row_stride);
                    attention_kernels::dot_rows(q.data(), rows.data(), width, n, heads, d, nullptr, want_dots.data(),
                                                n);
                    attention_kernels::weighted_rows(p.data(), n, rows.data(), width, n, heads, d, want_sums.data());
                    CHECK(dots == want_dots);
                    CHECK(sums == want_sums);
                }
            }
        }
    }
}

TEST_CASE("attention without a mask (self-attention steps over exactly the written positions) matches a naive loop") {
    std::mt19937 rng(12);
    const int64_t n_heads = 4, d_head = 8, width = n_heads * d_head, capacity = 24;
    // One query per row against the first `used` positions of a cache with spare room (the spare positions hold
    // garbage that must not be read), as the decoder's steps run; then several queries per batch item.
    for (const auto& [rows, used] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {4, 3}, {9, 24}, {2, 7}}) {
        const std::vector<float> q = random_vector(static_cast<std::size_t>(rows * width), rng, -2.f, 2.f);
        std::vector<float> kc = random_vector(static_cast<std::size_t>(rows * capacity * width), rng, -2.f, 2.f);
        std::vector<float> vc = random_vector(kc.size(), rng);
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t j = used; j < capacity; ++j)
                for (int64_t c = 0; c < width; ++c) {
                    kc[static_cast<std::size_t>((r * capacity + j) * width + c)] = std::nanf("");
                    vc[static_cast<std::size_t>((r * capacity + j) * width + c)] = std::nanf("");
                }
        const std::vector<float> zeros(static_cast<std::size_t>(rows * used), 0.0f);
        const HeadsView kv{kc.data(), rows, used, capacity * width, width};
        const HeadsView vv{vc.data(), rows, used, capacity * width, width};
        check_attention(n_heads, d_head, {q.data(), rows, 1, width, width}, kv, vv, zeros, MaskKind::per_key,
                        "unmasked step rows " + std::to_string(rows) + " keys " + std::to_string(used),
                        /*pass_mask=*/false);
    }
    const int64_t batch = 3, len = 5;
    const std::vector<float> q = random_vector(static_cast<std::size_t>(batch * len * width), rng, -2.f, 2.f);
    const std::vector<float> k = random_vector(q.size(), rng, -2.f, 2.f);
    const std::vector<float> v = random_vector(q.size(), rng);
    const std::vector<float> zeros(static_cast<std::size_t>(batch * len), 0.0f);
    check_attention(n_heads, d_head, dense_heads(q.data(), batch, len, width),
                    dense_heads(k.data(), batch, len, width), dense_heads(v.data(), batch, len, width), zeros,
                    MaskKind::per_key, "unmasked full", /*pass_mask=*/false);
}

TEST_CASE("attention reads a view's keys and values through its slots") {
    // 3 rows, one query each, over 5 positions of a cache of 4 rows x 6 positions (NaN past them); row r's position
    // p lives in cache row slots[r][p], which rows may share. The outputs must be those of the same rows gathered
    // densely, bit for bit.
    std::mt19937 rng(29);
    const int64_t n_heads = 4, d_head = 8, width = n_heads * d_head, cache_rows = 4, capacity = 6, rows = 3, used = 5;
    std::vector<int32_t> slots(static_cast<std::size_t>(rows * capacity), -1);
    std::vector<float> kc = random_vector(static_cast<std::size_t>(cache_rows * capacity * width), rng, -2.f, 2.f);
    std::vector<float> vc = random_vector(kc.size(), rng, -2.f, 2.f);
    for (int64_t c = 0; c < cache_rows; ++c)
        for (int64_t i = used * width; i < capacity * width; ++i) {
            kc[static_cast<std::size_t>(c * capacity * width + i)] = std::nanf("");
            vc[static_cast<std::size_t>(c * capacity * width + i)] = std::nanf("");
        }
    std::vector<float> kd(static_cast<std::size_t>(rows * used * width)), vd(kd);
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t p = 0; p < used; ++p) {
            const auto slot = static_cast<int32_t>(rng() % cache_rows);
            slots[static_cast<std::size_t>(r * capacity + p)] = slot;
            const auto from = static_cast<std::ptrdiff_t>((slot * capacity + p) * width);
            std::copy_n(kc.begin() + from, width, kd.begin() + (r * used + p) * width);
            std::copy_n(vc.begin() + from, width, vd.begin() + (r * used + p) * width);
        }
    const std::vector<float> q = random_vector(static_cast<std::size_t>(rows * width), rng, -2.f, 2.f);
    const HeadsView qv{q.data(), rows, 1, width, width};
    const HeadsView ks{kc.data(), rows, used, capacity * width, width, slots.data(), capacity};
    const HeadsView vs{vc.data(), rows, used, capacity * width, width, slots.data(), capacity};
    const auto run = [&](const HeadsView& qx, const HeadsView& kx, const HeadsView& vx) {
        std::vector<float> probs(static_cast<std::size_t>(n_heads * used));
        std::vector<float> out(static_cast<std::size_t>(qx.batch * width));
        attention(n_heads, d_head, qx, kx, vx, nullptr, MaskKind::per_key, out.data(), width, width, probs.data());
        return out;
    };
    const std::vector<float> dense = run(qv, dense_heads(kd.data(), rows, used, width),
                                         dense_heads(vd.data(), rows, used, width));
    for (const float x : dense) REQUIRE(std::isfinite(x));
    CHECK(run(qv, ks, vs) == dense);
    // Slots name cache rows of keys and values; a query view carrying them is a caller's mistake.
    std::vector<float> probs(static_cast<std::size_t>(n_heads * used)), out(static_cast<std::size_t>(width));
    const HeadsView slotted_q{q.data(), 1, 1, width, width, slots.data(), capacity};
    const HeadsView k1{kc.data(), 1, used, capacity * width, width, slots.data(), capacity};
    const HeadsView v1{vc.data(), 1, used, capacity * width, width, slots.data(), capacity};
    CHECK_THROWS_WITH_AS(attention(n_heads, d_head, slotted_q, k1, v1, nullptr, MaskKind::per_key, out.data(), width,
                                   width, probs.data()),
                         doctest::Contains("slots"), Error);
}

TEST_CASE("attention rejects inconsistent views") {
    std::vector<float> buf(64), out(64), probs(64), mask(8);
    const HeadsView q{buf.data(), 2, 1, 8, 8};
    const HeadsView k{buf.data(), 3, 1, 8, 8};
    CHECK_THROWS_WITH_AS(attention(2, 4, q, k, k, mask.data(), MaskKind::per_key, out.data(), 8, 8, probs.data()),
                         doctest::Contains("batch"), Error);
    const HeadsView narrow{buf.data(), 2, 1, 8, 4};
    CHECK_THROWS_AS(attention(2, 4, narrow, narrow, narrow, mask.data(), MaskKind::per_key, out.data(), 8, 8,
                              probs.data()),
                    Error);
    const HeadsView longer{buf.data(), 2, 2, 16, 8};
    CHECK_THROWS_WITH_AS(attention(2, 4, q, q, longer, mask.data(), MaskKind::per_key, out.data(), 8, 8,
                                   probs.data()),
                         doctest::Contains("values"), Error);
    CHECK_THROWS_WITH_AS(attention(2, 4, q, q, q, mask.data(), MaskKind::per_key, out.data(), 8, 6, probs.data()),
                         doctest::Contains("output strides"), Error);
}

TEST_CASE("hot-path primitives do not fall back to oneDNN reference kernels") {
    // The shapes a base-size Marian model (d_model 512, 8 heads, d_ff 2048) runs on oneDNN: encoder, full-decoder
    // and step projections and the vocabulary projection (attention and layer norm run on tolk's own loops).
    std::mt19937 rng(7);
    DnnlContext ctx;
    // f32 on the matmul primitive here even where it runs on the panel kernel (no AVX-512); checked below.
    std::optional<LinearKernelScope> matmul_scope(std::in_place, LinearKernel::matmul);
    const int64_t d_model = 512, d_ff = 2048, vocab = 1000;
    const Tensor w_proj = random_tensor({d_model, d_model}, rng), b_proj = random_tensor({d_model}, rng);
    const Tensor w_fc1 = random_tensor({d_ff, d_model}, rng), b_fc1 = random_tensor({d_ff}, rng);
    const Tensor w_fc2 = random_tensor({d_model, d_ff}, rng);
    const Tensor w_vocab = random_tensor({vocab, d_model}, rng), b_vocab = random_tensor({vocab}, rng);
    const Linear proj(w_proj, &b_proj, Activation::none, "proj");
    const Linear fc1(w_fc1, &b_fc1, Activation::swish, "fc1");
    const Linear fc1_gelu(w_fc1, &b_fc1, Activation::gelu, "fc1_gelu");
    const Linear fc1_relu(w_fc1, &b_fc1, Activation::relu, "fc1_relu");
    const Linear fc2(w_fc2, &b_proj, Activation::none, "fc2");
    const Linear vocab_proj(w_vocab, &b_vocab, Activation::none, "lm_head");
    const LayerNorm norm(b_proj, b_proj, 1e-5f, "norm");
    std::vector<float> a(static_cast<std::size_t>(256 * d_ff)), b(a.size());
    matmul_scope.reset();
    // The same projections in the low-precision compute types (bf16 only where oneDNN 2.6 has it: AVX-512).
    std::vector<Linear> lowp;
    for (MatmulType type : {MatmulType::s8, MatmulType::bf16}) {
        if (type == MatmulType::bf16 && !cpu_has_avx512()) continue;
        lowp.emplace_back(w_proj, &b_proj, Activation::none, "proj", type);
        lowp.emplace_back(w_fc1, &b_fc1, Activation::gelu, "fc1_gelu", type);
        lowp.emplace_back(w_fc1, &b_fc1, Activation::swish, "fc1", type);
        lowp.emplace_back(w_vocab, &b_vocab, Activation::none, "lm_head", type);
    }
    for (int64_t rows : {1, 4, 12, 240}) {
        for (const Linear& l : lowp) {
            l.forward(ctx, a.data(), b.data(), rows);
            l.forward(ctx, a.data(), b.data(), rows, /*accumulate=*/l.name() == "proj");
        }
        proj.forward(ctx, a.data(), b.data(), rows);
        proj.forward(ctx, a.data(), b.data(), rows, /*accumulate=*/true);
        fc1.forward(ctx, a.data(), b.data(), rows);
        fc1_gelu.forward(ctx, a.data(), b.data(), rows);
        fc1_relu.forward(ctx, a.data(), b.data(), rows);
        fc2.forward(ctx, a.data(), b.data(), rows, /*accumulate=*/true);
        vocab_proj.forward(ctx, a.data(), b.data(), rows);
        norm.forward(ctx, b.data(), b.data(), rows);
    }

    const std::vector<std::string> report = ctx.primitive_report();
    CHECK(report.size() > 30);
    for (const std::string& line : report) {
        INFO(line);
        const std::string impl = line.substr(line.rfind(" -> ") + 4);
        CHECK_FALSE(is_reference_kernel(impl));
    }
    // Linear projections get the brgemm kernels where oneDNN 2.6 has them (AVX-512 and up); on an AVX2-only CPU
    // (or with ONEDNN_MAX_CPU_ISA=AVX2) its best f32 matmul is the jit gemm, and int8 runs on the packed gemm.
    INFO("oneDNN ISA: ", cpu_isa_name());
    const std::string expected = cpu_has_avx512() ? "brg" : "gemm:jit";
    CHECK(proj.implementation(ctx, 240).rfind(expected, 0) == 0);
    CHECK(vocab_proj.implementation(ctx, 4).rfind(expected, 0) == 0);
    REQUIRE(lowp.front().type() == MatmulType::s8);
    CHECK(lowp.front().implementation(ctx, 4).rfind(cpu_has_avx512() ? "brg" : "panel gemm", 0) == 0);
    // Without AVX-512, f32 projections run on tolk's panel kernel instead of the jit gemm.
    const Linear automatic(w_proj, &b_proj, Activation::none, "proj");
    CHECK(automatic.implementation(ctx, 4).rfind(cpu_has_avx512() ? "brg" : "panel gemm", 0) == 0);
}

TEST_CASE("primitives are cached per shape and contexts are independent") {
    std::mt19937 rng(8);
    const LinearKernelScope scope(LinearKernel::matmul);  // the packed gemm has no primitives to cache
    const Tensor w = random_tensor({16, 8}, rng);
    const Linear linear(w, nullptr, Activation::none, "cache");
    DnnlContext ctx, other;
    std::vector<float> x(8 * 5), y(16 * 5);
    linear.forward(ctx, x.data(), y.data(), 5);
    linear.forward(ctx, x.data(), y.data(), 5);
    CHECK(ctx.cached_primitives() == 1);
    linear.forward(ctx, x.data(), y.data(), 3);
    CHECK(ctx.cached_primitives() == 2);
    CHECK(other.cached_primitives() == 0);
    ctx.clear();
    CHECK(ctx.cached_primitives() == 0);

    // Bounded: the least recently used primitive goes first, and a dropped one is rebuilt with the same numbers.
    ctx.set_cache_capacity(3);
    std::vector<float> y_first(16 * 5);
    linear.forward(ctx, x.data(), y_first.data(), 5);
    for (int64_t rows : {1, 2, 3, 4}) linear.forward(ctx, x.data(), y.data(), rows);
    CHECK(ctx.cached_primitives() == 3);
    for (const std::string& line : ctx.primitive_report()) CHECK(line.find("{5,") == std::string::npos);
    linear.forward(ctx, x.data(), y.data(), 2);  // 2 is now the most recent; 3 is the oldest
    linear.forward(ctx, x.data(), y.data(), 5);
    CHECK(ctx.cached_primitives() == 3);
    bool has3 = false;
    for (const std::string& line : ctx.primitive_report()) has3 = has3 || line.find("{3,") != std::string::npos;
    CHECK_FALSE(has3);
    CHECK(std::vector<float>(y.begin(), y.begin() + 16 * 5) == y_first);
}

TEST_CASE("set_num_threads changes the OpenMP thread count") {
    const int before = num_threads();
    set_num_threads(1);
    CHECK(num_threads() == 1);
    set_num_threads(2);
    CHECK(num_threads() == 2);
    set_num_threads(0);  // keeps the current value
    CHECK(num_threads() == 2);
    set_num_threads(before);
}
