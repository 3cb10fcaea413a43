// Token embedding lookup with the embedding scale and the position table added; the table in f32, bf16 or s8.
#include "layers/embeddings.h"

#include <bit>
#include <cstring>

#include "dnnl/quantize.h"

namespace tolk {

EmbeddingTable::EmbeddingTable(Tensor table, MatmulType type) : type_(type) {
    TOLK_CHECK(table.rank() == 2 && table.dtype() == DType::f32, "embedding table must be a 2-D f32 tensor, got ",
               shape_str(table.shape()));
    vocab_size_ = table.dim(0);
    d_model_ = table.dim(1);
    const auto n = static_cast<std::size_t>(table.numel());
    switch (type_) {
        case MatmulType::f32: f32_ = std::move(table); break;
        case MatmulType::bf16:
            bf16_.resize(n);
            to_bf16(table.f32(), table.numel(), bf16_.data());
            break;
        case MatmulType::s8:
            s8_.resize(n);
            scales_.resize(static_cast<std::size_t>(vocab_size_));
            quantize_rows_s8(table.f32(), vocab_size_, d_model_, s8_.data(), scales_.data());
            break;
    }
}

EmbeddingTable::EmbeddingTable(Linear::PackedRows rows, int64_t vocab_size, int64_t d_model)
    : type_(MatmulType::f32), vocab_size_(vocab_size), d_model_(d_model), packed_(std::move(rows)) {
    TOLK_CHECK(packed_.data != nullptr && static_cast<int64_t>(packed_.row_offset.size()) == vocab_size_ &&
                   static_cast<int64_t>(packed_.column_offset.size()) == d_model_,
               "embedding table: packed rows do not match [", vocab_size_, ",", d_model_, "]");
}

std::size_t EmbeddingTable::bytes() const {
    return f32_.nbytes() + bf16_.size() * sizeof(uint16_t) + s8_.size() + scales_.size() * sizeof(float);
}

void EmbeddingTable::scaled_row_plus(int32_t id, float scale, const float* add, float* out) const {
    const int64_t at = static_cast<int64_t>(id) * d_model_;
    switch (type_) {
        case MatmulType::f32: {
            // Rounded as transformers does it: the scaled embedding is a float tensor before the positions are added.
            if (packed_.data) {
                const float* token = packed_.data + packed_.row_offset[static_cast<std::size_t>(id)];
                for (int64_t i = 0; i < d_model_; ++i)
                    out[i] = token[packed_.column_offset[static_cast<std::size_t>(i)]] * scale + add[i];
                return;
            }
            const float* token = f32_.f32() + at;
            for (int64_t i = 0; i < d_model_; ++i) out[i] = token[i] * scale + add[i];
            return;
        }
        case MatmulType::bf16: {
            const uint16_t* token = bf16_.data() + at;
            for (int64_t i = 0; i < d_model_; ++i)
                out[i] = std::bit_cast<float>(static_cast<uint32_t>(token[i]) << 16) * scale + add[i];
            return;
        }
        case MatmulType::s8: {
            const int8_t* token = s8_.data() + at;
            const float row_scale = scales_[static_cast<std::size_t>(id)] * scale;
            for (int64_t i = 0; i < d_model_; ++i) out[i] = static_cast<float>(token[i]) * row_scale + add[i];
            return;
        }
    }
}

Embeddings::Embeddings(std::shared_ptr<const EmbeddingTable> table, std::shared_ptr<const Tensor> positions,
                       float scale, std::string name)
    : table_(std::move(table)), positions_(std::move(positions)), scale_(scale), name_(std::move(name)) {
    TOLK_CHECK(table_ != nullptr, name_, ": no embedding table");
    TOLK_CHECK(positions_ && positions_->rank() == 2 && positions_->dim(1) == table_->d_model(), name_,
               ": position table ", positions_ ? shape_str(positions_->shape()) : std::string("(none)"),
               " does not match the embedding width ", table_->d_model());
    vocab_size_ = table_->vocab_size();
    d_model_ = table_->d_model();
    n_positions_ = positions_->dim(0);
}

void Embeddings::embed(int32_t id, int64_t position, float* out) const {
    TOLK_CHECK(id >= 0 && id < vocab_size_, name_, ": token id ", id, " is outside the vocabulary [0, ",
               vocab_size_, ")");
    TOLK_CHECK(position >= 0 && position < n_positions_, name_, ": position ", position,
               " is past max_position_embeddings (", n_positions_, ")");
    table_->scaled_row_plus(id, scale_, positions_->f32() + position * d_model_, out);
}

}  // namespace tolk
