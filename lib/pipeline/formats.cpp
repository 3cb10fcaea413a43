// Input record parsing and output formatting (see formats.h).
#include "pipeline/formats.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/json_file.h"

namespace tolk {

Format parse_format(std::string_view name, std::string_view option) {
    if (name == "text") return Format::text;
    if (name == "jsonl") return Format::jsonl;
    if (name == "tsv") return Format::tsv;
    TOLK_FAIL(option, ": unknown format '", name, "' (expected text, jsonl or tsv)");
}

std::string_view format_name(Format format) {
    switch (format) {
        case Format::text: return "text";
        case Format::jsonl: return "jsonl";
        case Format::tsv: return "tsv";
    }
    return "text";
}

InputRecord parse_jsonl_record(std::string_view line, size_t line_number) {
    InputRecord record;
    record.id_json = std::to_string(line_number);
    nlohmann::json json;
    try {
        // Bounded depth: an id nested 100,000 deep would otherwise overflow the stack when it is written back.
        json = parse_json(line, "JSON");
    } catch (const Error& e) {
        const std::string what = e.what();
        record.problem = what.find("nested deeper") == std::string::npos
                             ? "not a JSON object"
                             : "not a JSON object (nested deeper than " + std::to_string(kMaxJsonDepth) + " levels)";
        return record;
    }
    if (!json.is_object()) {
        record.problem = "not a JSON object";
        return record;
    }
    if (const auto id = json.find("id"); id != json.end())
        record.id_json = id->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    const auto text = json.find("text");
    if (text == json.end() || !text->is_string()) {
        record.problem = "no string field \"text\"";
        return record;
    }
    record.text = text->get<std::string>();
    return record;
}

namespace {

// Keeps every record on one physical line (and TSV columns apart) whatever the model generated.
std::string one_line(std::string_view text, bool tabs_too) {
    std::string out(text);
    for (char& c : out)
        if (c == '\n' || c == '\r' || (tabs_too && c == '\t')) c = ' ';
    return out;
}

std::string score_text(float score) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.4f", static_cast<double>(score));
    return buffer;
}

// Scores in JSON: rounded to 6 decimals, so that the float does not print as a 17-digit double.
double json_score(float score) { return std::round(static_cast<double>(score) * 1e6) / 1e6; }

}  // namespace

std::string format_output(const OutputOptions& options, size_t index, const InputRecord& record,
                          std::string_view source, const LineTranslation& translation) {
    static const SegmentHypothesis empty;
    const SegmentHypothesis& best = translation.nbest.empty() ? empty : translation.nbest.front();
    const size_t shown = std::min<size_t>(static_cast<size_t>(std::max(options.nbest, 1)),
                                          std::max<size_t>(translation.nbest.size(), 1));
    const auto hypothesis = [&](size_t k) -> const SegmentHypothesis& {
        return k < translation.nbest.size() ? translation.nbest[k] : empty;
    };
    std::string out;
    switch (options.format) {
        case Format::text:
            if (options.nbest > 1 || options.scores) {
                for (size_t k = 0; k < shown; ++k) {
                    out += std::to_string(index) + " ||| " + one_line(hypothesis(k).text, false) + " ||| " +
                           score_text(hypothesis(k).score) + "\n";
                }
            } else {
                out = one_line(best.text, false) + "\n";
            }
            break;
        case Format::tsv:
            out = one_line(source, true) + "\t" + one_line(best.text, true);
            if (options.scores || options.nbest > 1) out += "\t" + score_text(best.score);
            for (size_t k = 1; k < shown; ++k)
                out += "\t" + one_line(hypothesis(k).text, true) + "\t" + score_text(hypothesis(k).score);
            out += "\n";
            break;
        case Format::jsonl: {
            nlohmann::ordered_json json;
            json["id"] = nlohmann::ordered_json::parse(record.id_json, nullptr, false);
            if (json["id"].is_discarded()) json["id"] = index + 1;
            json["translation"] = best.text;
            if (options.scores || options.nbest > 1) json["score"] = json_score(best.score);
            if (options.nbest > 1) {
                auto list = nlohmann::ordered_json::array();
                for (size_t k = 0; k < shown; ++k)
                    list.push_back({{"translation", hypothesis(k).text}, {"score", json_score(hypothesis(k).score)}});
                json["nbest"] = std::move(list);
            }
            if (options.tokens) json["tokens"] = best.tokens;
            out = json.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
            break;
        }
    }
    return out;
}

}  // namespace tolk
