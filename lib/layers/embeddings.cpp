// Token embedding lookup with the embedding scale and the position table added.
#include "layers/embeddings.h"

namespace tolk {

Embeddings::Embeddings(std::shared_ptr<const Tensor> table, std::shared_ptr<const Tensor> positions, float scale,
                       std::string name)
    : table_(std::move(table)), positions_(std::move(positions)), scale_(scale), name_(std::move(name)) {
    TOLK_CHECK(table_ && table_->rank() == 2 && table_->dtype() == DType::f32, name_,
               ": embedding table must be a 2-D f32 tensor");
    TOLK_CHECK(positions_ && positions_->rank() == 2 && positions_->dim(1) == table_->dim(1), name_,
               ": position table ", positions_ ? shape_str(positions_->shape()) : std::string("(none)"),
               " does not match the embedding width ", table_->dim(1));
    vocab_size_ = table_->dim(0);
    d_model_ = table_->dim(1);
    n_positions_ = positions_->dim(0);
}

void Embeddings::embed(int32_t id, int64_t position, float* out) const {
    TOLK_CHECK(id >= 0 && id < vocab_size_, name_, ": token id ", id, " is outside the vocabulary [0, ",
               vocab_size_, ")");
    TOLK_CHECK(position >= 0 && position < n_positions_, name_, ": position ", position,
               " is past max_position_embeddings (", n_positions_, ")");
    const float* token = table_->f32() + static_cast<int64_t>(id) * d_model_;
    const float* pos = positions_->f32() + position * d_model_;
    // Rounded as transformers does it: the scaled embedding is a float tensor before the positions are added.
    for (int64_t i = 0; i < d_model_; ++i) out[i] = token[i] * scale_ + pos[i];
}

}  // namespace tolk
