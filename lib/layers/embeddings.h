// Embeddings: token vectors (times sqrt(d_model) when the config scales them) plus sinusoidal positions, for one
// stack (encoder or decoder). The token table may be shared with the other stack.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/tensor.h"

namespace tolk {

class Embeddings {
public:
    Embeddings() = default;
    // table: [vocab_size, d_model]; positions: [n_positions, d_model]; `name` names the table in errors.
    Embeddings(std::shared_ptr<const Tensor> table, std::shared_ptr<const Tensor> positions, float scale,
               std::string name);

    // out[d_model] = table[id] * scale + positions[position]. Throws naming the table for an id or position out
    // of range.
    void embed(int32_t id, int64_t position, float* out) const;

    int64_t vocab_size() const { return vocab_size_; }
    int64_t n_positions() const { return n_positions_; }
    int64_t d_model() const { return d_model_; }

private:
    std::shared_ptr<const Tensor> table_;      // [vocab_size, d_model]
    std::shared_ptr<const Tensor> positions_;  // [n_positions, d_model]
    float scale_ = 1.0f;
    int64_t vocab_size_ = 0;
    int64_t n_positions_ = 0;
    int64_t d_model_ = 0;
    std::string name_;
};

}  // namespace tolk
