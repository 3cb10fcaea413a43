// Loading a Marian LayerNorm (<name>.weight, <name>.bias) with the epsilon every Marian block uses.
#pragma once

#include <string>

#include "dnnl/layer_norm.h"
#include "model/weights.h"

namespace tolk {

// transformers' Marian layers use nn.LayerNorm's default epsilon.
inline constexpr float marian_layer_norm_eps = 1e-5f;

inline LayerNorm load_layer_norm(const WeightStore& weights, const std::string& name) {
    return LayerNorm(weights.load(name + ".weight"), weights.load(name + ".bias"), marian_layer_norm_eps, name);
}

}  // namespace tolk
