// LayerNorm as a vector loop of our own rather than oneDNN's layer normalization: that primitive is built (JIT-
// compiled, ~0.2 ms, and kept) per row count, so a run made one per distinct source length, and it was the only
// oneDNN primitive a short sentence needs in float32 on CPUs without AVX-512 (there the products run on tolk's
// panel kernel and the decoding steps' attention on tolk's loops), which then paged in oneDNN's JIT machinery.
#include "dnnl/layer_norm.h"

#include <cmath>

#include "core/simd.h"

namespace tolk {

namespace {

// One row: mean, then the mean square of x - mean, both as 16-lane sums (simd::sum16) plus the elements past the
// last whole 16 in order; then y = ((x - mean) * rstd) * gamma + beta element by element. This file is compiled
// without fused multiply-adds (CMakeLists.txt), so each width computes exactly the same operations.
struct NormRow {
    template <int W>
    [[gnu::always_inline]] static void run(const float* x, float* y, const float* gamma, const float* beta,
                                           int64_t n, float eps) {
        constexpr int V = 16 / W;
        simd::F<W> acc[V] = {};
        int64_t i = 0;
        for (; i + 16 <= n; i += 16)
            for (int v = 0; v < V; ++v) acc[v] += simd::load<W>(x + i + v * W);
        float sum = simd::sum16<W>(acc);
        for (; i < n; ++i) sum += x[i];
        const float mean = sum / static_cast<float>(n);

        simd::F<W> squares[V] = {};
        for (i = 0; i + 16 <= n; i += 16)
            for (int v = 0; v < V; ++v) {
                const simd::F<W> d = simd::load<W>(x + i + v * W) - mean;
                squares[v] += d * d;
            }
        float square_sum = simd::sum16<W>(squares);
        for (; i < n; ++i) square_sum += (x[i] - mean) * (x[i] - mean);
        const float rstd = 1.0f / std::sqrt(square_sum / static_cast<float>(n) + eps);

        for (i = 0; i + W <= n; i += W)
            simd::store<W>(y + i, ((simd::load<W>(x + i) - mean) * rstd) * simd::load<W>(gamma + i) +
                                      simd::load<W>(beta + i));
        for (; i < n; ++i) y[i] = ((x[i] - mean) * rstd) * gamma[i] + beta[i];
    }
};

}  // namespace

LayerNorm::LayerNorm(const Tensor& gamma, const Tensor& beta, float eps, std::string name)
    : gamma_(gamma.clone()), beta_(beta.clone()), eps_(eps), dim_(gamma.numel()), name_(std::move(name)) {
    TOLK_CHECK(gamma.dtype() == DType::f32 && beta.dtype() == DType::f32 && dim_ > 0 && beta.numel() == dim_,
               name_, ": weight ", shape_str(gamma.shape()), " and bias ", shape_str(beta.shape()),
               " must be f32 vectors of the same length");
    gamma_.reshape({dim_});
    beta_.reshape({dim_});
}

void LayerNorm::forward(DnnlContext& /*ctx*/, const float* x, float* y, int64_t rows) const {
    TOLK_CHECK(dim_ > 0, "LayerNorm used before it was built");
    TOLK_CHECK(rows > 0, name_, ": row count must be positive, got ", rows);
    for (int64_t r = 0; r < rows; ++r)
        simd::call<NormRow>(x + r * dim_, y + r * dim_, gamma_.f32(), beta_.f32(), dim_, eps_);
}

}  // namespace tolk
