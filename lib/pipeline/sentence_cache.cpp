// Bounded LRU of segment translations (see sentence_cache.h).
#include "pipeline/sentence_cache.h"

#include <cstring>

namespace tolk {

namespace {

// What an entry costs beyond its strings' characters: list node, hash node, vector and string headers. An
// estimate: the bound is about memory, not an exact allocator count.
constexpr size_t kEntryOverhead = 160;
constexpr size_t kHypothesisOverhead = 96;

size_t bytes_of(const std::string& key, const std::vector<SegmentHypothesis>& nbest) {
    size_t bytes = kEntryOverhead + key.size();
    for (const auto& h : nbest) {
        bytes += kHypothesisOverhead + h.text.size();
        for (const auto& t : h.tokens) bytes += sizeof(std::string) + t.size();
    }
    return bytes;
}

}  // namespace

std::string SentenceCache::key_of(const std::vector<int32_t>& ids) {
    std::string key(ids.size() * sizeof(int32_t), '\0');
    if (!ids.empty()) std::memcpy(key.data(), ids.data(), key.size());
    return key;
}

const std::vector<SegmentHypothesis>* SentenceCache::find(const std::vector<int32_t>& ids) {
    if (!enabled()) return nullptr;
    const std::string key = key_of(ids);
    const auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    entries_.splice(entries_.begin(), entries_, it->second);  // iterators and the key's storage stay valid
    return &it->second->nbest;
}

void SentenceCache::insert(const std::vector<int32_t>& ids, const std::vector<SegmentHypothesis>& nbest) {
    if (!enabled()) return;
    std::string key = key_of(ids);
    const size_t bytes = bytes_of(key, nbest);
    if (bytes > max_bytes_) return;
    if (const auto it = index_.find(key); it != index_.end()) {
        bytes_ -= it->second->bytes;
        entries_.erase(it->second);
        index_.erase(it);
    }
    while (!entries_.empty() && bytes_ + bytes > max_bytes_) {
        const Entry& last = entries_.back();
        bytes_ -= last.bytes;
        index_.erase(std::string_view(last.key));
        entries_.pop_back();
    }
    entries_.push_front(Entry{std::move(key), nbest, bytes});
    index_.emplace(std::string_view(entries_.front().key), entries_.begin());
    bytes_ += bytes;
}

}  // namespace tolk
