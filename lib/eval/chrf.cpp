// chrF / chrF++ with sacreBLEU 2.x semantics: n-gram extraction on code points, per-order statistics,
// best-reference selection, effective-order or epsilon smoothing, signature.
#include "eval/chrf.h"
#include "eval/reference_streams.h"

#include <cstdio>
#include <unordered_map>

#include "core/error.h"
#include "eval/signature.h"
#include "eval/unicode_text.h"

namespace tolk {

namespace {

// Character n-grams view into the segment's text, which outlives the counters.
using CharCounts = std::unordered_map<std::u32string_view, int64_t>;
// Word n-grams own their key: the words joined by ' ' (words never contain whitespace).
using WordCounts = std::unordered_map<std::u32string, int64_t>;

// The n-gram counters of one segment: char orders 1..char_order, then word orders 1..word_order.
struct SegmentNgrams {
    std::u32string text;  // backs the char n-gram views
    std::vector<CharCounts> chars;
    std::vector<WordCounts> words;
};

SegmentNgrams extract_ngrams(std::string_view segment, const ChrfOptions& options) {
    SegmentNgrams out;
    const std::string cased = options.lowercase ? to_lower_unicode(segment) : std::string(segment);
    const std::u32string full = utf8_to_u32(cased);
    out.text = options.whitespace ? full : remove_py_whitespace(full);

    const std::u32string_view text(out.text);
    out.chars.resize(static_cast<size_t>(options.char_order));
    for (int n = 1; n <= options.char_order; ++n) {
        auto& counts = out.chars[static_cast<size_t>(n - 1)];
        for (size_t i = 0; i + static_cast<size_t>(n) <= text.size(); ++i) ++counts[text.substr(i, static_cast<size_t>(n))];
    }

    if (options.word_order > 0) {
        const auto words = chrf_words(full);
        out.words.resize(static_cast<size_t>(options.word_order));
        for (int n = 1; n <= options.word_order; ++n) {
            auto& counts = out.words[static_cast<size_t>(n - 1)];
            for (size_t i = 0; i + static_cast<size_t>(n) <= words.size(); ++i) {
                std::u32string key = words[i];
                for (size_t j = 1; j < static_cast<size_t>(n); ++j) {
                    key.push_back(U' ');
                    key += words[i + j];
                }
                ++counts[key];
            }
        }
    }
    return out;
}

// Appends [hyp n-grams, ref n-grams, clipped matches] for one order. A reference without n-grams of
// this order contributes no hypothesis n-grams either (sacreBLEU's "don't count hits if no reference").
template <typename Counts>
void append_match_stats(const Counts& hyp, const Counts& ref, std::vector<int64_t>& out) {
    int64_t hyp_count = 0, ref_count = 0, match = 0;
    for (const auto& [ngram, count] : hyp) {
        hyp_count += count;
        const auto it = ref.find(ngram);
        if (it != ref.end()) match += std::min(count, it->second);
    }
    for (const auto& entry : ref) ref_count += entry.second;
    out.push_back(ref.empty() ? 0 : hyp_count);
    out.push_back(ref_count);
    out.push_back(match);
}

bool is_ascii_punct(char32_t c) {
    return (c >= U'!' && c <= U'/') || (c >= U':' && c <= U'@') || (c >= U'[' && c <= U'`') ||
           (c >= U'{' && c <= U'~');
}

}  // namespace

std::vector<std::u32string> chrf_words(std::u32string_view text) {
    std::vector<std::u32string> out;
    for (auto& word : split_py_whitespace(text)) {
        if (word.size() == 1) {
            out.push_back(std::move(word));
        } else if (is_ascii_punct(word.back())) {
            // sacreBLEU splits only one character, so "(hi)" gives "(hi" and ")".
            out.push_back(word.substr(0, word.size() - 1));
            out.push_back(word.substr(word.size() - 1));
        } else if (is_ascii_punct(word.front())) {
            out.push_back(word.substr(0, 1));
            out.push_back(word.substr(1));
        } else {
            out.push_back(std::move(word));
        }
    }
    return out;
}

ChrfStats& ChrfStats::operator+=(const ChrfStats& other) {
    if (values.empty()) values.assign(other.values.size(), 0);
    TOLK_CHECK(values.size() == other.values.size(), "chrF statistics: sizes differ (", values.size(), " vs ",
               other.values.size(), ")");
    for (size_t i = 0; i < values.size(); ++i) values[i] += other.values[i];
    return *this;
}

std::string ChrfScore::format(int width) const {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", width, score);
    return name + (signature.empty() ? "" : "|" + signature) + " = " + buf;
}

Chrf::Chrf(ChrfOptions options) : options_(options) {
    TOLK_CHECK(options_.char_order >= 0 && options_.word_order >= 0 && options_.char_order + options_.word_order > 0,
               "chrF: character order ", options_.char_order, " and word order ", options_.word_order,
               " must be >= 0 and not both 0");
    TOLK_CHECK(options_.beta >= 0, "chrF: beta must be >= 0, got ", options_.beta);
}

double Chrf::f_score(const ChrfStats& stats) const {
    const int order = options_.char_order + options_.word_order;
    TOLK_CHECK(static_cast<int>(stats.values.size()) == 3 * order, "chrF statistics have ", stats.values.size(),
               " values, options ask for ", 3 * order);
    constexpr double eps = 1e-16;
    const double factor = static_cast<double>(options_.beta) * options_.beta;
    double eps_score = 0.0, avg_prec = 0.0, avg_rec = 0.0;
    int effective_order = 0;
    for (int i = 0; i < order; ++i) {
        const auto n_hyp = static_cast<double>(stats.values[static_cast<size_t>(3 * i)]);
        const auto n_ref = static_cast<double>(stats.values[static_cast<size_t>(3 * i + 1)]);
        const auto n_match = static_cast<double>(stats.values[static_cast<size_t>(3 * i + 2)]);
        // chrF++.py style: an order without n-grams gets precision/recall eps.
        const double prec = n_hyp > 0 ? n_match / n_hyp : eps;
        const double rec = n_ref > 0 ? n_match / n_ref : eps;
        const double denom = factor * prec + rec;
        eps_score += denom > 0 ? (1 + factor) * prec * rec / denom : eps;
        // sacreBLEU's default: average precision and recall over the orders both sides have.
        if (n_hyp > 0 && n_ref > 0) {
            avg_prec += prec;
            avg_rec += rec;
            ++effective_order;
        }
    }
    if (options_.eps_smoothing) return 100.0 * eps_score / order;
    if (effective_order == 0) return 0.0;
    avg_prec /= effective_order;
    avg_rec /= effective_order;
    if (avg_prec + avg_rec == 0.0) return 0.0;
    return 100.0 * (1 + factor) * avg_prec * avg_rec / (factor * avg_prec + avg_rec);
}

ChrfStats Chrf::segment_stats(std::string_view hypothesis, const std::vector<std::string>& references) const {
    const SegmentNgrams hyp = extract_ngrams(hypothesis, options_);
    ChrfStats best;
    double best_f = -1.0;
    for (const auto& reference : references) {
        if (reference.empty()) continue;
        const SegmentNgrams ref = extract_ngrams(reference, options_);
        ChrfStats stats;
        stats.values.reserve(static_cast<size_t>(3 * (options_.char_order + options_.word_order)));
        for (size_t n = 0; n < hyp.chars.size(); ++n) append_match_stats(hyp.chars[n], ref.chars[n], stats.values);
        for (size_t n = 0; n < hyp.words.size(); ++n) append_match_stats(hyp.words[n], ref.words[n], stats.values);
        const double f = f_score(stats);
        if (f > best_f) {
            best_f = f;
            best = std::move(stats);
        }
    }
    TOLK_CHECK(best_f >= 0.0, "chrF: every reference of the segment is empty");
    return best;
}

ChrfScore Chrf::score_from_stats(const ChrfStats& stats, int nrefs) const {
    ChrfScore score;
    score.score = f_score(stats);
    score.name = name();
    score.signature = signature(nrefs);
    return score;
}

ChrfScore Chrf::corpus_score(const std::vector<std::string>& hypotheses,
                             const std::vector<std::vector<std::string>>& references) const {
    ChrfStats total;
    total.values.assign(static_cast<size_t>(3 * (options_.char_order + options_.word_order)), 0);
    const int nrefs = sum_over_references("chrF", hypotheses, references, total,
                                          [this](std::string_view hyp, const std::vector<std::string>& refs) {
                                              return segment_stats(hyp, refs);
                                          });
    return score_from_stats(total, nrefs);
}

ChrfScore Chrf::sentence_score(std::string_view hypothesis, const std::vector<std::string>& references) const {
    std::vector<std::vector<std::string>> streams;
    for (const auto& ref : references) streams.push_back({ref});
    return corpus_score({std::string(hypothesis)}, streams);
}

std::string Chrf::name() const {
    return "chrF" + std::to_string(options_.beta) + std::string(static_cast<size_t>(options_.word_order), '+');
}

std::string Chrf::signature(int nrefs) const {
    return "nrefs:" + nrefs_field(nrefs) + "|case:" + (options_.lowercase ? "lc" : "mixed") +
           "|eff:" + (options_.eps_smoothing ? "no" : "yes") + "|nc:" + std::to_string(options_.char_order) +
           "|nw:" + std::to_string(options_.word_order) + "|space:" + (options_.whitespace ? "yes" : "no") +
           "|version:" + kMetricsVersion;
}

}  // namespace tolk
