// SentenceCache: translations of source segments already translated in this job, keyed by their exact token
// ids, so that a repeated sentence (boilerplate, subtitles, UI strings) is translated once. Bounded in bytes,
// least recently used entries evicted first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "pipeline/engine.h"

namespace tolk {

class SentenceCache {
public:
    // `max_bytes`: approximate memory bound over keys and stored hypotheses; 0 disables the cache.
    explicit SentenceCache(size_t max_bytes) : max_bytes_(max_bytes) {}

    bool enabled() const { return max_bytes_ > 0; }
    // The stored n-best list for these source ids, or nullptr; a hit makes the entry the most recent one.
    // The pointer stays valid until the next insert().
    const std::vector<SegmentHypothesis>* find(const std::vector<int32_t>& ids);
    // Stores (or refreshes) the n-best list of `ids`, evicting the least recently used entries over the bound.
    // An entry larger than the whole bound is not stored.
    void insert(const std::vector<int32_t>& ids, const std::vector<SegmentHypothesis>& nbest);

    size_t size() const { return entries_.size(); }
    size_t bytes() const { return bytes_; }

private:
    struct Entry {
        std::string key;  // the ids' bytes
        std::vector<SegmentHypothesis> nbest;
        size_t bytes = 0;
    };
    static std::string key_of(const std::vector<int32_t>& ids);

    size_t max_bytes_;
    size_t bytes_ = 0;
    std::list<Entry> entries_;  // most recently used first
    std::unordered_map<std::string_view, std::list<Entry>::iterator> index_;  // views into Entry::key
};

}  // namespace tolk
