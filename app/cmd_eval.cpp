// `tolk eval`: reads a hypothesis file (or stdin) and reference files, checks they line up, and prints
// BLEU / chrF as sacreBLEU computes them by default.
#include "cmd_eval.h"

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "eval/evaluate.h"
#include "eval/text_lines.h"

namespace tolk {

namespace {

struct EvalArgs {
    std::vector<std::string> refs;
    std::string input = "-";
    std::string metrics = "bleu,chrf";
    bool lowercase = false;
    bool json = false;
    int width = 2;
};

void run_eval(const EvalArgs& args) {
    EvalOptions options;
    options.metrics = parse_metric_list(args.metrics);
    options.lowercase = args.lowercase;
    TOLK_CHECK(args.width >= 0 && args.width <= 10, "--width: expected 0..10 decimals, got ", args.width);

    const std::string hyp_name = args.input == "-" ? std::string("<stdin>") : args.input;
    const std::vector<std::string> hypotheses = read_text_lines(args.input);
    std::vector<std::vector<std::string>> references;
    for (const auto& path : args.refs) {
        TOLK_CHECK(path != "-" || args.input != "-", "-r -: stdin is already the hypotheses; give -i HYP");
        references.push_back(read_text_lines(path));
        TOLK_CHECK(references.back().size() == hypotheses.size(), "line counts differ: hypotheses '", hyp_name,
                   "' have ", hypotheses.size(), " lines, reference '", path, "' has ", references.back().size());
    }
    TOLK_CHECK(!hypotheses.empty(), "hypotheses '", hyp_name, "' are empty: nothing to score");
    // sacreBLEU refuses a segment whose references are all empty; say which line that is.
    for (size_t i = 0; i < hypotheses.size(); ++i) {
        bool any = false;
        for (const auto& stream : references) any = any || !stream[i].empty();
        TOLK_CHECK(any, "line ", i + 1, ": the reference is empty in every reference file (",
                   args.refs.size() == 1 ? "'" + args.refs[0] + "'" : std::to_string(args.refs.size()) + " files",
                   "); BLEU and chrF need a reference for every line");
    }

    const EvalResult result = evaluate_corpus(hypotheses, references, options);
    if (args.json) {
        nlohmann::json report = eval_to_json(result);
        report["hypotheses"] = hyp_name;
        report["references"] = args.refs;
        std::cout << report.dump(1) << '\n';
    } else {
        std::cout << format_eval_text(result, args.width);
    }
    std::cout.flush();
}

}  // namespace

void add_eval_command(CLI::App& app) {
    auto args = std::make_shared<EvalArgs>();
    CLI::App* cmd = app.add_subcommand(
        "eval", "Score a translation against references: corpus BLEU and chrF with sacreBLEU's default settings");
    cmd->add_option("-r,--ref", args->refs, "Reference file, one segment per line (repeat for several references)")
        ->required();
    cmd->add_option("-i,--input", args->input, "Hypothesis file, one segment per line ('-': stdin)")
        ->capture_default_str();
    cmd->add_option("-m,--metrics", args->metrics, "Comma-separated metrics: bleu, chrf, chrf++")
        ->capture_default_str();
    cmd->add_flag("--lowercase", args->lowercase, "Case-insensitive scores (signature case:lc)");
    cmd->add_flag("--json", args->json, "Print a JSON object with unrounded scores and all statistics");
    cmd->add_option("-w,--width", args->width, "Decimals of the scores in the text report")->capture_default_str();
    cmd->callback([args]() { run_eval(*args); });
}

}  // namespace tolk
