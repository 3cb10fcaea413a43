// Length-sorted batching: groups source segments into batches under a padded-token budget and a row cap.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

namespace tolk {

struct BatchLimits {
    int max_batch_tokens = 4096;  // most padded source tokens per batch: rows x longest row
    int batch_size = 32;          // most rows per batch
};

// Splits segments 0..lengths.size()-1 (lengths in tokens) into batches. Segments are sorted by length first
// (ties by index) so that each batch holds sequences of similar length: a batch costs rows x its longest row,
// and mixing a 5-token with a 200-token sentence would pay 195 padding positions per short row.
// A batch grows while rows x longest <= max_batch_tokens and rows <= batch_size; a segment longer than the
// budget on its own gets a batch of its own. Batches come longest first, so that workers pulling from a
// queue start the expensive ones early and finish together (longest-processing-time-first scheduling).
std::vector<std::vector<size_t>> plan_batches(std::span<const int> lengths, const BatchLimits& limits);

}  // namespace tolk
