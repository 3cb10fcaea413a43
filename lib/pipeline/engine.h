// The narrow interface the corpus pipeline translates through: source sentence -> token ids (shared, thread-safe)
// and a batch of token id sequences -> n-best translations (one session per worker thread).
// MarianEngine (marian_engine.h) implements it on the real model; tests implement fakes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace tolk {

// One translation of one source segment.
struct SegmentHypothesis {
    std::string text;                 // detokenized target text
    float score = 0.0f;               // the search's score (see Hypothesis in decode/options.h)
    std::vector<std::string> tokens;  // target pieces, only filled when the engine was asked for them
    int64_t n_tokens = 0;             // generated target tokens (</s> included when the hypothesis ended)
};

// Thrown by TranslationSession::translate when a batch of several segments needs more decoder memory than the
// session allows; translating the batch in smaller parts gives the same translations.
class BatchTooLarge : public Error {
public:
    using Error::Error;
};

// Per-worker mutable state (K/V caches, scratch). Used by one thread at a time.
class TranslationSession {
public:
    virtual ~TranslationSession() = default;
    // src_ids: a batch of source sequences, each ending with </s> and no longer than max_source_tokens().
    // Returns, for each sequence, its n-best hypotheses best first (at least one).
    virtual std::vector<std::vector<SegmentHypothesis>> translate(
        const std::vector<std::vector<int32_t>>& src_ids) = 0;
};

// Immutable, shared by all workers.
class TranslationEngine {
public:
    virtual ~TranslationEngine() = default;
    // Source token ids of one sentence, ending with </s>. Thread-safe.
    virtual std::vector<int32_t> encode(std::string_view sentence) const = 0;
    // The end-of-sentence id that encode() appends (pieces cut from a long sentence get it again).
    virtual int32_t eos_id() const = 0;
    // Longest source sequence (</s> included) the model can take: its number of positions.
    virtual int max_source_tokens() const = 0;
    // A new session whose work runs on `threads` threads (0: the library's default). Called from the thread
    // that will use the session.
    virtual std::unique_ptr<TranslationSession> new_session(int threads) const = 0;
};

}  // namespace tolk
