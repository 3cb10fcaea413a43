// Translator: sentence splitting, long-sentence cutting, batching, the worker pool, and reassembly per line.
#include "pipeline/translator.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <exception>
#include <mutex>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_map>

#include "core/error.h"
#include "text/sentence_splitter.h"

namespace tolk {

// Threads that each own one TranslationSession, created lazily on the worker's own thread (sessions hold
// per-thread state such as oneDNN streams). Jobs receive the session, or the error that prevented creating it.
class Translator::WorkerPool {
public:
    using Job = std::function<void(TranslationSession* session, const std::exception_ptr& session_error)>;

    WorkerPool(const TranslationEngine& engine, int workers, int threads) : engine_(engine) {
        // A thread that cannot start (ulimit -u, memory) must not leave the others running: a std::thread
        // destroyed while joinable terminates the process.
        for (int i = 0; i < workers; ++i) {
            try {
                threads_.emplace_back([this, threads] { run(threads); });
            } catch (const std::system_error& e) {
                stop_and_join();
                TOLK_FAIL("cannot start worker thread ", i + 1, " of ", workers, ": ", e.what(),
                          " (lower --workers or raise the process limit, ulimit -u)");
            }
        }
    }

    ~WorkerPool() { stop_and_join(); }

    void stop_and_join() {
        {
            std::lock_guard lock(mutex_);
            stop_ = true;
        }
        cv_.notify_all();
        for (auto& t : threads_)
            if (t.joinable()) t.join();
    }

    void submit(Job job) {
        {
            std::lock_guard lock(mutex_);
            queue_.push_back(std::move(job));
        }
        cv_.notify_one();
    }

private:
    void run(int threads) {
        std::unique_ptr<TranslationSession> session;
        std::exception_ptr session_error;
        for (;;) {
            Job job;
            {
                std::unique_lock lock(mutex_);
                cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
                if (queue_.empty()) return;
                job = std::move(queue_.front());
                queue_.pop_front();
            }
            if (!session && !session_error) {
                try {
                    session = engine_.new_session(threads);
                } catch (...) {
                    session_error = std::current_exception();
                }
            }
            job(session.get(), session_error);
        }
    }

    const TranslationEngine& engine_;
    std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<Job> queue_;
    bool stop_ = false;
    std::vector<std::thread> threads_;
};

Translator::Translator(const TranslationEngine& engine, TranslatorOptions options)
    : engine_(engine), options_(std::move(options)), cache_(options_.cache_bytes) {
    TOLK_CHECK(options_.workers > 0, "--workers must be positive, got ", options_.workers);
    TOLK_CHECK(options_.threads >= 0, "--threads must not be negative, got ", options_.threads);
    TOLK_CHECK(options_.limits.max_batch_tokens > 0, "--max-batch-tokens must be positive, got ",
               options_.limits.max_batch_tokens);
    TOLK_CHECK(options_.limits.batch_size > 0, "--batch-size must be positive, got ", options_.limits.batch_size);
    if (options_.split_sentences) splitter_ = std::make_unique<SentenceSplitter>(options_.source_language);
    pool_ = std::make_unique<WorkerPool>(engine_, options_.workers, options_.threads);
}

Translator::~Translator() = default;

TranslatorStats Translator::stats() const {
    return {lines_.load(), sentences_.load(), source_tokens_.load(), target_tokens_.load(), reused_.load()};
}

double Translator::call_progress() const {
    const int64_t total = call_segments_.load();
    return total > 0 ? std::min(1.0, static_cast<double>(call_done_.load()) / static_cast<double>(total)) : 1.0;
}

namespace {

// One unit the model translates: a sentence, or a piece of a sentence too long for the model's positions.
struct Segment {
    size_t line = 0;
    int sentence = 0;
    std::vector<int32_t> ids;  // ends with </s>
};

// Cuts `ids` (ending with </s>) into the fewest near-equal pieces of at most `max_tokens` tokens, each ending
// with </s>. Equal pieces rather than full ones plus a stub, so no piece loses all of its context.
std::vector<std::vector<int32_t>> cut_ids(const std::vector<int32_t>& ids, int max_tokens, int32_t eos) {
    const size_t body = ids.empty() ? 0 : ids.size() - 1;  // tokens before </s>
    const size_t room = static_cast<size_t>(std::max(max_tokens, 2)) - 1;
    const size_t pieces = (body + room - 1) / room;
    std::vector<std::vector<int32_t>> out;
    size_t begin = 0;
    for (size_t p = 0; p < pieces; ++p) {
        const size_t end = body * (p + 1) / pieces;
        std::vector<int32_t> piece(ids.begin() + static_cast<std::ptrdiff_t>(begin),
                                   ids.begin() + static_cast<std::ptrdiff_t>(end));
        piece.push_back(eos);
        out.push_back(std::move(piece));
        begin = end;
    }
    return out;
}

// Joins the k-th hypothesis of each piece (its last one when it has fewer).
SegmentHypothesis join_hypotheses(const std::vector<const std::vector<SegmentHypothesis>*>& parts,
                                  const std::vector<std::string>& separators, size_t k) {
    SegmentHypothesis joined;
    double score = 0.0;
    for (size_t i = 0; i < parts.size(); ++i) {
        const auto& list = *parts[i];
        const SegmentHypothesis& h = list[std::min(k, list.size() - 1)];
        if (i > 0) joined.text += separators[i - 1];
        joined.text += h.text;
        joined.tokens.insert(joined.tokens.end(), h.tokens.begin(), h.tokens.end());
        joined.n_tokens += h.n_tokens;
        score += h.score;
    }
    joined.score = parts.empty() ? 0.0f : static_cast<float>(score / static_cast<double>(parts.size()));
    return joined;
}

}  // namespace

std::vector<LineTranslation> Translator::translate(const std::vector<std::string>& lines,
                                                   const TranslateHooks& hooks) {
    const auto warn = [&](size_t line, const std::string& message) {
        if (hooks.warn) hooks.warn(line, message);
    };
    std::vector<LineTranslation> results(lines.size());

    // 1. Lines -> sentences -> segments of token ids.
    std::vector<Segment> segments;
    std::vector<std::vector<std::string>> separators(lines.size());  // per line: between consecutive segments
    std::vector<size_t> first_segment(lines.size() + 1, 0);
    const int max_tokens = engine_.max_source_tokens();
    for (size_t li = 0; li < lines.size(); ++li) {
        first_segment[li] = segments.size();
        std::vector<Sentence> sentences;
        if (splitter_) {
            sentences = splitter_->split(lines[li]);
        } else if (const std::string_view text = trim_spaces(lines[li]); !text.empty()) {
            sentences.push_back({std::string(text), ""});
        }
        results[li].sentences = static_cast<int>(sentences.size());
        std::vector<Segment> line_segments;
        try {
            for (size_t si = 0; si < sentences.size(); ++si) {
                std::vector<int32_t> ids = engine_.encode(sentences[si].text);
                results[li].source_tokens += static_cast<int64_t>(ids.size());
                if (static_cast<int>(ids.size()) <= max_tokens) {
                    line_segments.push_back({li, static_cast<int>(si), std::move(ids)});
                } else {
                    auto pieces = cut_ids(ids, max_tokens, engine_.eos_id());
                    warn(li, "sentence " + std::to_string(si + 1) + " has " + std::to_string(ids.size()) +
                                 " tokens, more than the model's " + std::to_string(max_tokens) +
                                 " positions; translating it in " + std::to_string(pieces.size()) + " pieces");
                    for (size_t p = 0; p < pieces.size(); ++p) {
                        if (p > 0) separators[li].push_back(" ");
                        line_segments.push_back({li, static_cast<int>(si), std::move(pieces[p])});
                    }
                }
                if (si + 1 < sentences.size()) separators[li].push_back(sentences[si].separator);
            }
        } catch (const std::exception& e) {
            warn(li, std::string("cannot be tokenized (") + e.what() + "); writing an empty line");
            results[li].failed = true;
            line_segments.clear();
            separators[li].clear();
        }
        for (auto& s : line_segments) segments.push_back(std::move(s));
    }
    first_segment[lines.size()] = segments.size();

    // 2. Each distinct segment once: a segment already in the cache is answered from it, and a repeat within
    // this call waits for its first occurrence. The model's output for a sequence does not depend on its batch,
    // so the reused translation is the one the repeat would have got.
    std::vector<std::vector<SegmentHypothesis>> outputs(segments.size());
    std::vector<std::string> errors(segments.size());
    std::vector<char> done(segments.size(), 0);
    constexpr size_t kNone = static_cast<size_t>(-1);
    std::vector<size_t> same_as(segments.size(), kNone);  // a repeat: the index of its first occurrence
    std::vector<size_t> unique;                            // segments that go to the model
    int64_t reused = 0;
    if (cache_.enabled()) {
        std::unordered_map<std::string_view, size_t> first;  // ids as bytes -> first occurrence in this call
        for (size_t i = 0; i < segments.size(); ++i) {
            if (const auto* hit = cache_.find(segments[i].ids)) {
                outputs[i] = *hit;
                done[i] = 1;
                ++reused;
                continue;
            }
            const std::string_view key(reinterpret_cast<const char*>(segments[i].ids.data()),
                                       segments[i].ids.size() * sizeof(int32_t));
            const auto [it, added] = first.emplace(key, i);
            if (added) {
                unique.push_back(i);
            } else {
                same_as[i] = it->second;
            }
        }
    } else {
        unique.resize(segments.size());
        for (size_t i = 0; i < segments.size(); ++i) unique[i] = i;
    }

    // 3. Batches of the distinct segments, translated by the pool. Every segment slot is written by one job.
    std::vector<int> lengths(unique.size());
    for (size_t u = 0; u < unique.size(); ++u) lengths[u] = static_cast<int>(segments[unique[u]].ids.size());
    auto batches = plan_batches(lengths, options_.limits);
    for (auto& batch : batches)
        for (size_t& index : batch) index = unique[index];
    call_done_ = 0;
    call_segments_ = static_cast<int64_t>(unique.size());
    std::mutex wait_mutex;
    std::condition_variable wait_cv;
    size_t remaining = batches.size();
    std::exception_ptr fatal;

    const auto run_batch = [&](const std::vector<size_t>& batch, TranslationSession* session,
                               const std::exception_ptr& session_error) {
        if (!session) {
            std::lock_guard lock(wait_mutex);
            if (!fatal) fatal = session_error;
            return;
        }
        if (hooks.cancel && hooks.cancel->load()) return;
        const auto translate_some = [&](const std::vector<size_t>& which) {
            std::vector<std::vector<int32_t>> src_ids;
            src_ids.reserve(which.size());
            for (const size_t i : which) src_ids.push_back(segments[i].ids);
            auto hyps = session->translate(src_ids);
            TOLK_CHECK(hyps.size() == which.size(), "translation returned ", hyps.size(), " results for ",
                       which.size(), " sentences");
            for (size_t j = 0; j < which.size(); ++j) {
                TOLK_CHECK(!hyps[j].empty(), "translation returned no hypothesis");
                outputs[which[j]] = std::move(hyps[j]);
                done[which[j]] = 1;
            }
        };
        // A batch whose decoder outgrows the session's budget (outputs far longer than their sources, as junk
        // input makes) runs again as two halves, recursively; the translations do not depend on the batch.
        const std::function<void(const std::vector<size_t>&)> translate_split = [&](const std::vector<size_t>& which) {
            try {
                translate_some(which);
            } catch (const BatchTooLarge&) {
                if (which.size() < 2) throw;
                const auto middle = which.begin() + static_cast<std::ptrdiff_t>(which.size() / 2);
                translate_split(std::vector<size_t>(which.begin(), middle));
                translate_split(std::vector<size_t>(middle, which.end()));
            }
        };
        try {
            translate_split(batch);
        } catch (const std::exception& batch_error) {
            // Find the culprit: retry one by one, so that one bad sentence costs only its own line.
            for (const size_t i : batch) {
                if (batch.size() == 1) {
                    errors[i] = batch_error.what();
                    break;
                }
                try {
                    translate_some({i});
                } catch (const std::exception& e) {
                    errors[i] = e.what();
                }
            }
        }
        int64_t source = 0, target = 0, translated = 0;
        for (const size_t i : batch) {
            if (!done[i]) continue;
            ++translated;
            source += static_cast<int64_t>(segments[i].ids.size());
            target += outputs[i].front().n_tokens;
        }
        sentences_ += translated;
        call_done_ += static_cast<int64_t>(batch.size());
        source_tokens_ += source;
        target_tokens_ += target;
    };

    for (const auto& batch : batches) {
        pool_->submit([&, batch](TranslationSession* session, const std::exception_ptr& error) {
            run_batch(batch, session, error);
            std::lock_guard lock(wait_mutex);
            --remaining;
            wait_cv.notify_all();
        });
    }
    {
        std::unique_lock lock(wait_mutex);
        while (remaining > 0) {
            if (wait_cv.wait_for(lock, std::chrono::milliseconds(std::max(hooks.tick_ms, 1)),
                                 [&] { return remaining == 0; }))
                break;
            if (hooks.tick) {
                lock.unlock();
                hooks.tick();
                lock.lock();
            }
        }
    }
    if (fatal) std::rethrow_exception(fatal);

    // Repeats take their first occurrence's result; new translations go into the cache.
    for (const size_t i : unique)
        if (done[i] && errors[i].empty()) cache_.insert(segments[i].ids, outputs[i]);
    for (size_t i = 0; i < segments.size(); ++i) {
        const size_t original = same_as[i];
        if (original == kNone) continue;
        done[i] = done[original];
        errors[i] = errors[original];
        if (done[i]) {
            outputs[i] = outputs[original];
            ++reused;
        }
    }
    reused_ += reused;

    // 4. Reassemble each line from its segments, in input order.
    int64_t complete_lines = 0;
    for (size_t li = 0; li < lines.size(); ++li) {
        LineTranslation& result = results[li];
        const size_t begin = first_segment[li], end = first_segment[li + 1];
        bool complete = true;
        std::string error;
        for (size_t i = begin; i < end; ++i) {
            if (!errors[i].empty() && error.empty()) error = errors[i];
            if (!done[i] && errors[i].empty()) complete = false;
        }
        result.complete = complete;
        if (!complete) continue;
        ++complete_lines;
        if (!error.empty() || result.failed) {
            if (!error.empty()) warn(li, "cannot be translated (" + error + "); writing an empty line");
            result.failed = true;
            result.nbest.assign(1, SegmentHypothesis{});
            continue;
        }
        if (begin == end) {
            result.nbest.assign(1, SegmentHypothesis{});
            continue;
        }
        std::vector<const std::vector<SegmentHypothesis>*> parts;
        size_t n = 0;
        for (size_t i = begin; i < end; ++i) {
            parts.push_back(&outputs[i]);
            n = std::max(n, outputs[i].size());
        }
        for (size_t k = 0; k < n; ++k) result.nbest.push_back(join_hypotheses(parts, separators[li], k));
    }
    lines_ += complete_lines;
    return results;
}

}  // namespace tolk
