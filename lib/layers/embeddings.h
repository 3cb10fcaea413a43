// Embeddings: token vectors (times sqrt(d_model) when the config scales them) plus sinusoidal positions, for one
// stack (encoder or decoder). The token table may be shared with the other stack.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <vector>

#include "core/tensor.h"
#include "dnnl/compute_type.h"
#include "dnnl/linear.h"

namespace tolk {

// A token table kept in the model's compute precision: f32 (exact), bf16, or s8 rows with one scale per row
// (a quarter of the memory; the int8 compute types already round every projection input the same way).
class EmbeddingTable {
public:
    // table: [vocab_size, d_model] f32 (kept as it is for f32, converted otherwise).
    EmbeddingTable(Tensor table, MatmulType type);
    // An f32 table read in place from a tied output projection's packed weights (rows: [vocab_size] by
    // [d_model] offsets), so the vocabulary is in memory once.
    EmbeddingTable(Linear::PackedRows rows, int64_t vocab_size, int64_t d_model);
    // out[i] = table[id][i] * scale + add[i] for i < d_model (id must be in range).
    void scaled_row_plus(int32_t id, float scale, const float* add, float* out) const;
    int64_t vocab_size() const { return vocab_size_; }
    int64_t d_model() const { return d_model_; }
    std::size_t bytes() const;

private:
    MatmulType type_;
    int64_t vocab_size_ = 0;
    int64_t d_model_ = 0;
    Tensor f32_;                  // [vocab_size, d_model]
    Linear::PackedRows packed_;   // or the rows of a tied output projection's packed weights
    std::vector<uint16_t> bf16_;  // [vocab_size, d_model]
    std::vector<int8_t> s8_;      // [vocab_size, d_model]
    std::vector<float> scales_;   // [vocab_size]: s8 row scales
};

class Embeddings {
public:
    Embeddings() = default;
    // table: [vocab_size, d_model]; positions: [n_positions, d_model]; `name` names the table in errors.
    Embeddings(std::shared_ptr<const EmbeddingTable> table, std::shared_ptr<const Tensor> positions, float scale,
               std::string name);

    // out[d_model] = table[id] * scale + positions[position]. Throws naming the table for an id or position out
    // of range.
    void embed(int32_t id, int64_t position, float* out) const;

    int64_t vocab_size() const { return vocab_size_; }
    int64_t n_positions() const { return n_positions_; }
    int64_t d_model() const { return d_model_; }

private:
    std::shared_ptr<const EmbeddingTable> table_;  // [vocab_size, d_model]
    std::shared_ptr<const Tensor> positions_;  // [n_positions, d_model]
    float scale_ = 1.0f;
    int64_t vocab_size_ = 0;
    int64_t n_positions_ = 0;
    int64_t d_model_ = 0;
    std::string name_;
};

}  // namespace tolk
