// Corpus BLEU with sacreBLEU 2.x semantics (statistics, brevity penalty, smoothing, signature).
#include "eval/bleu.h"
#include "eval/reference_streams.h"

#include <cmath>
#include <cstdio>
#include <unordered_map>

#include "core/error.h"
#include "eval/signature.h"
#include "eval/tokenizer_13a.h"
#include "eval/unicode_text.h"

namespace tolk {

namespace {

// One counter per order: counts[n - 1] maps an n-gram (tokens joined by ' ', which no token contains)
// to how often it occurs.
using NgramCounts = std::vector<std::unordered_map<std::string, int64_t>>;

NgramCounts count_ngrams(const std::vector<std::string>& tokens, int max_order) {
    NgramCounts counts(static_cast<size_t>(max_order));
    for (int n = 1; n <= max_order; ++n) {
        if (static_cast<int>(tokens.size()) < n) break;
        auto& order = counts[static_cast<size_t>(n - 1)];
        for (size_t i = 0; i + static_cast<size_t>(n) <= tokens.size(); ++i) {
            std::string key = tokens[i];
            for (size_t j = 1; j < static_cast<size_t>(n); ++j) {
                key.push_back(' ');
                key += tokens[i + j];
            }
            ++order[key];
        }
    }
    return counts;
}

// The reference length BLEU's brevity penalty uses: the one closest to the hypothesis length, the
// shorter one on ties (sacreBLEU's _get_closest_ref_len).
int64_t closest_ref_len(int64_t hyp_len, const std::vector<int64_t>& ref_lens) {
    int64_t best_diff = -1, best_len = -1;
    for (int64_t len : ref_lens) {
        const int64_t diff = std::llabs(hyp_len - len);
        if (best_diff == -1 || diff < best_diff) {
            best_diff = diff;
            best_len = len;
        } else if (diff == best_diff && len < best_len) {
            best_len = len;
        }
    }
    return best_len;
}

// sacreBLEU's my_log: log with log(0) floored to a huge negative number, so exp() of the mean is 0.
double floored_log(double x) { return x == 0.0 ? -9999999999.0 : std::log(x); }

double default_smooth_value(BleuSmooth smooth) {
    switch (smooth) {
        case BleuSmooth::floor: return 0.1;
        case BleuSmooth::add_k: return 1.0;
        default: return 0.0;
    }
}

std::string fixed(double value, int decimals) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
    return buf;
}

}  // namespace

BleuStats& BleuStats::operator+=(const BleuStats& other) {
    if (correct.empty()) {
        correct.assign(other.correct.size(), 0);
        total.assign(other.total.size(), 0);
    }
    TOLK_CHECK(correct.size() == other.correct.size(), "BLEU statistics: n-gram orders differ (", correct.size(),
               " vs ", other.correct.size(), ")");
    sys_len += other.sys_len;
    ref_len += other.ref_len;
    for (size_t i = 0; i < correct.size(); ++i) {
        correct[i] += other.correct[i];
        total[i] += other.total[i];
    }
    return *this;
}

std::string BleuScore::verbose() const {
    std::string s;
    for (size_t i = 0; i < precisions.size(); ++i) {
        if (i) s += '/';
        s += fixed(precisions[i], 1);
    }
    s += " (BP = " + fixed(bp, 3) + " ratio = " + fixed(ratio, 3) + " hyp_len = " + std::to_string(sys_len) +
         " ref_len = " + std::to_string(ref_len) + ")";
    return s;
}

std::string BleuScore::format(int width) const {
    std::string head = "BLEU";
    if (!signature.empty()) head += "|" + signature;
    return head + " = " + fixed(score, width) + " " + verbose();
}

BleuScore compute_bleu(const BleuStats& stats, const BleuOptions& options) {
    const int max_order = options.max_ngram_order;
    TOLK_CHECK(static_cast<int>(stats.correct.size()) == max_order && static_cast<int>(stats.total.size()) == max_order,
               "BLEU statistics have ", stats.correct.size(), " orders, options ask for ", max_order);
    const double smooth_value = options.smooth_value < 0 ? default_smooth_value(options.smooth) : options.smooth_value;

    BleuScore result;
    result.sys_len = stats.sys_len;
    result.ref_len = stats.ref_len;
    result.ratio = stats.ref_len ? static_cast<double>(stats.sys_len) / static_cast<double>(stats.ref_len) : 0.0;
    result.counts.assign(stats.correct.begin(), stats.correct.end());
    result.totals.assign(stats.total.begin(), stats.total.end());
    result.precisions.assign(static_cast<size_t>(max_order), 0.0);

    if (stats.sys_len < stats.ref_len)
        result.bp = stats.sys_len > 0
                        ? std::exp(1.0 - static_cast<double>(stats.ref_len) / static_cast<double>(stats.sys_len))
                        : 0.0;
    else
        result.bp = 1.0;

    // No match of any order scores 0 whatever the smoothing (sacreBLEU issue #141).
    bool any_match = false;
    for (int64_t c : stats.correct) any_match = any_match || c != 0;
    if (!any_match) return result;

    auto& correct = result.counts;
    auto& total = result.totals;
    double smooth_mteval = 1.0;
    int eff_order = max_order;
    for (int n = 1; n <= max_order; ++n) {
        const size_t i = static_cast<size_t>(n - 1);
        if (options.smooth == BleuSmooth::add_k && n > 1) {
            correct[i] += smooth_value;
            total[i] += smooth_value;
        }
        if (total[i] == 0) break;
        if (options.effective_order) eff_order = n;
        if (correct[i] == 0) {
            if (options.smooth == BleuSmooth::exp) {
                smooth_mteval *= 2;
                result.precisions[i] = 100.0 / (smooth_mteval * total[i]);
            } else if (options.smooth == BleuSmooth::floor) {
                result.precisions[i] = 100.0 * smooth_value / total[i];
            }
        } else {
            result.precisions[i] = 100.0 * correct[i] / total[i];
        }
    }

    double log_sum = 0.0;
    for (int i = 0; i < eff_order; ++i) log_sum += floored_log(result.precisions[static_cast<size_t>(i)]);
    result.score = result.bp * std::exp(log_sum / eff_order);
    return result;
}

Bleu::Bleu(BleuOptions options) : options_(options) {
    TOLK_CHECK(options_.max_ngram_order >= 1, "BLEU: max n-gram order must be >= 1, got ", options_.max_ngram_order);
}

std::string Bleu::preprocess(std::string_view segment) const {
    std::string text = options_.lowercase ? to_lower_unicode(segment) : std::string(segment);
    text = rstrip_py_whitespace(text);
    return options_.tokenizer == BleuTokenizer::k13a ? tokenize_13a(text) : text;
}

BleuStats Bleu::segment_stats(std::string_view hypothesis, const std::vector<std::string>& references) const {
    const int max_order = options_.max_ngram_order;

    NgramCounts ref_counts(static_cast<size_t>(max_order));
    std::vector<int64_t> ref_lens;
    for (const auto& ref : references) {
        if (ref.empty()) continue;
        const auto tokens = split_py_whitespace(preprocess(ref));
        ref_lens.push_back(static_cast<int64_t>(tokens.size()));
        auto counts = count_ngrams(tokens, max_order);
        // Clip against the most frequent occurrence in any single reference.
        for (size_t n = 0; n < counts.size(); ++n)
            for (auto& [ngram, count] : counts[n]) {
                auto& merged = ref_counts[n][ngram];
                merged = std::max(merged, count);
            }
    }
    TOLK_CHECK(!ref_lens.empty(), "BLEU: every reference of the segment is empty");

    const auto hyp_tokens = split_py_whitespace(preprocess(hypothesis));
    BleuStats stats;
    stats.sys_len = static_cast<int64_t>(hyp_tokens.size());
    stats.ref_len = closest_ref_len(stats.sys_len, ref_lens);
    stats.correct.assign(static_cast<size_t>(max_order), 0);
    stats.total.assign(static_cast<size_t>(max_order), 0);
    const auto hyp_counts = count_ngrams(hyp_tokens, max_order);
    for (size_t n = 0; n < hyp_counts.size(); ++n)
        for (const auto& [ngram, count] : hyp_counts[n]) {
            stats.total[n] += count;
            const auto it = ref_counts[n].find(ngram);
            if (it != ref_counts[n].end()) stats.correct[n] += std::min(count, it->second);
        }
    return stats;
}

BleuScore Bleu::score_from_stats(const BleuStats& stats, int nrefs) const {
    BleuScore score = compute_bleu(stats, options_);
    score.signature = signature(nrefs);
    return score;
}

BleuScore Bleu::corpus_score(const std::vector<std::string>& hypotheses,
                             const std::vector<std::vector<std::string>>& references) const {
    BleuStats total;
    total.correct.assign(static_cast<size_t>(options_.max_ngram_order), 0);
    total.total.assign(static_cast<size_t>(options_.max_ngram_order), 0);
    const int nrefs = sum_over_references("BLEU", hypotheses, references, total,
                                          [this](std::string_view hyp, const std::vector<std::string>& refs) {
                                              return segment_stats(hyp, refs);
                                          });
    return score_from_stats(total, nrefs);
}

BleuScore Bleu::sentence_score(std::string_view hypothesis, const std::vector<std::string>& references) const {
    std::vector<std::vector<std::string>> streams;
    for (const auto& ref : references) streams.push_back({ref});
    return corpus_score({std::string(hypothesis)}, streams);
}

std::string Bleu::signature(int nrefs) const {
    std::string smooth;
    switch (options_.smooth) {
        case BleuSmooth::none: smooth = "none"; break;
        case BleuSmooth::exp: smooth = "exp"; break;
        case BleuSmooth::floor: smooth = "floor"; break;
        case BleuSmooth::add_k: smooth = "add-k"; break;
    }
    if (options_.smooth == BleuSmooth::floor || options_.smooth == BleuSmooth::add_k) {
        const double value = options_.smooth_value < 0 ? default_smooth_value(options_.smooth) : options_.smooth_value;
        smooth += '[';
        smooth += fixed(value, 2);
        smooth += ']';
    }
    return "nrefs:" + nrefs_field(nrefs) + "|case:" + (options_.lowercase ? "lc" : "mixed") +
           "|eff:" + (options_.effective_order ? "yes" : "no") +
           "|tok:" + (options_.tokenizer == BleuTokenizer::k13a ? "13a" : "none") + "|smooth:" + smooth +
           "|version:" + kMetricsVersion;
}

}  // namespace tolk
