// Runs the requested metrics over a corpus and renders the report (sacreBLEU-style text or JSON).
#include "eval/evaluate.h"

#include <algorithm>
#include <cctype>

#include "core/error.h"

namespace tolk {

namespace {

ChrfOptions chrf_options(bool lowercase, int word_order) {
    ChrfOptions options;
    options.lowercase = lowercase;
    options.word_order = word_order;
    return options;
}

nlohmann::json chrf_json(const ChrfScore& score, const ChrfOptions& options) {
    return {{"name", score.name},
            {"score", score.score},
            {"signature", score.signature},
            {"char_order", options.char_order},
            {"word_order", options.word_order},
            {"beta", options.beta}};
}

}  // namespace

MetricKind parse_metric(std::string_view name) {
    std::string lower(name);
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    if (lower == "bleu") return MetricKind::bleu;
    if (lower == "chrf") return MetricKind::chrf;
    if (lower == "chrf++" || lower == "chrfpp") return MetricKind::chrf_pp;
    TOLK_FAIL("--metrics: unknown metric '", name, "' (known: bleu, chrf, chrf++)");
}

std::vector<MetricKind> parse_metric_list(std::string_view list) {
    std::vector<MetricKind> kinds;
    size_t start = 0;
    while (start <= list.size()) {
        size_t end = list.find(',', start);
        if (end == std::string_view::npos) end = list.size();
        const std::string_view item = list.substr(start, end - start);
        TOLK_CHECK(!item.empty(), "--metrics: empty metric name in '", list, "'");
        const MetricKind kind = parse_metric(item);
        if (std::find(kinds.begin(), kinds.end(), kind) == kinds.end()) kinds.push_back(kind);
        start = end + 1;
    }
    return kinds;
}

std::string metric_id(MetricKind kind) {
    switch (kind) {
        case MetricKind::bleu: return "bleu";
        case MetricKind::chrf: return "chrf";
        case MetricKind::chrf_pp: return "chrf++";
    }
    return "?";
}

EvalResult evaluate_corpus(const std::vector<std::string>& hypotheses,
                           const std::vector<std::vector<std::string>>& references, const EvalOptions& options) {
    TOLK_CHECK(!options.metrics.empty(), "evaluation: no metric requested");
    EvalResult result;
    result.segments = hypotheses.size();
    result.order = options.metrics;
    for (MetricKind kind : options.metrics) {
        switch (kind) {
            case MetricKind::bleu: {
                BleuOptions bleu_options;
                bleu_options.lowercase = options.lowercase;
                result.bleu = Bleu(bleu_options).corpus_score(hypotheses, references);
                break;
            }
            case MetricKind::chrf:
                result.chrf = Chrf(chrf_options(options.lowercase, 0)).corpus_score(hypotheses, references);
                break;
            case MetricKind::chrf_pp:
                result.chrf_pp = Chrf(chrf_options(options.lowercase, 2)).corpus_score(hypotheses, references);
                break;
        }
    }
    return result;
}

std::string format_eval_text(const EvalResult& result, int width) {
    std::string text;
    for (MetricKind kind : result.order) {
        switch (kind) {
            case MetricKind::bleu: text += result.bleu->format(width); break;
            case MetricKind::chrf: text += result.chrf->format(width); break;
            case MetricKind::chrf_pp: text += result.chrf_pp->format(width); break;
        }
        text += '\n';
    }
    return text;
}

nlohmann::json eval_to_json(const EvalResult& result) {
    nlohmann::json out = {{"segments", result.segments}};
    for (MetricKind kind : result.order) {
        switch (kind) {
            case MetricKind::bleu: {
                const BleuScore& b = *result.bleu;
                out["bleu"] = {{"name", "BLEU"},           {"score", b.score},          {"signature", b.signature},
                               {"verbose_score", b.verbose()}, {"precisions", b.precisions}, {"counts", b.counts},
                               {"totals", b.totals},       {"bp", b.bp},                {"ratio", b.ratio},
                               {"sys_len", b.sys_len},     {"ref_len", b.ref_len}};
                break;
            }
            case MetricKind::chrf:
                out["chrf"] = chrf_json(*result.chrf, chrf_options(false, 0));
                break;
            case MetricKind::chrf_pp:
                out["chrf++"] = chrf_json(*result.chrf_pp, chrf_options(false, 2));
                break;
        }
    }
    return out;
}

}  // namespace tolk
