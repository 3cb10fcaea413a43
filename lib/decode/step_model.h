// StepModel: the incremental decoder interface a search needs from a model.
// MarianSession (lib/layers) implements it; tests implement small fakes.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace tolk {

// What a search needs from a model; MarianSession implements it, tests implement fakes.
class StepModel {
public:
    virtual ~StepModel() = default;
    // Encodes a batch of source sentences (each ends with </s>, lengths may differ) and sets up `beam` decoder
    // rows per sentence: row r decodes sentence r / beam. Resets all decoder state (step 0 comes next).
    virtual void start(const std::vector<std::vector<int32_t>>& src_ids, int beam) = 0;
    // One decoder step: one input token per live row, all rows at the same position. Returns logits
    // [rows, vocab_size] (row-major), valid until the next call.
    virtual const float* step(std::span<const int32_t> tokens) = 0;
    // New row i continues old row src_rows[i] (self-attention cache and source sentence). src_rows may be
    // shorter than the current row count (rows dropped when sentences finish) and may repeat rows (beams).
    virtual void reorder(std::span<const int32_t> src_rows) = 0;
    virtual int vocab_size() const = 0;
};

}  // namespace tolk
