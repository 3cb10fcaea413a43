// LayerNorm on oneDNN's layer normalization (inference, statistics computed per row, scale and shift).
#include "dnnl/layer_norm.h"

#include <bit>

#include "dnnl/dnnl_internal.h"

namespace tolk {

using dnnl_detail::BoundPrimitive;
using dnnl_detail::OpKey;
using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

LayerNorm::LayerNorm(const Tensor& gamma, const Tensor& beta, float eps, std::string name)
    : gamma_(gamma.clone()), beta_(beta.clone()), eps_(eps), dim_(gamma.numel()), name_(std::move(name)),
      eps_bits_(std::bit_cast<uint32_t>(eps)) {
    TOLK_CHECK(gamma.dtype() == DType::f32 && beta.dtype() == DType::f32 && dim_ > 0 && beta.numel() == dim_,
               name_, ": weight ", shape_str(gamma.shape()), " and bias ", shape_str(beta.shape()),
               " must be f32 vectors of the same length");
    gamma_.reshape({dim_});
    beta_.reshape({dim_});
}

void LayerNorm::forward(DnnlContext& ctx, const float* x, float* y, int64_t rows) const {
    TOLK_CHECK(dim_ > 0, "LayerNorm used before it was built");
    TOLK_CHECK(rows > 0, name_, ": row count must be positive, got ", rows);
    // The weights are arguments, so every layer norm of the same width and epsilon shares one primitive per row
    // count (an encoder-decoder has 14 of them: one each would be 14 bound copies for every new row count).
    auto& impl = ctx.impl();
    OpKey key;
    key.op = dnnl_detail::op_layer_norm;
    key.v[0] = rows;
    key.v[1] = dim_;
    key.v[2] = (x == y);
    key.v[3] = eps_bits_;
    BoundPrimitive* bound = impl.find(key);
    if (!bound) {
        const auto& engine = dnnl_detail::cpu_engine();
        const dnnl::memory::desc md({rows, dim_}, dt::f32, tag::ab);
        const dnnl::memory::desc vec_md({dim_}, dt::f32, tag::a);
        BoundPrimitive b;
        b.description = "layer norm " + name_ + " " + dnnl_detail::md_str(md);
        auto pd = dnnl_detail::make_pd(b.description, [&] {
            return dnnl::layer_normalization_forward::primitive_desc(
                dnnl::layer_normalization_forward::desc(
                    dnnl::prop_kind::forward_inference, md, eps_,
                    dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift),
                dnnl_detail::with_user_scratchpad(), engine);
        });
        b.impl = pd.impl_info_str();
        b.scratchpad = pd.scratchpad_desc();
        b.primitive = dnnl::layer_normalization_forward(pd);
        dnnl::memory src(md, engine, nullptr);
        b.args = {{DNNL_ARG_SRC, src},
                  {DNNL_ARG_DST, x == y ? src : dnnl::memory(md, engine, nullptr)},
                  {DNNL_ARG_SCALE, dnnl::memory(vec_md, engine, nullptr)},
                  {DNNL_ARG_SHIFT, dnnl::memory(vec_md, engine, nullptr)}};
        bound = &impl.insert(key, std::move(b));
    }
    bound->set(DNNL_ARG_SRC, x);
    bound->set(DNNL_ARG_DST, y);
    bound->set(DNNL_ARG_SCALE, gamma_.f32());
    bound->set(DNNL_ARG_SHIFT, beta_.f32());
    impl.execute(*bound);
}

}  // namespace tolk
