// Translator: lines of text -> sentences -> token ids -> length-sorted batches translated by a pool of workers
// (one TranslationSession each, one shared TranslationEngine) -> translations rejoined per line, in input order.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "pipeline/batching.h"
#include "pipeline/engine.h"
#include "pipeline/sentence_cache.h"

namespace tolk {

class SentenceSplitter;

struct TranslatorOptions {
    BatchLimits limits;             // token budget and row cap per batch
    int workers = 1;                // batches translated in parallel, each by its own session
    int threads = 0;                // threads per session (0: the engine's default)
    bool split_sentences = true;    // false: each line is translated as one sentence
    std::string source_language = "en";  // selects ICU's abbreviation list for sentence splitting
    // Memory for translations of segments already seen (exact token ids), so that a repeated sentence is
    // translated once per job; 0: no cache and no de-duplication (every segment goes to the model).
    size_t cache_bytes = size_t{64} << 20;
};

// The translation of one input line.
struct LineTranslation {
    // n-best translations of the whole line, best first. With several sentences, hypothesis k joins each
    // sentence's k-th hypothesis (or its last one when it has fewer) and scores the mean of their scores.
    // An empty input line has one empty hypothesis with score 0.
    std::vector<SegmentHypothesis> nbest;
    int sentences = 0;           // sentences the line was split into
    int64_t source_tokens = 0;   // source tokens, </s> of each segment included
    bool failed = false;         // some segment could not be translated: the translation is empty
    bool complete = false;       // false only when translate() was cancelled before the line was done
};

struct TranslatorStats {
    int64_t lines = 0;
    int64_t sentences = 0;      // segments translated (a cut sentence counts once per piece)
    int64_t source_tokens = 0;
    int64_t target_tokens = 0;  // tokens of the best hypotheses
    int64_t reused = 0;         // segments not translated but served from the cache or a repeat in the same call
};

struct TranslateHooks {
    // A warning about line `line` (index into the lines passed to translate()).
    std::function<void(size_t line, const std::string& message)> warn;
    // Checked before each batch starts; once true, translate() returns with the remaining lines incomplete.
    const std::atomic<bool>* cancel = nullptr;
    // Called on the calling thread about every `tick_ms` while batches are in flight (progress display).
    std::function<void()> tick;
    int tick_ms = 200;
};

class Translator {
public:
    Translator(const TranslationEngine& engine, TranslatorOptions options);
    ~Translator();
    Translator(const Translator&) = delete;
    Translator& operator=(const Translator&) = delete;

    // `lines`: valid UTF-8 (see sanitize_utf8), without line terminators. Returns one result per line, in order.
    // Throws only when no session can be created; a segment whose batch fails is retried alone, and a
    // segment that still fails leaves its line empty, failed, with a warning.
    std::vector<LineTranslation> translate(const std::vector<std::string>& lines, const TranslateHooks& hooks = {});

    // Totals over every translate() call so far; safe to read from the tick hook.
    TranslatorStats stats() const;
    // Fraction of the segments of the translate() call in progress that are done (1 when idle); for progress.
    double call_progress() const;

    const TranslatorOptions& options() const { return options_; }

private:
    class WorkerPool;
    const TranslationEngine& engine_;
    TranslatorOptions options_;
    std::unique_ptr<SentenceSplitter> splitter_;
    std::unique_ptr<WorkerPool> pool_;
    SentenceCache cache_;  // touched only by the thread calling translate()
    std::atomic<int64_t> lines_{0}, sentences_{0}, source_tokens_{0}, target_tokens_{0}, reused_{0};
    std::atomic<int64_t> call_segments_{0}, call_done_{0};
};

}  // namespace tolk
