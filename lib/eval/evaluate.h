// One evaluation run over a corpus: the requested metrics, and their text and JSON reports.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/bleu.h"
#include "eval/chrf.h"

namespace tolk {

enum class MetricKind {
    bleu,     // sacreBLEU's default BLEU
    chrf,     // chrF2, character order 6
    chrf_pp,  // chrF2++: chrF plus word orders 1-2
};

// "bleu", "chrf", "chrf++" (case-insensitive). Throws tolk::Error naming the accepted names.
MetricKind parse_metric(std::string_view name);
// A comma-separated list such as "bleu,chrf"; duplicates are dropped, order is kept.
std::vector<MetricKind> parse_metric_list(std::string_view list);
std::string metric_id(MetricKind kind);  // "bleu", "chrf", "chrf++"

struct EvalOptions {
    std::vector<MetricKind> metrics = {MetricKind::bleu, MetricKind::chrf};
    bool lowercase = false;  // case-insensitive scores (BLEU and chrF alike)
};

struct EvalResult {
    size_t segments = 0;
    std::optional<BleuScore> bleu;
    std::optional<ChrfScore> chrf;
    std::optional<ChrfScore> chrf_pp;
    std::vector<MetricKind> order;  // the order the metrics were asked for
};

// Scores hypotheses against references[k][i] (k-th reference of line i) with every requested metric.
EvalResult evaluate_corpus(const std::vector<std::string>& hypotheses,
                           const std::vector<std::vector<std::string>>& references, const EvalOptions& options);

// One sacreBLEU-style line per metric, e.g.
// "BLEU|nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:tolk-2.x-compat = 48.53 82.4/... (BP = ...)".
std::string format_eval_text(const EvalResult& result, int width = 2);
// {"segments": N, "bleu": {"name", "score", "signature", "verbose_score", "precisions", ...}, "chrf": {...}}
// with unrounded scores.
nlohmann::json eval_to_json(const EvalResult& result);

}  // namespace tolk
