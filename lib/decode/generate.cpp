// Greedy and beam search over a StepModel with the semantics of transformers' generate() for Marian models.
//
// Rules followed (transformers' generation/utils.py, beam_search.py and logits_process.py, read as documentation):
// - The decoder input starts with decoder_start_token_id (Marian: the pad id). max_length counts that start token,
//   so at most max_length - 1 tokens are generated; max_new_tokens, when given, is the limit instead. We also never
//   generate more than max_position_embeddings tokens (the decoder has no position beyond that).
// - Logits processors, as Marian's config sets them up: NoBadWordsLogitsProcessor (bad_words_ids, Marian: [[pad]];
//   a sequence equal to [eos] is ignored, as transformers does) sets banned tokens to -inf at every step;
//   ForcedEOSTokenLogitsProcessor at the last allowed step sets every score to -inf except forced_eos_token_id,
//   which becomes 0 (all transformers versions set it to 0).
// - Greedy (num_beams 1): argmax of the processed logits, ties to the lowest id (torch.argmax); a sentence stops at
//   eos. Transformers returns no greedy score; ours is what a one-beam hypothesis scores, as scripts/tolkpy's
//   reference does: the sum, over the chosen tokens, of the log-probabilities as the beam path computes them
//   (log_softmax of the raw logits, then the processors, so a forced eos adds 0), divided by
//   (generated tokens including eos)^length_penalty.
// - Beam search (BeamSearchScorer, and the vectorised _beam_search that replaced it (PR #35802), which agree on
//   everything below except where noted): log_softmax of the raw logits, then the processors, plus each beam's
//   running score (float32); beams 1.. start at -1e9 so that the first step expands beam 0 only; the top
//   2*num_beams candidates over num_beams*vocab_size per sentence (ties to the lower beam*vocab_size+token index);
//   walking them best first, an eos candidate closes a hypothesis only when it ranks within the first num_beams,
//   any other candidate becomes a running beam until num_beams are running. A closed hypothesis scores
//   sum_logprobs / g^length_penalty, g = generated tokens including eos (later spelling: cur_len -
//   decoder_prompt_len; earlier: the length of the input ids with the start token and without eos, the same
//   number). The finished list keeps the num_beams best (BeamHypotheses.add: a new one enters when the list is not
//   full or it beats the worst; the worst, earliest on ties, leaves).
// - A sentence is done when num_beams hypotheses finished and either early_stopping is true, or (early_stopping
//   false, the default heuristic) the worst finished score >= best / g^length_penalty with g the generated tokens
//   after this step and `best` the best candidate score of the step (BeamSearchScorer: next_scores.max()), or with
//   SearchSettings::stop_on_best_running the best running beam after the step (the vectorised _beam_search:
//   running_beam_scores[:, :1]).
// - When the limit is reached, a sentence not done adds its running beams, scored sum / g^length_penalty with g
//   the generated tokens (finalize's generated_len; the oldest scorer counted the start token too), through the
//   same keep-the-best rule.
// - n-best: the finished list sorted by score, best first (sorted ascending and popped from the end, so among equal
//   scores the later added comes first), up to nbest entries.
#include "decode/generate.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <span>

#include "core/error.h"
#include "decode/row_ops.h"

namespace tolk {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
// Transformers' initial score of beams 1..beam-1: finite, so that they exist but never win the first step.
constexpr float kDeadBeamScore = -1e9f;

// The logits processors as they apply to one row: banned tokens and the forced eos of the last step. Rows are
// never rewritten: the searches compute log_softmax values on the fly and treat banned tokens as -inf.
class TokenRules {
public:
    TokenRules(const SearchSettings& settings, int vocab_size) : settings_(settings) {
        banned_.assign(static_cast<size_t>(vocab_size), 0);
        for (int32_t id : settings.banned_token_ids) {
            if (id != settings.eos_token_id) banned_[static_cast<size_t>(id)] = 1;
        }
    }

    bool forced(int step) const {
        return settings_.forced_eos_token_id >= 0 && step == settings_.max_new_tokens - 1;
    }

    // The tokens multi-token bad words ban on this row: a sequence's last token when the tokens before it end the
    // decoder input. `previous(k)` returns the k-th input token from the end (k = 1: the last one), the start token
    // at k = step + 1 and -1 beyond it. `out` keeps its capacity between rows.
    template <typename Previous>
    void sequence_bans(Previous previous, std::vector<int32_t>& out) const {
        out.clear();
        for (const std::vector<int32_t>& seq : settings_.banned_sequences) {
            const int prefix = static_cast<int>(seq.size()) - 1;
            bool match = true;
            for (int k = 1; k <= prefix && match; ++k) match = previous(k) == seq[static_cast<size_t>(prefix - k)];
            if (match) out.push_back(seq.back());
        }
    }

    bool banned(int32_t token, const std::vector<int32_t>& row_bans) const {
        return banned_[static_cast<size_t>(token)] != 0 ||
               (!row_bans.empty() && std::find(row_bans.begin(), row_bans.end(), token) != row_bans.end());
    }

private:
    const SearchSettings& settings_;
    std::vector<uint8_t> banned_;  // [vocab_size] one-token bad words
};

void check_settings(const SearchSettings& s, int vocab_size) {
    TOLK_CHECK(vocab_size > 0, "decode: model vocab_size must be positive, got ", vocab_size);
    auto check_id = [&](int32_t id, const char* what) {
        TOLK_CHECK(id >= 0 && id < vocab_size, "decode: ", what, " ", id, " is outside the model's vocabulary of ",
                   vocab_size);
    };
    check_id(s.decoder_start_token_id, "decoder_start_token_id");
    check_id(s.eos_token_id, "eos_token_id");
    if (s.forced_eos_token_id >= 0) check_id(s.forced_eos_token_id, "forced_eos_token_id");
    for (int32_t id : s.banned_token_ids) check_id(id, "bad_words_ids token");
    for (const auto& seq : s.banned_sequences) {
        TOLK_CHECK(!seq.empty(), "decode: bad_words_ids has an empty sequence");
        for (int32_t id : seq) check_id(id, "bad_words_ids token");
    }
    TOLK_CHECK(s.beam_size >= 1, "decode: beam size must be at least 1, got ", s.beam_size);
    TOLK_CHECK(s.nbest >= 1 && s.nbest <= s.beam_size, "decode: nbest must be between 1 and the beam size ",
               s.beam_size, ", got ", s.nbest);
    TOLK_CHECK(s.max_new_tokens >= 1, "decode: the generated-token limit must be at least 1, got ", s.max_new_tokens);
}

// ---------------------------------------------------------------------------------------------------------------
// Greedy search: one row per unfinished sentence.

// Argmax over the tokens not banned, ties to the lowest id (the first allowed id when every one is -inf).
int32_t allowed_argmax(const float* x, int vocab_size, const TokenRules& rules, const std::vector<int32_t>& row_bans) {
    int32_t best = -1;
    for (int v = 0; v < vocab_size; ++v) {
        if (rules.banned(v, row_bans)) continue;
        if (best < 0 || x[v] > x[best]) best = v;
    }
    return best < 0 ? 0 : best;
}

std::vector<std::vector<Hypothesis>> greedy_search(StepModel& model, const SearchSettings& settings,
                                                   const std::vector<std::vector<int32_t>>& src_ids) {
    const int batch = static_cast<int>(src_ids.size());
    const int vocab_size = model.vocab_size();
    const TokenRules rules(settings, vocab_size);

    std::vector<std::vector<Hypothesis>> results(static_cast<size_t>(batch), std::vector<Hypothesis>(1));
    for (auto& r : results) r[0].ids.reserve(static_cast<size_t>(settings.max_new_tokens));
    std::vector<double> scores(static_cast<size_t>(batch), 0.0);
    std::vector<int> active(static_cast<size_t>(batch));  // sentence index of each live row, in row order
    for (int i = 0; i < batch; ++i) active[static_cast<size_t>(i)] = i;
    std::vector<int32_t> tokens(static_cast<size_t>(batch), settings.decoder_start_token_id);  // [rows]
    std::vector<int32_t> keep_rows;
    keep_rows.reserve(static_cast<size_t>(batch));
    std::vector<int32_t> row_bans;
    row_bans.reserve(settings.banned_sequences.size());

    model.start(src_ids, 1);
    for (int step = 0; step < settings.max_new_tokens && !active.empty(); ++step) {
        const float* logits = model.step(tokens);  // [rows, vocab_size]
        keep_rows.clear();
        for (size_t row = 0; row < active.size(); ++row) {
            const int sentence = active[row];
            std::vector<int32_t>& ids = results[static_cast<size_t>(sentence)][0].ids;
            auto previous = [&](int k) -> int32_t {
                const int pos = static_cast<int>(ids.size()) - k;
                return pos >= 0 ? ids[static_cast<size_t>(pos)] : (pos == -1 ? settings.decoder_start_token_id : -1);
            };
            const float* x = logits + row * static_cast<size_t>(vocab_size);  // [vocab_size]
            int32_t best = settings.forced_eos_token_id;
            float logprob = 0.0f;  // the forced eos scores 0
            if (!rules.forced(step)) {
                rules.sequence_bans(previous, row_bans);
                const row_ops::RowStats stats = row_ops::row_stats(x, vocab_size);
                // Argmax of the processed logits, ties to the lowest id: the first maximum unless it is banned.
                best = stats.argmax;
                if (best == vocab_size || rules.banned(best, row_bans)) {
                    best = allowed_argmax(x, vocab_size, rules, row_bans);
                }
                logprob = x[best] - stats.lse;
            }
            ids.push_back(best);
            scores[static_cast<size_t>(sentence)] += logprob;
            if (best != settings.eos_token_id) {
                tokens[keep_rows.size()] = best;
                active[keep_rows.size()] = sentence;
                keep_rows.push_back(static_cast<int32_t>(row));
            }
        }
        const size_t rows_before = active.size();
        active.resize(keep_rows.size());
        tokens.resize(keep_rows.size());
        if (!active.empty() && keep_rows.size() != rows_before) model.reorder(keep_rows);
    }
    for (int i = 0; i < batch; ++i) {
        Hypothesis& h = results[static_cast<size_t>(i)][0];
        h.score = static_cast<float>(scores[static_cast<size_t>(i)] /
                                     std::pow(static_cast<double>(h.ids.size()), settings.length_penalty));
    }
    return results;
}

// ---------------------------------------------------------------------------------------------------------------
// Beam search.

// Running beam `beam` after step t continues running beam `parent` after step t - 1 with `token`.
struct BackPointer {
    int32_t parent;
    int32_t token;
};

// A finished hypothesis: running beam `beam` after step `last_step` (-1: the start token alone), plus eos when
// `ended`. `score` is already divided by length^length_penalty.
struct Finished {
    double score;
    int32_t last_step;
    int32_t beam;
    bool ended;
};

struct Candidate {
    float score;    // running score + processed log-probability
    int32_t beam;   // the running beam it extends
    int32_t token;
};

// Keeps the k best candidates in `top` (sorted, best first). Candidates arrive in increasing beam*vocab+token
// order, so keeping the earlier one on equal scores gives the lower index first.
inline void offer(Candidate* top, int& count, int k, float score, int32_t beam, int32_t token) {
    if (count == k && !(score > top[k - 1].score)) return;
    int i = count < k ? count++ : k - 1;
    while (i > 0 && score > top[i - 1].score) {
        top[i] = top[i - 1];
        --i;
    }
    top[i] = Candidate{score, beam, token};
}

struct SentenceBeams {
    std::vector<BackPointer> trail;  // [max_new_tokens, beam]
    std::vector<float> scores;       // [beam] running sums of log-probabilities
    std::vector<Candidate> top;      // [2 * beam] this step's best candidates
    std::vector<Finished> finished;  // at most beam + 1 while adding
    double worst = 1e9;              // BeamHypotheses.worst_score
    bool done = false;
};

class BeamSearch {
public:
    BeamSearch(StepModel& model, const SearchSettings& settings, int batch)
        : model_(model),
          settings_(settings),
          beam_(settings.beam_size),
          vocab_size_(model.vocab_size()),
          rules_(settings, vocab_size_),
          sentences_(static_cast<size_t>(batch)) {
        for (SentenceBeams& s : sentences_) {
            s.trail.resize(static_cast<size_t>(settings.max_new_tokens) * static_cast<size_t>(beam_));
            s.scores.assign(static_cast<size_t>(beam_), kDeadBeamScore);
            s.scores[0] = 0.0f;
            s.top.resize(2 * static_cast<size_t>(beam_));
            s.finished.reserve(static_cast<size_t>(beam_) + 1);
        }
        active_.resize(static_cast<size_t>(batch));
        for (int i = 0; i < batch; ++i) active_[static_cast<size_t>(i)] = i;
        tokens_.assign(static_cast<size_t>(batch), settings.decoder_start_token_id);  // step 0: one row a sentence
        src_rows_.reserve(static_cast<size_t>(batch) * static_cast<size_t>(beam_));
        row_bans_.reserve(settings.banned_sequences.size());
    }

    std::vector<std::vector<Hypothesis>> run(const std::vector<std::vector<int32_t>>& src_ids) {
        // Step 0 feeds every beam of a sentence the same start token, so their logits are the same row: it runs one
        // row per sentence (a quarter of the first step's work at beam 4), each beam reads that row, and the rows
        // split into beams when step 0's survivors are gathered. The model starts with all beam rows (its buffers
        // sized for them) and drops to one row per sentence before anything is written.
        model_.start(src_ids, beam_);
        if (beam_ > 1) {
            src_rows_.clear();
            for (size_t k = 0; k < active_.size(); ++k) src_rows_.push_back(static_cast<int32_t>(k * beam_));
            model_.reorder(src_rows_);
        }
        const int last_step = settings_.max_new_tokens - 1;
        for (int step = 0; step <= last_step && !active_.empty(); ++step) {
            const bool one_row = step == 0;
            const size_t rows_per_sentence = one_row ? 1 : static_cast<size_t>(beam_);
            const float* logits = model_.step(tokens_);  // [rows, vocab_size], rows = active sentences * beam
            for (size_t k = 0; k < active_.size(); ++k) {
                const float* rows = logits + k * rows_per_sentence * static_cast<size_t>(vocab_size_);
                advance(sentences_[static_cast<size_t>(active_[k])], rows, one_row ? 0 : vocab_size_, step);
            }
            if (step == last_step) break;
            // Sentences that are done leave the batch; the others' rows follow their new running beams.
            src_rows_.clear();
            tokens_.resize(active_.size() * static_cast<size_t>(beam_));
            size_t kept = 0;
            for (size_t k = 0; k < active_.size(); ++k) {
                const int sentence = active_[k];
                SentenceBeams& s = sentences_[static_cast<size_t>(sentence)];
                if (s.done) continue;
                const BackPointer* now = &s.trail[static_cast<size_t>(step) * beam_];
                for (int j = 0; j < beam_; ++j) {
                    tokens_[src_rows_.size()] = now[j].token;
                    // At step 0 every beam continues the sentence's one row, whichever beam it names.
                    src_rows_.push_back(static_cast<int32_t>(
                        one_row ? k : k * beam_ + static_cast<size_t>(now[j].parent)));
                }
                active_[kept++] = sentence;
            }
            active_.resize(kept);
            tokens_.resize(src_rows_.size());
            if (!active_.empty() && !is_identity(src_rows_)) model_.reorder(src_rows_);
        }
        // The limit is reached: sentences not done add their running beams (transformers' finalize).
        for (int sentence : active_) {
            SentenceBeams& s = sentences_[static_cast<size_t>(sentence)];
            if (s.done) continue;
            for (int j = 0; j < beam_; ++j) add_finished(s, s.scores[static_cast<size_t>(j)], last_step, j, false);
        }
        std::vector<std::vector<Hypothesis>> results(sentences_.size());
        for (size_t i = 0; i < sentences_.size(); ++i) results[i] = collect(sentences_[i]);
        return results;
    }

private:
    static bool is_identity(const std::vector<int32_t>& rows) {
        for (size_t i = 0; i < rows.size(); ++i) {
            if (rows[i] != static_cast<int32_t>(i)) return false;
        }
        return true;
    }

    // One step for one sentence: candidates from its beam rows of logits (beam b's row at logits + b * row_stride;
    // a stride of 0 when all beams share one row), finished hypotheses, new running beams.
    void advance(SentenceBeams& s, const float* logits, int row_stride, int step) {
        const int k = 2 * beam_;
        int count = 0;
        Candidate* top = s.top.data();
        for (int b = 0; b < beam_; ++b) {
            const float* x = logits + static_cast<size_t>(b) * static_cast<size_t>(row_stride);  // [vocab_size]
            const float beam_score = s.scores[static_cast<size_t>(b)];
            // A candidate scores beam_score + (logit - lse) with logit <= max <= lse, so never above beam_score
            // (float rounding keeps both inequalities). Once the list is full and beam_score does not beat its
            // last entry, nothing on this row can enter: its log-sum-exp and scan are skipped, results unchanged.
            // Beams run best first, so the lower beams of a confident step are often skipped.
            if (count == k && !(beam_score > top[k - 1].score)) continue;
            if (rules_.forced(step)) {
                // Every token but the forced eos is -inf; the eos adds 0 to the running score.
                for (int v = 0; v < vocab_size_; ++v) {
                    offer(top, count, k, v == settings_.forced_eos_token_id ? beam_score : kNegInf, b, v);
                }
                continue;
            }
            auto previous = [&](int back) -> int32_t { return token_before(s, step, b, back); };
            rules_.sequence_bans(previous, row_bans_);
            const float lse = row_ops::row_stats(x, vocab_size_).lse;
            // A candidate scores as in transformers: running score + (logit - lse), in float32, -inf when banned.
            auto consider = [&](int v) {
                const float score = rules_.banned(v, row_bans_) ? kNegInf : beam_score + (x[v] - lse);
                offer(top, count, k, score, b, v);
            };
            int v = 0;
            for (; v < vocab_size_ && count < k; ++v) consider(v);
            // Once the list is full, only logits above the one that ties the k-th score can enter: skip the rest
            // with a vectorised scan, the bound lowered by a margin far above float rounding.
            while (v < vocab_size_) {
                const float bar = top[k - 1].score;
                const double tie = static_cast<double>(bar) - beam_score + lse;
                const double margin = 1e-5 * (1.0 + std::fabs(bar) + std::fabs(beam_score) + std::fabs(lse));
                v = row_ops::first_above(x, v, vocab_size_, static_cast<float>(tie - margin));
                if (v == vocab_size_) break;
                consider(v);
                ++v;
            }
        }
        // Generated tokens of a hypothesis that ends at this step, eos included.
        const int generated = step + 1;
        BackPointer* next = &s.trail[static_cast<size_t>(step) * beam_];
        int running = 0;
        for (int rank = 0; rank < count && running < beam_; ++rank) {
            const Candidate& c = s.top[static_cast<size_t>(rank)];
            if (c.token == settings_.eos_token_id) {
                if (rank >= beam_) continue;  // an eos outside the first num_beams candidates closes nothing
                add_finished(s, c.score, step - 1, c.beam, true);
            } else {
                next[running] = BackPointer{c.beam, c.token};
                s.scores[static_cast<size_t>(running)] = c.score;
                ++running;
            }
        }
        TOLK_CHECK(running == beam_, "decode: beam search found only ", running, " running beams for ", beam_,
                   " (vocabulary of ", vocab_size_, " too small)");
        if (static_cast<int>(s.finished.size()) < beam_) return;
        if (settings_.early_stopping) {
            s.done = true;
            return;
        }
        const double best = settings_.stop_on_best_running ? s.scores[0] : s.top[0].score;
        s.done = s.worst >= best / std::pow(static_cast<double>(generated), settings_.length_penalty);
    }

    // The token `back` positions before the one chosen at `step` on running beam `beam` (after step - 1).
    int32_t token_before(const SentenceBeams& s, int step, int beam, int back) const {
        int t = step - 1;
        int j = beam;
        for (int i = 1; i < back && t >= 0; ++i) {
            j = s.trail[static_cast<size_t>(t) * beam_ + static_cast<size_t>(j)].parent;
            --t;
        }
        if (t >= 0) return s.trail[static_cast<size_t>(t) * beam_ + static_cast<size_t>(j)].token;
        return t == -1 ? settings_.decoder_start_token_id : -1;
    }

    // BeamHypotheses.add: `sum_logprobs` over `last_step + 1` tokens, plus one for eos when `ended`.
    void add_finished(SentenceBeams& s, float sum_logprobs, int last_step, int beam, bool ended) {
        const int length = last_step + 1 + (ended ? 1 : 0);
        const double score = static_cast<double>(sum_logprobs) /
                             std::pow(static_cast<double>(length), settings_.length_penalty);
        const size_t n = s.finished.size();
        if (static_cast<int>(n) >= beam_ && !(score > s.worst)) return;
        s.finished.push_back(Finished{score, last_step, beam, ended});
        if (static_cast<int>(s.finished.size()) > beam_) {
            // The worst leaves (the earliest added among equal worst scores); the next worst becomes the bar.
            size_t worst_at = 0;
            for (size_t i = 1; i < s.finished.size(); ++i) {
                if (s.finished[i].score < s.finished[worst_at].score) worst_at = i;
            }
            s.finished.erase(s.finished.begin() + static_cast<std::ptrdiff_t>(worst_at));
            s.worst = s.finished[0].score;
            for (const Finished& f : s.finished) s.worst = std::min(s.worst, f.score);
        } else {
            s.worst = std::min(score, s.worst);
        }
    }

    std::vector<Hypothesis> collect(const SentenceBeams& s) const {
        // Ascending stable sort, then taken from the end, as transformers' finalize does.
        std::vector<Finished> sorted = s.finished;
        std::stable_sort(sorted.begin(), sorted.end(),
                         [](const Finished& a, const Finished& b) { return a.score < b.score; });
        std::vector<Hypothesis> out;
        const int n = std::min<int>(settings_.nbest, static_cast<int>(sorted.size()));
        for (int i = 0; i < n; ++i) {
            const Finished& f = sorted[sorted.size() - 1 - static_cast<size_t>(i)];
            Hypothesis h;
            h.score = static_cast<float>(f.score);
            h.ids.resize(static_cast<size_t>(f.last_step + 1));
            int j = f.beam;
            for (int t = f.last_step; t >= 0; --t) {
                const BackPointer& p = s.trail[static_cast<size_t>(t) * beam_ + static_cast<size_t>(j)];
                h.ids[static_cast<size_t>(t)] = p.token;
                j = p.parent;
            }
            if (f.ended) h.ids.push_back(settings_.eos_token_id);
            out.push_back(std::move(h));
        }
        return out;
    }

    StepModel& model_;
    const SearchSettings& settings_;
    const int beam_;
    const int vocab_size_;
    const TokenRules rules_;
    std::vector<SentenceBeams> sentences_;  // [batch]
    std::vector<int> active_;               // sentence index of each live group of beam rows, in row order
    std::vector<int32_t> tokens_;           // [rows] next decoder input
    std::vector<int32_t> src_rows_;         // [rows] reorder map
    std::vector<int32_t> row_bans_;         // tokens multi-token bad words ban on the row being scanned
};

}  // namespace

SearchSettings resolve_settings(const ModelConfig& config, const DecodeOptions& options) {
    TOLK_CHECK(options.beam_size >= 0, "decode: option beam size must be >= 0 (0: the model's num_beams), got ",
               options.beam_size);
    TOLK_CHECK(options.max_new_tokens >= 0, "decode: option max_new_tokens must be >= 0, got ",
               options.max_new_tokens);
    TOLK_CHECK(options.max_length >= 0, "decode: option max_length must be >= 0, got ", options.max_length);
    SearchSettings s;
    s.decoder_start_token_id = config.decoder_start_token_id;
    s.eos_token_id = config.eos_token_id;
    s.forced_eos_token_id = config.forced_eos_token_id;
    for (const std::vector<int32_t>& seq : config.bad_words_ids) {
        // NoBadWordsLogitsProcessor drops a bad word equal to [eos].
        if (seq.size() == 1 && seq[0] == config.eos_token_id) continue;
        if (seq.size() == 1) {
            s.banned_token_ids.push_back(seq[0]);
        } else if (!seq.empty()) {
            s.banned_sequences.push_back(seq);
        }
    }
    s.beam_size = options.beam_size > 0 ? options.beam_size : std::max(1, config.num_beams);
    s.nbest = options.nbest;
    TOLK_CHECK(s.nbest >= 1 && s.nbest <= s.beam_size, "decode: option nbest must be between 1 and the beam size ",
               s.beam_size, ", got ", s.nbest);
    // max_length counts the decoder start token; max_new_tokens does not (transformers sets
    // max_length = max_new_tokens + 1 for an encoder-decoder). The caller's choice wins over the config's.
    int limit = 0;
    if (options.max_new_tokens > 0) {
        limit = options.max_new_tokens;
    } else if (options.max_length > 0) {
        TOLK_CHECK(options.max_length >= 2, "decode: option max_length counts the decoder start token and must be "
                   "at least 2, got ", options.max_length);
        limit = options.max_length - 1;
    } else if (config.max_new_tokens > 0) {
        limit = config.max_new_tokens;
    } else {
        TOLK_CHECK(config.max_length >= 2, "decode: max_length in ", config.dir.string(),
                   " counts the decoder start token and must be at least 2, got ", config.max_length);
        limit = config.max_length - 1;
    }
    // The decoder reads generated token i at position i; positions stop at max_position_embeddings.
    s.max_new_tokens = std::min(limit, config.max_position_embeddings);
    s.length_penalty = options.length_penalty.value_or(config.length_penalty);
    s.early_stopping = options.early_stopping.value_or(config.early_stopping);
    return s;
}

std::vector<std::vector<Hypothesis>> search(StepModel& model, const SearchSettings& settings,
                                            const std::vector<std::vector<int32_t>>& src_ids) {
    check_settings(settings, model.vocab_size());
    if (src_ids.empty()) return {};
    if (settings.beam_size == 1) return greedy_search(model, settings, src_ids);
    BeamSearch beam_search(model, settings, static_cast<int>(src_ids.size()));
    return beam_search.run(src_ids);
}

std::vector<std::vector<Hypothesis>> generate(StepModel& model, const ModelConfig& config,
                                              const std::vector<std::vector<int32_t>>& src_ids,
                                              const DecodeOptions& options) {
    return search(model, resolve_settings(config, options), src_ids);
}

}  // namespace tolk
