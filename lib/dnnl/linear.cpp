// Linear on oneDNN matmul: weights reordered once into the blocked layout brgemm wants, bias {1, N}, fused
// activation or residual-sum post-ops, and per-row-count primitives cached in the calling context.
#include "dnnl/linear.h"

#include <cstring>

#include "dnnl/dnnl_internal.h"

namespace tolk {

using dnnl_detail::BoundPrimitive;
using dnnl_detail::make_pd;
using dnnl_detail::md_str;
using dnnl_detail::OpKey;
using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

Activation activation_from_name(std::string_view name) {
    if (name == "swish" || name == "silu") return Activation::swish;
    if (name == "gelu") return Activation::gelu;
    if (name == "relu") return Activation::relu;
    TOLK_FAIL("activation_function '", name, "' is not supported (expected swish, silu, gelu or relu)");
}

struct Linear::Packed {
    dnnl::memory::desc weights_md;  // the blocked layout chosen once at load
    dnnl::memory weights;           // owned by oneDNN, in weights_md
    dnnl::memory bias;              // {1, out_features}, or empty
};

namespace {

// The row count the weight layout is chosen for. oneDNN 2.6 picks the same blocked layout for every row count
// on AVX-512 (checked from 1 to 4096 rows, 1 to 16 threads), and a primitive for any other row count accepts it,
// so one packed copy serves all shapes.
constexpr int64_t packing_rows = 32;

dnnl::primitive_attr make_attr(Activation activation, bool accumulate) {
    dnnl::post_ops ops;
    switch (activation) {
        case Activation::none: break;
        case Activation::relu: ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f); break;
        case Activation::gelu: ops.append_eltwise(1.f, dnnl::algorithm::eltwise_gelu_erf, 0.f, 0.f); break;
        case Activation::swish: ops.append_eltwise(1.f, dnnl::algorithm::eltwise_swish, 1.f, 0.f); break;
    }
    if (accumulate) ops.append_sum(1.f);
    dnnl::primitive_attr attr;
    attr.set_post_ops(ops);
    return attr;
}

const char* activation_name(Activation a) {
    switch (a) {
        case Activation::none: return "";
        case Activation::relu: return "+relu";
        case Activation::gelu: return "+gelu";
        case Activation::swish: return "+swish";
    }
    return "";
}

}  // namespace

Linear::Linear() = default;
Linear::Linear(Linear&&) noexcept = default;
Linear& Linear::operator=(Linear&&) noexcept = default;
Linear::~Linear() = default;

Linear::Linear(const Tensor& weight, const Tensor* bias, Activation activation, std::string name)
    : activation_(activation), name_(std::move(name)), id_(dnnl_detail::next_instance_id()) {
    TOLK_CHECK(weight.rank() == 2 && weight.dtype() == DType::f32, name_, ": weight must be a 2-D f32 tensor, got ",
               dtype_name(weight.dtype()), " ", shape_str(weight.shape()));
    out_features_ = weight.dim(0);
    in_features_ = weight.dim(1);
    TOLK_CHECK(out_features_ > 0 && in_features_ > 0, name_, ": empty weight ", shape_str(weight.shape()));
    if (bias) {
        TOLK_CHECK(bias->dtype() == DType::f32 && bias->numel() == out_features_ && bias->dim(-1) == out_features_,
                   name_, ": bias has shape ", shape_str(bias->shape()), ", expected [", out_features_, "]");
    }

    const auto& engine = dnnl_detail::cpu_engine();
    const int64_t n = out_features_, k = in_features_;
    auto packed = std::make_shared<Packed>();
    const dnnl::memory::desc src_md({packing_rows, k}, dt::f32, tag::ab);
    const dnnl::memory::desc any_md({k, n}, dt::f32, tag::any);
    const dnnl::memory::desc bias_md({1, n}, dt::f32, tag::ab);
    const dnnl::memory::desc dst_md({packing_rows, n}, dt::f32, tag::ab);
    const std::string what = "matmul for " + name_ + " (weights f32 [" + std::to_string(n) + "," +
                             std::to_string(k) + "])";
    auto pd = make_pd(what, [&] {
        return dnnl::matmul::primitive_desc(
            dnnl::matmul::desc(src_md, any_md, bias ? bias_md : dnnl::memory::desc(), dst_md), engine);
    });
    packed->weights_md = pd.weights_desc();
    try {
        // W is [out, in] row-major, which is the {in, out} matmul weight with strides {1, in} ("ba").
        const dnnl::memory::desc plain_md({k, n}, dt::f32, tag::ba);
        dnnl::memory plain(plain_md, engine, const_cast<float*>(weight.f32()));
        packed->weights = dnnl::memory(packed->weights_md, engine);
        dnnl::stream stream(engine);
        dnnl::reorder(plain, packed->weights).execute(stream, plain, packed->weights);
        stream.wait();
        if (bias) {
            packed->bias = dnnl::memory(bias_md, engine);
            std::memcpy(packed->bias.get_data_handle(), bias->f32(), static_cast<std::size_t>(n) * sizeof(float));
        }
    } catch (const dnnl::error& e) {
        TOLK_FAIL("oneDNN cannot prepack the weights of ", name_, " [", n, ",", k, "]: ", e.what());
    }
    packed_ = std::move(packed);
}

BoundPrimitive& Linear::bind(DnnlContext& ctx, int64_t rows, bool accumulate) const {
    TOLK_CHECK(packed_ != nullptr, "Linear used before it was built");
    TOLK_CHECK(rows > 0, name_, ": row count must be positive, got ", rows);
    TOLK_CHECK(!accumulate || activation_ == Activation::none, name_,
               ": a fused residual sum cannot follow an activation");
    auto& impl = ctx.impl();
    OpKey key;
    key.op = id_;
    key.v[0] = rows;
    key.v[1] = accumulate;
    if (BoundPrimitive* found = impl.find(key)) return *found;

    const auto& engine = dnnl_detail::cpu_engine();
    const dnnl::memory::desc src_md({rows, in_features_}, dt::f32, tag::ab);
    const dnnl::memory::desc dst_md({rows, out_features_}, dt::f32, tag::ab);
    const bool has_bias = static_cast<bool>(packed_->bias);
    const dnnl::memory::desc bias_md = has_bias ? packed_->bias.get_desc() : dnnl::memory::desc();
    BoundPrimitive bound;
    bound.description = "matmul " + name_ + " src " + md_str(src_md) + " weights " + md_str(packed_->weights_md) +
                        (has_bias ? " bias " + md_str(bias_md) : std::string()) + " dst " + md_str(dst_md) +
                        activation_name(activation_) + (accumulate ? "+sum" : "");
    auto pd = make_pd(bound.description, [&] {
        return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src_md, packed_->weights_md, bias_md, dst_md),
                                            make_attr(activation_, accumulate), engine);
    });
    bound.impl = pd.impl_info_str();
    bound.primitive = dnnl::matmul(pd);
    bound.args = {{DNNL_ARG_SRC, dnnl::memory(src_md, engine, nullptr)},
                  {DNNL_ARG_WEIGHTS, packed_->weights},
                  {DNNL_ARG_DST, dnnl::memory(dst_md, engine, nullptr)}};
    if (has_bias) bound.args.emplace(DNNL_ARG_BIAS, packed_->bias);
    return impl.insert(key, std::move(bound));
}

void Linear::forward(DnnlContext& ctx, const float* x, float* y, int64_t rows, bool accumulate) const {
    BoundPrimitive& bound = bind(ctx, rows, accumulate);
    bound.set(DNNL_ARG_SRC, x);
    bound.set(DNNL_ARG_DST, y);
    ctx.impl().execute(bound);
}

std::string Linear::implementation(DnnlContext& ctx, int64_t rows, bool accumulate) const {
    return bind(ctx, rows, accumulate).impl;
}

}  // namespace tolk
