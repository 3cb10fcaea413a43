// Length-sorted batch planning (see batching.h).
#include "pipeline/batching.h"

#include <algorithm>
#include <cstdint>
#include <numeric>

#include "core/error.h"

namespace tolk {

std::vector<std::vector<size_t>> plan_batches(std::span<const int> lengths, const BatchLimits& limits) {
    TOLK_CHECK(limits.max_batch_tokens > 0, "--max-batch-tokens must be positive, got ", limits.max_batch_tokens);
    TOLK_CHECK(limits.batch_size > 0, "--batch-size must be positive, got ", limits.batch_size);
    std::vector<size_t> order(lengths.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return lengths[a] < lengths[b]; });

    std::vector<std::vector<size_t>> batches;
    std::vector<size_t> current;
    for (const size_t index : order) {
        // Ascending order: the newcomer is the longest row of the batch it joins.
        const int64_t longest = std::max(lengths[index], 1);
        const auto rows = static_cast<int64_t>(current.size()) + 1;
        if (!current.empty() && (rows > limits.batch_size || rows * longest > limits.max_batch_tokens)) {
            batches.push_back(std::move(current));
            current.clear();
        }
        current.push_back(index);
    }
    if (!current.empty()) batches.push_back(std::move(current));
    std::reverse(batches.begin(), batches.end());
    return batches;
}

}  // namespace tolk
