// Tests of lib/decode (greedy, beam search, n-best, settings) on fake StepModels whose logits are a pure function
// of (source sentence, decoder prefix), checked against a naive reference search, a brute-force enumeration of all
// sequences, and hand-computed values.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <span>
#include <vector>

#include "core/error.h"
#include "decode/generate.h"
#include "decode/options.h"
#include "decode/row_ops.h"
#include "decode/step_model.h"
#include "model/config.h"
#include "test_support.h"

using namespace tolk;

namespace {

using Ids = std::vector<int32_t>;
// Logits of the next token for one sentence (its source ids) after a decoder prefix (start token excluded).
using LogitsFn = std::function<void(const Ids& src, const Ids& prefix, float* logits)>;

constexpr double kInf = std::numeric_limits<double>::infinity();

// A StepModel that keeps every row's source and prefix itself, so a wrong reorder changes the logits it returns.
class FakeModel : public StepModel {
public:
    FakeModel(int vocab_size, LogitsFn fn) : vocab_size_(vocab_size), fn_(std::move(fn)) {}

    void start(const std::vector<Ids>& src_ids, int beam) override {
        rows_.clear();
        for (const Ids& src : src_ids) {
            for (int b = 0; b < beam; ++b) rows_.push_back(Row{src, {}});
        }
        rows_per_step.clear();
        ++starts;
    }
    const float* step(std::span<const int32_t> tokens) override {
        REQUIRE(tokens.size() == rows_.size());
        rows_per_step.push_back(static_cast<int>(rows_.size()));
        logits_.assign(rows_.size() * static_cast<size_t>(vocab_size_), 0.0f);
        for (size_t r = 0; r < rows_.size(); ++r) {
            // The first input is the start token; the prefix the logits depend on is what came after it.
            if (!rows_[r].fed_start) {
                rows_[r].fed_start = true;
                start_tokens.push_back(tokens[r]);
            } else {
                rows_[r].prefix.push_back(tokens[r]);
            }
            fn_(rows_[r].src, rows_[r].prefix, logits_.data() + r * static_cast<size_t>(vocab_size_));
        }
        return logits_.data();
    }
    void reorder(std::span<const int32_t> src_rows) override {
        std::vector<Row> next;
        for (int32_t r : src_rows) {
            REQUIRE(r >= 0);
            REQUIRE(static_cast<size_t>(r) < rows_.size());
            next.push_back(rows_[static_cast<size_t>(r)]);
        }
        rows_ = std::move(next);
        ++reorders;
    }
    int vocab_size() const override { return vocab_size_; }

    std::vector<int> rows_per_step;
    std::vector<int32_t> start_tokens;
    int starts = 0;
    int reorders = 0;

private:
    struct Row {
        Ids src;
        Ids prefix;
        bool fed_start = false;
    };
    int vocab_size_;
    LogitsFn fn_;
    std::vector<Row> rows_;
    std::vector<float> logits_;
};

uint64_t mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

// Pseudo-random logits in [-spread, spread] from a hash of (source, prefix, token), with the eos logit raised as the
// prefix grows past a length that depends on the source length, so that sentences end at different steps.
LogitsFn hashed_logits(int vocab_size, int32_t eos, float spread = 2.0f, float eos_slope = 0.8f) {
    return [=](const Ids& src, const Ids& prefix, float* logits) {
        uint64_t h = 12345;
        for (int32_t t : src) h = mix(h ^ static_cast<uint64_t>(t + 7));
        h = mix(h ^ 0xabcdefULL);
        for (int32_t t : prefix) h = mix(h ^ static_cast<uint64_t>(t + 1000));
        for (int v = 0; v < vocab_size; ++v) {
            const uint64_t r = mix(h ^ (static_cast<uint64_t>(v) * 0x1234567ULL));
            logits[v] = spread * (2.0f * static_cast<float>(r >> 40) / static_cast<float>(1 << 24) - 1.0f);
        }
        const float target = static_cast<float>(src.size());
        logits[eos] += eos_slope * (static_cast<float>(prefix.size()) - target);
    };
}

SearchSettings settings_for(int vocab_size, int beam, int max_new, double length_penalty = 1.0) {
    SearchSettings s;
    s.eos_token_id = 0;
    s.decoder_start_token_id = vocab_size - 1;  // the pad id, as in Marian
    s.forced_eos_token_id = 0;
    s.banned_token_ids = {vocab_size - 1};
    s.beam_size = beam;
    s.nbest = 1;
    s.max_new_tokens = max_new;
    s.length_penalty = length_penalty;
    return s;
}

// ------------------------------------------------------------------------------------------------------------
// The naive reference: the rules of transformers' generate() written out the obvious way, in double, with full
// sequences instead of back pointers and a full sort instead of a partial selection.

std::vector<double> reference_logprobs(const LogitsFn& fn, const SearchSettings& s, int vocab_size, const Ids& src,
                                       const Ids& prefix) {
    std::vector<float> raw(static_cast<size_t>(vocab_size));
    fn(src, prefix, raw.data());
    std::vector<double> out(static_cast<size_t>(vocab_size));
    const int step = static_cast<int>(prefix.size());
    if (s.forced_eos_token_id >= 0 && step == s.max_new_tokens - 1) {
        std::fill(out.begin(), out.end(), -kInf);
        out[static_cast<size_t>(s.forced_eos_token_id)] = 0.0;
        return out;
    }
    double max_raw = -kInf;
    for (float x : raw) max_raw = std::max(max_raw, static_cast<double>(x));
    double sum = 0.0;
    for (float x : raw) sum += std::exp(static_cast<double>(x) - max_raw);
    for (int v = 0; v < vocab_size; ++v) {
        out[static_cast<size_t>(v)] = raw[static_cast<size_t>(v)] - max_raw - std::log(sum);
    }
    for (int32_t id : s.banned_token_ids) out[static_cast<size_t>(id)] = -kInf;
    Ids history{s.decoder_start_token_id};
    history.insert(history.end(), prefix.begin(), prefix.end());
    for (const Ids& seq : s.banned_sequences) {
        const size_t n = seq.size() - 1;
        if (history.size() >= n && std::equal(seq.begin(), seq.end() - 1, history.end() - static_cast<long>(n))) {
            out[static_cast<size_t>(seq.back())] = -kInf;
        }
    }
    return out;
}

Hypothesis reference_greedy(const LogitsFn& fn, const SearchSettings& s, int vocab_size, const Ids& src) {
    Hypothesis h;
    double score = 0.0;
    for (int step = 0; step < s.max_new_tokens; ++step) {
        const std::vector<double> lp = reference_logprobs(fn, s, vocab_size, src, h.ids);
        const auto best = static_cast<int32_t>(std::max_element(lp.begin(), lp.end()) - lp.begin());
        h.ids.push_back(best);
        score += lp[static_cast<size_t>(best)];
        if (best == s.eos_token_id) break;
    }
    h.score = static_cast<float>(score / std::pow(static_cast<double>(h.ids.size()), s.length_penalty));
    return h;
}

std::vector<Hypothesis> reference_beam(const LogitsFn& fn, const SearchSettings& s, int vocab_size, const Ids& src) {
    const int B = s.beam_size;
    struct Beam {
        Ids seq;
        double score;
    };
    struct Done {
        double score;
        Ids seq;
    };
    std::vector<Beam> beams(static_cast<size_t>(B), Beam{{}, -1e9});
    beams[0].score = 0.0;
    std::vector<Done> finished;
    double worst = 1e9;
    auto add = [&](const Ids& seq, double sum_logprobs) {
        const double score = sum_logprobs / std::pow(static_cast<double>(seq.size()), s.length_penalty);
        if (static_cast<int>(finished.size()) < B || score > worst) {
            finished.push_back(Done{score, seq});
            if (static_cast<int>(finished.size()) > B) {
                auto lowest = std::min_element(finished.begin(), finished.end(),
                                               [](const Done& a, const Done& b) { return a.score < b.score; });
                finished.erase(lowest);
                worst = kInf;
                for (const Done& d : finished) worst = std::min(worst, d.score);
            } else {
                worst = std::min(worst, score);
            }
        }
    };
    bool done = false;
    for (int step = 0; step < s.max_new_tokens && !done; ++step) {
        struct Cand {
            double score;
            int beam;
            int32_t token;
        };
        std::vector<Cand> all;
        for (int b = 0; b < B; ++b) {
            const Ids& seq = beams[static_cast<size_t>(b)].seq;
            const std::vector<double> lp = reference_logprobs(fn, s, vocab_size, src, seq);
            for (int v = 0; v < vocab_size; ++v) {
                // Running scores are float32 in transformers; -1e9 + a log-probability rounds back to -1e9 there.
                const float score = static_cast<float>(beams[static_cast<size_t>(b)].score) +
                                    static_cast<float>(lp[static_cast<size_t>(v)]);
                all.push_back(Cand{score, b, v});
            }
        }
        std::stable_sort(all.begin(), all.end(), [](const Cand& a, const Cand& b) { return a.score > b.score; });
        all.resize(2 * static_cast<size_t>(B));
        std::vector<Beam> next;
        for (size_t rank = 0; rank < all.size() && static_cast<int>(next.size()) < B; ++rank) {
            Ids seq = beams[static_cast<size_t>(all[rank].beam)].seq;
            seq.push_back(all[rank].token);
            if (all[rank].token == s.eos_token_id) {
                if (static_cast<int>(rank) < B) add(seq, all[rank].score);
            } else {
                next.push_back(Beam{seq, all[rank].score});
            }
        }
        beams = next;
        if (static_cast<int>(finished.size()) >= B) {
            const double best = s.stop_on_best_running ? beams[0].score : all[0].score;
            done = s.early_stopping || worst >= best / std::pow(step + 1.0, s.length_penalty);
        }
    }
    if (!done) {
        for (const Beam& b : beams) add(b.seq, b.score);
    }
    std::stable_sort(finished.begin(), finished.end(), [](const Done& a, const Done& b) { return a.score < b.score; });
    std::vector<Hypothesis> out;
    for (int i = 0; i < s.nbest && i < static_cast<int>(finished.size()); ++i) {
        const Done& d = finished[finished.size() - 1 - static_cast<size_t>(i)];
        out.push_back(Hypothesis{d.seq, static_cast<float>(d.score)});
    }
    return out;
}

// Every sequence the rules allow (pad banned, eos forced at the limit), scored sum / length^length_penalty, best
// first.
std::vector<Hypothesis> enumerate_all(const LogitsFn& fn, const SearchSettings& s, int vocab_size, const Ids& src) {
    std::vector<Hypothesis> all;
    std::function<void(const Ids&, double)> walk = [&](const Ids& prefix, double sum) {
        const std::vector<double> lp = reference_logprobs(fn, s, vocab_size, src, prefix);
        for (int v = 0; v < vocab_size; ++v) {
            if (lp[static_cast<size_t>(v)] == -kInf) continue;
            Ids seq = prefix;
            seq.push_back(v);
            const double total = sum + lp[static_cast<size_t>(v)];
            if (v == s.eos_token_id) {
                all.push_back(Hypothesis{seq, static_cast<float>(total / std::pow(static_cast<double>(seq.size()),
                                                                                  s.length_penalty))});
            } else if (static_cast<int>(seq.size()) < s.max_new_tokens) {
                walk(seq, total);
            }
        }
    };
    walk({}, 0.0);
    std::stable_sort(all.begin(), all.end(),
                     [](const Hypothesis& a, const Hypothesis& b) { return a.score > b.score; });
    return all;
}

// Sum of the processed log-probabilities of a sequence, computed from scratch.
double sequence_logprob(const LogitsFn& fn, const SearchSettings& s, int vocab_size, const Ids& src, const Ids& ids) {
    double sum = 0.0;
    for (size_t i = 0; i < ids.size(); ++i) {
        const Ids prefix(ids.begin(), ids.begin() + static_cast<long>(i));
        sum += reference_logprobs(fn, s, vocab_size, src, prefix)[static_cast<size_t>(ids[i])];
    }
    return sum;
}

std::vector<Ids> some_sources() {
    return {{5, 3, 0}, {7, 0}, {2, 2, 4, 6, 1, 0}, {3, 0}, {6, 5, 4, 3, 0}, {1, 1, 1, 0}, {4, 0}};
}

void check_same(const std::vector<Hypothesis>& got, const std::vector<Hypothesis>& want, double tol = 1e-4) {
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) {
        CHECK(got[i].ids == want[i].ids);
        CHECK(got[i].score == doctest::Approx(want[i].score).epsilon(tol));
    }
}

}  // namespace

TEST_CASE("greedy matches the naive reference, never emits pad, ends with eos") {
    const int V = 11;
    const LogitsFn fn = hashed_logits(V, 0);
    for (int max_new : {1, 2, 5, 12}) {
        const SearchSettings s = settings_for(V, 1, max_new);
        FakeModel model(V, fn);
        const auto sources = some_sources();
        const auto got = search(model, s, sources);
        REQUIRE(got.size() == sources.size());
        for (size_t i = 0; i < sources.size(); ++i) {
            CAPTURE(i);
            CAPTURE(max_new);
            check_same(got[i], {reference_greedy(fn, s, V, sources[i])});
            CHECK(got[i][0].ids.size() <= static_cast<size_t>(max_new));
            CHECK(got[i][0].ids.back() == 0);
            CHECK(std::count(got[i][0].ids.begin(), got[i][0].ids.end(), V - 1) == 0);
        }
        for (int32_t t : model.start_tokens) CHECK(t == V - 1);
    }
}

TEST_CASE("greedy: pad banned even when it has the highest logit; forced eos at the limit adds 0 to the score") {
    const int V = 6;
    // pad (5) always wins the raw logits, eos (0) is never likely: without the rules the output would be pad forever.
    const LogitsFn fn = [](const Ids&, const Ids&, float* logits) {
        for (int v = 0; v < 6; ++v) logits[v] = static_cast<float>(v) * 0.5f;
        logits[0] = -5.0f;
    };
    const SearchSettings s = settings_for(V, 1, 4);
    FakeModel model(V, fn);
    const auto got = search(model, s, {{1, 0}});
    // Token 4 is the best allowed at steps 0..2; step 3 is the last allowed one and forces eos.
    REQUIRE(got[0].size() == 1);
    CHECK(got[0][0].ids == Ids{4, 4, 4, 0});
    // Hand computation: logits 0.5*v (+ constant), v = 0..5 with logit[0] = -5; log p(4) = 2 - lse.
    double sum = std::exp(-5.0);
    for (int v = 1; v < 6; ++v) sum += std::exp(0.5 * v);
    const double lp4 = 2.0 - std::log(sum);
    CHECK(got[0][0].score == doctest::Approx(3 * lp4 / 4).epsilon(1e-6));  // 4 tokens, length_penalty 1
}

TEST_CASE("hand-computed beam search: eos outside the first num_beams, length penalty, forced eos, n-best") {
    // vocab: 0 eos, 1 a, 2 b, 3 pad. Logits are log-probabilities (pad: probability 0).
    const double ninf = -std::numeric_limits<double>::infinity();
    std::map<Ids, std::vector<double>> table = {
        {{}, {0.1, 0.5, 0.4, 0.0}},
        {{1}, {0.25, 0.45, 0.3, 0.0}},
        {{2}, {0.9, 0.04, 0.06, 0.0}},
    };
    const LogitsFn fn = [table, ninf](const Ids&, const Ids& prefix, float* logits) {
        const auto it = table.find(prefix);
        for (int v = 0; v < 4; ++v) {
            const double p = it == table.end() ? (v == 3 ? 0.0 : 1.0 / 3) : it->second[static_cast<size_t>(v)];
            logits[v] = static_cast<float>(p > 0 ? std::log(p) : ninf);
        }
    };
    SearchSettings s = settings_for(4, 2, 3, 1.0);
    s.nbest = 2;
    FakeModel model(4, fn);
    // Step 0: candidates a, b, eos (rank 2 >= 2 beams: closes nothing). Step 1: [b eos] closes (rank 0), running
    // [a a], [a b]. Step 2 forces eos on both: [a a eos] = (ln .5 + ln .45) / 3, [a b eos] = (ln .5 + ln .3) / 3.
    auto got = search(model, s, {{1, 0}});
    REQUIRE(got[0].size() == 2);
    CHECK(got[0][0].ids == Ids{1, 1, 0});
    CHECK(got[0][0].score == doctest::Approx((std::log(0.5) + std::log(0.45)) / 3).epsilon(1e-6));
    CHECK(got[0][1].ids == Ids{2, 0});
    CHECK(got[0][1].score == doctest::Approx((std::log(0.4) + std::log(0.9)) / 2).epsilon(1e-6));

    // Without length normalisation the short hypothesis wins.
    s.length_penalty = 0.0;
    got = search(model, s, {{1, 0}});
    REQUIRE(got[0].size() == 2);
    CHECK(got[0][0].ids == Ids{2, 0});
    CHECK(got[0][0].score == doctest::Approx(std::log(0.4) + std::log(0.9)).epsilon(1e-6));
    CHECK(got[0][1].ids == Ids{1, 1, 0});

    // Greedy takes a, a and the forced eos.
    s.beam_size = 1;
    s.nbest = 1;
    got = search(model, s, {{1, 0}});
    CHECK(got[0][0].ids == Ids{1, 1, 0});
    CHECK(got[0][0].score == doctest::Approx(std::log(0.5) + std::log(0.45)).epsilon(1e-6));  // length_penalty 0
    s.length_penalty = 1.0;
    got = search(model, s, {{1, 0}});
    CHECK(got[0][0].score == doctest::Approx((std::log(0.5) + std::log(0.45)) / 3).epsilon(1e-6));
}

TEST_CASE("beam search matches the naive reference (beam sizes, length penalties, stopping rules, n-best)") {
    const int V = 9;
    const LogitsFn fn = hashed_logits(V, 0, 2.5f, 0.6f);
    const auto sources = some_sources();
    for (int beam : {2, 3, 4, 6}) {
        for (double lp : {1.0, 0.6, 2.0, 0.0, -0.5}) {
            for (int rule = 0; rule < 4; ++rule) {
                SearchSettings s = settings_for(V, beam, 9, lp);
                s.early_stopping = rule == 1;
                s.stop_on_best_running = rule == 2;
                if (rule == 3) s.forced_eos_token_id = -1;  // the limit ends the search without an eos
                s.nbest = beam;
                CAPTURE(beam);
                CAPTURE(lp);
                CAPTURE(rule);
                FakeModel model(V, fn);
                const auto got = search(model, s, sources);
                REQUIRE(got.size() == sources.size());
                for (size_t i = 0; i < sources.size(); ++i) {
                    CAPTURE(i);
                    const auto want = reference_beam(fn, s, V, sources[i]);
                    check_same(got[i], want);
                    // n-best: best first, and every score is what the sequence's log-probabilities say.
                    for (size_t k = 1; k < got[i].size(); ++k) CHECK(got[i][k - 1].score >= got[i][k].score);
                    for (const Hypothesis& h : got[i]) {
                        if (h.score < -1e6) continue;  // a hypothesis grown from a beam that started at -1e9
                        const double sum = sequence_logprob(fn, s, V, sources[i], h.ids);
                        CHECK(h.score == doctest::Approx(sum / std::pow(static_cast<double>(h.ids.size()), lp))
                                             .epsilon(1e-5));
                        CHECK(std::count(h.ids.begin(), h.ids.end(), V - 1) == 0);
                    }
                }
            }
        }
    }
}

TEST_CASE("beam search: a lower beam just above the candidates' bar still gets its say") {
    // Rows whose running score cannot beat the 2*beam-th candidate are skipped; this one can, by 0.4. After step 0
    // the running scores are about -1.06, -1.16, -1.26 and -2.96 (tokens 1-4). Beam 0's row is flat over ten
    // tokens, so its candidates fill the list at -1.06 - 2.30 = -3.36; beam 3 (-2.96) is above that, and its row
    // is peaked on token 5, so its candidate (about -2.96) comes first. A search that skipped beam 3 (a bar off
    // by more than 0.4) would answer with beam 0's continuations instead.
    const int V = 12;  // 0 eos, 11 pad
    const LogitsFn fn = [](const Ids&, const Ids& prefix, float* logits) {
        for (int v = 0; v < 12; ++v) logits[v] = -10.0f;
        if (prefix.empty()) {
            logits[1] = 0.0f, logits[2] = -0.1f, logits[3] = -0.2f, logits[4] = -1.9f;
        } else if (prefix.back() == 4) {
            for (int v = 0; v < 12; ++v) logits[v] = -30.0f;
            logits[5] = 0.0f;
        } else {
            for (int v = 1; v <= 10; ++v) logits[v] = 0.0f;
        }
    };
    SearchSettings s = settings_for(V, 4, 3);
    s.nbest = 4;
    FakeModel model(V, fn);
    const auto got = search(model, s, {{1, 0}});
    check_same(got[0], reference_beam(fn, s, V, {1, 0}));
    REQUIRE_FALSE(got[0].empty());
    CHECK(got[0][0].ids.size() >= 2);
    CHECK(got[0][0].ids[0] == 4);  // the best hypothesis runs through beam 3's peaked row
    CHECK(got[0][0].ids[1] == 5);
}

TEST_CASE("beam search with a beam wider than the search space finds the brute-force best sequences") {
    const int V = 5;  // eos, three words, pad
    const LogitsFn fn = hashed_logits(V, 0, 1.5f, 0.3f);
    for (double lp : {1.0, 0.5, 0.0}) {
        // 4 steps: at most 27 live prefixes and 36 live candidates per step, so a beam of 64 never prunes a live
        // prefix and every live eos candidate ranks within the first num_beams.
        SearchSettings s = settings_for(V, 64, 4, lp);
        s.nbest = 6;
        for (const Ids& src : {Ids{1, 0}, Ids{3, 2, 4, 0}}) {
            FakeModel model(V, fn);
            const auto got = search(model, s, {src});
            auto all = enumerate_all(fn, s, V, src);
            REQUIRE(all.size() >= 6);
            all.resize(6);
            CAPTURE(lp);
            check_same(got[0], all);
        }
    }
}

TEST_CASE("beam 1 is greedy: greedy equals the naive one-beam search, ids and score") {
    const int V = 10;
    const LogitsFn fn = hashed_logits(V, 0);
    for (double lp : {1.0, 0.0, 0.6}) {
        const SearchSettings s = settings_for(V, 1, 10, lp);
        FakeModel model(V, fn);
        const auto sources = some_sources();
        const auto got = search(model, s, sources);
        for (size_t i = 0; i < sources.size(); ++i) {
            const auto one_beam = reference_beam(fn, s, V, sources[i]);
            REQUIRE(one_beam.size() == 1);
            CHECK(got[i][0].ids == one_beam[0].ids);
            CHECK(got[i][0].score == doctest::Approx(one_beam[0].score).epsilon(1e-5));
        }
    }
}

TEST_CASE("a batch gives every sentence exactly its result alone; finished sentences leave the batch") {
    const int V = 12;
    const LogitsFn fn = hashed_logits(V, 0, 2.0f, 1.0f);
    const auto sources = some_sources();
    for (int beam : {1, 3}) {
        SearchSettings s = settings_for(V, beam, 15, 1.0);
        s.nbest = beam;
        FakeModel batch_model(V, fn);
        const auto batched = search(batch_model, s, sources);
        for (size_t i = 0; i < sources.size(); ++i) {
            FakeModel alone(V, fn);
            const auto single = search(alone, s, {sources[i]});
            REQUIRE(single.size() == 1);
            REQUIRE(batched[i].size() == single[0].size());
            for (size_t k = 0; k < single[0].size(); ++k) {
                CHECK(batched[i][k].ids == single[0][k].ids);
                CHECK(batched[i][k].score == single[0][k].score);  // bit for bit
            }
        }
        // Step 0 runs one row per sentence (every beam starts from the same start token); then rows shrink as
        // sentences finish: the second step runs all beams of all of them, the last only the longest's.
        const auto& rows = batch_model.rows_per_step;
        REQUIRE(rows.size() > 2);
        CHECK(rows[0] == static_cast<int>(sources.size()));
        CHECK(rows[1] == static_cast<int>(sources.size()) * beam);
        CHECK(rows.back() < rows[1]);
        for (size_t t = 2; t < rows.size(); ++t) CHECK(rows[t] <= rows[t - 1]);
        CHECK(rows.back() % beam == 0);
    }
}

TEST_CASE("multi-token bad words ban their last token after the rest") {
    const int V = 6;
    // Token 3 is always best, eos next-best after three tokens.
    const LogitsFn fn = [](const Ids&, const Ids& prefix, float* logits) {
        for (int v = 0; v < 6; ++v) logits[v] = 0.0f;
        logits[3] = 2.0f;
        logits[2] = 1.0f;
        logits[0] = prefix.size() >= 3 ? 3.0f : -1.0f;
    };
    SearchSettings s = settings_for(V, 1, 8);
    s.banned_sequences = {{3, 3}, {5, 2}};  // no 3 after a 3; no 2 right after the start token (pad = 5)
    FakeModel model(V, fn);
    const auto got = search(model, s, {{1, 0}});
    CHECK(got[0][0].ids == Ids{3, 2, 3, 0});
    s.banned_sequences = {{5, 3}};
    FakeModel model2(V, fn);
    CHECK(search(model2, s, {{1, 0}})[0][0].ids == Ids{2, 3, 3, 0});
}

TEST_CASE("resolve_settings: limits count the start token, options override the config, errors name the option") {
    ModelConfig c;
    c.vocab_size = c.decoder_vocab_size = 100;
    c.pad_token_id = c.decoder_start_token_id = 99;
    c.eos_token_id = 0;
    c.forced_eos_token_id = 0;
    c.bad_words_ids = {{99}, {0}, {4, 5}};
    c.num_beams = 4;
    c.max_length = 20;
    c.max_position_embeddings = 512;
    c.length_penalty = 0.7;
    DecodeOptions o;
    SearchSettings s = resolve_settings(c, o);
    CHECK(s.beam_size == 4);
    CHECK(s.max_new_tokens == 19);
    CHECK(s.decoder_start_token_id == 99);
    CHECK(s.banned_token_ids == Ids{99});  // [eos] is not a bad word (transformers drops it)
    REQUIRE(s.banned_sequences.size() == 1);
    CHECK(s.banned_sequences[0] == Ids{4, 5});
    CHECK(s.length_penalty == 0.7);
    CHECK(!s.early_stopping);

    o.max_new_tokens = 7;
    o.beam_size = 2;
    o.nbest = 2;
    o.length_penalty = 1.0;
    o.early_stopping = true;
    s = resolve_settings(c, o);
    CHECK(s.max_new_tokens == 7);
    CHECK(s.beam_size == 2);
    CHECK(s.nbest == 2);
    CHECK(s.length_penalty == 1.0);
    CHECK(s.early_stopping);

    o = DecodeOptions{};
    c.max_length = 2000;
    CHECK(resolve_settings(c, o).max_new_tokens == 512);  // capped at the decoder positions
    c.max_new_tokens = 30;
    CHECK(resolve_settings(c, o).max_new_tokens == 30);
    o.max_length = 10;
    CHECK(resolve_settings(c, o).max_new_tokens == 9);

    o = DecodeOptions{};
    o.nbest = 5;
    CHECK_THROWS_WITH_AS(resolve_settings(c, o), doctest::Contains("nbest"), Error);
    o.nbest = 1;
    o.max_length = 1;
    CHECK_THROWS_WITH_AS(resolve_settings(c, o), doctest::Contains("max_length"), Error);
    c.max_new_tokens = 0;
    c.max_length = 1;
    CHECK_THROWS_WITH_AS(resolve_settings(c, DecodeOptions{}), doctest::Contains("max_length"), Error);
}

TEST_CASE("generate() uses the model's config, and bad ids are errors") {
    const int V = 8;
    ModelConfig c;
    c.vocab_size = c.decoder_vocab_size = V;
    c.pad_token_id = c.decoder_start_token_id = V - 1;
    c.eos_token_id = c.forced_eos_token_id = 0;
    c.bad_words_ids = {{V - 1}};
    c.num_beams = 3;
    c.max_length = 6;
    const LogitsFn fn = hashed_logits(V, 0);
    FakeModel model(V, fn);
    const auto got = generate(model, c, {{2, 0}, {3, 3, 0}}, DecodeOptions{});
    SearchSettings s = settings_for(V, 3, 5);
    for (size_t i = 0; i < 2; ++i) check_same(got[i], reference_beam(fn, s, V, i == 0 ? Ids{2, 0} : Ids{3, 3, 0}));

    c.eos_token_id = V;  // outside the vocabulary
    FakeModel model2(V, fn);
    CHECK_THROWS_WITH_AS(generate(model2, c, {{1, 0}}, DecodeOptions{}), doctest::Contains("eos_token_id"), Error);
    c.eos_token_id = 0;
    CHECK(generate(model2, c, {}, DecodeOptions{}).empty());
}

TEST_CASE("only beam 0 is live at the first step: the others start at -1e9 as in transformers") {
    const int V = 7;
    const LogitsFn fn = hashed_logits(V, 0);
    // One allowed token: eos is forced at step 0 on every beam; beams 1.. close with their -1e9 start score.
    SearchSettings s = settings_for(V, 3, 1);
    s.nbest = 3;
    FakeModel model(V, fn);
    const auto got = search(model, s, {{1, 0}});
    REQUIRE(got[0].size() == 3);
    CHECK(got[0][0].ids == Ids{0});
    CHECK(got[0][0].score == 0.0f);
    for (int k = 1; k < 3; ++k) {
        CHECK(got[0][static_cast<size_t>(k)].ids == Ids{0});
        CHECK(got[0][static_cast<size_t>(k)].score == -1e9f);
    }
    // Two steps: the first step's candidates all come from beam 0.
    s.max_new_tokens = 2;
    FakeModel model2(V, fn);
    check_same(search(model2, s, {{1, 0}})[0], reference_beam(fn, s, V, {1, 0}));
}

TEST_CASE("exact ties: lowest id in greedy, lowest beam*vocab+token index in beam, earlier hypothesis kept") {
    const int V = 6;
    // Every token equally likely, except eos, which becomes as likely as the others after two tokens: every
    // candidate of a step ties with others.
    const LogitsFn fn = [](const Ids&, const Ids& prefix, float* logits) {
        for (int v = 0; v < 6; ++v) logits[v] = 0.25f;
        if (prefix.size() < 2) logits[0] = -1.0f;
    };
    for (int beam : {1, 2, 3}) {
        for (double lp : {1.0, 0.0, 2.0}) {
            SearchSettings s = settings_for(V, beam, 6, lp);
            s.nbest = beam;
            CAPTURE(beam);
            CAPTURE(lp);
            FakeModel model(V, fn);
            const auto got = search(model, s, {{1, 0}});
            if (beam == 1) {
                check_same(got[0], {reference_greedy(fn, s, V, {1, 0})});
                CHECK(got[0][0].ids == Ids{1, 1, 0});
            } else {
                check_same(got[0], reference_beam(fn, s, V, {1, 0}));
            }
        }
    }
}

TEST_CASE("tiny vocabulary: beams that started at -1e9 take part, as in transformers") {
    const int V = 3;  // eos, one word, pad
    const LogitsFn fn = hashed_logits(V, 0, 1.0f, 0.5f);
    for (int beam : {2, 3}) {
        for (int max_new : {2, 3, 5}) {
            for (double lp : {0.0, 1.0}) {
                SearchSettings s = settings_for(V, beam, max_new, lp);
                s.nbest = beam;
                CAPTURE(beam);
                CAPTURE(max_new);
                CAPTURE(lp);
                FakeModel model(V, fn);
                check_same(search(model, s, {{1, 0}})[0], reference_beam(fn, s, V, {1, 0}));
            }
        }
    }
}

static void check_row_ops() {
    uint64_t seed = 99;
    auto uniform = [&seed]() {
        seed = mix(seed);
        return static_cast<float>(seed >> 40) / static_cast<float>(1 << 24);
    };
    for (int n : {0, 1, 15, 16, 17, 255, 256, 257, 1000, 58101}) {
        CAPTURE(n);
        std::vector<float> x(static_cast<size_t>(n));
        for (float& v : x) v = 30.0f * uniform() - 20.0f;
        if (n > 3) {
            x[static_cast<size_t>(n / 2)] = -std::numeric_limits<float>::infinity();
            x[1] = -200.0f;  // far below the maximum: exp underflows
        }
        double max = -kInf;
        for (float v : x) max = std::max(max, static_cast<double>(v));
        CHECK(row_ops::max_value(x.data(), n) == static_cast<float>(max));
        if (n > 0) {
            double sum = 0.0;
            for (float v : x) sum += std::exp(static_cast<double>(v) - max);
            const double want = max + std::log(sum);
            CHECK(row_ops::log_sum_exp(x.data(), n, static_cast<float>(max)) ==
                  doctest::Approx(want).epsilon(2e-7));
        }
        for (float bound : {-100.0f, 0.0f, 9.0f, 9.99f, 10.0f}) {
            for (int from : {0, 5, n / 3}) {
                if (from > n) continue;
                int want = n;
                for (int i = from; i < n; ++i) {
                    if (x[static_cast<size_t>(i)] > bound) {
                        want = i;
                        break;
                    }
                }
                CHECK(row_ops::first_above(x.data(), from, n, bound) == want);
            }
        }
        if (n > 0) {
            const int at = static_cast<int>(std::max_element(x.begin(), x.end()) - x.begin());
            CHECK(row_ops::first_equal(x.data(), n, static_cast<float>(max)) == at);
            CHECK(row_ops::first_equal(x.data(), n, 123.0f) == n);
            double sum = 0.0;
            for (float v : x) sum += std::exp(static_cast<double>(v) - max);
            const row_ops::RowStats stats = row_ops::row_stats(x.data(), n);
            CHECK(stats.max == static_cast<float>(max));
            CHECK(stats.argmax == at);
            CHECK(stats.lse == doctest::Approx(max + std::log(sum)).epsilon(2e-7));
            // The maximum repeated in a later block: the first one still wins.
            if (n > 5000) {
                x[4500] = x[static_cast<size_t>(at)];
                CHECK(row_ops::row_stats(x.data(), n).argmax == std::min(at, 4500));
                x[4999] = static_cast<float>(max) + 1.0f;
                CHECK(row_ops::row_stats(x.data(), n).argmax == 4999);
            }
        }
    }
    // Log-sum-exp of a row that is all -inf is -inf; one finite value is that value.
    std::vector<float> ninf(40, -std::numeric_limits<float>::infinity());
    CHECK(row_ops::log_sum_exp(ninf.data(), 40, row_ops::max_value(ninf.data(), 40)) ==
          -std::numeric_limits<float>::infinity());
    ninf[33] = 2.5f;
    CHECK(row_ops::log_sum_exp(ninf.data(), 40, 2.5f) == doctest::Approx(2.5).epsilon(1e-7));
    CHECK(row_ops::row_stats(ninf.data(), 40).argmax == 33);
    ninf[33] = -std::numeric_limits<float>::infinity();
    const row_ops::RowStats none = row_ops::row_stats(ninf.data(), 40);
    CHECK(none.argmax == 40);
    CHECK(none.lse == -std::numeric_limits<float>::infinity());
}

TEST_CASE("row_ops: maximum, log-sum-exp and scans equal naive loops at every vector width") {
    for (const simd::Level level : testing::simd_levels()) {
        const testing::SimdLevelScope scope(level);
        CAPTURE(static_cast<int>(level));
        check_row_ops();
    }
}

TEST_CASE("a realistic vocabulary size: greedy and beam search match the naive reference") {
    const int V = 1999;
    // Peaked distributions, as a trained model gives, so that the vectorised skip of the beam scan matters.
    const LogitsFn fn = hashed_logits(V, 0, 9.0f, 3.0f);
    const std::vector<Ids> sources = {{5, 3, 0}, {7, 0}, {2, 2, 4, 6, 1, 0}};
    for (int beam : {1, 4, 5}) {
        for (double lp : {1.0, 0.5}) {
            SearchSettings s = settings_for(V, beam, 8, lp);
            s.nbest = beam;
            CAPTURE(beam);
            CAPTURE(lp);
            FakeModel model(V, fn);
            const auto got = search(model, s, sources);
            for (size_t i = 0; i < sources.size(); ++i) {
                CAPTURE(i);
                check_same(got[i], beam == 1 ? std::vector<Hypothesis>{reference_greedy(fn, s, V, sources[i])}
                                             : reference_beam(fn, s, V, sources[i]));
            }
        }
    }
}
