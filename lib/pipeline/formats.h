// Input records (plain text lines or JSONL {"id", "text"}) and output formatting (text, JSONL, TSV).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "pipeline/translator.h"

namespace tolk {

enum class Format { text, jsonl, tsv };

// "text", "jsonl" or "tsv"; anything else throws naming `option`.
Format parse_format(std::string_view name, std::string_view option);
std::string_view format_name(Format format);

struct InputRecord {
    std::string id_json;   // the record's id as JSON text (JSONL "id", else the 1-based line number)
    std::string text;      // raw text, not yet sanitised
    std::string problem;   // non-empty when a JSONL line could not be used (the text is then empty)
};

// Parses one JSONL input line: an object with a string "text" and an optional "id" of any JSON type. A line
// that is not such an object gives an empty text and a problem description; the id falls back to `line_number`.
InputRecord parse_jsonl_record(std::string_view line, size_t line_number);

struct OutputOptions {
    Format format = Format::text;
    bool scores = false;  // add the score (text: "N ||| translation ||| score"; jsonl: "score"; tsv: a column)
    int nbest = 1;        // > 1: show that many hypotheses with scores
    bool tokens = false;  // jsonl: add "tokens", the target pieces of the best hypothesis
};

// The output for one input record, with its trailing newline. text: one line per input line, except with
// --nbest > 1 or --scores, which use the n-best convention of Moses and Marian, "N ||| translation ||| score"
// (N: 0-based index of the input line), one line per hypothesis. jsonl and tsv: always exactly one line.
// `index`: 0-based index of the record in its input; `source`: the sanitised source text (TSV echoes it).
std::string format_output(const OutputOptions& options, size_t index, const InputRecord& record,
                          std::string_view source, const LineTranslation& translation);

}  // namespace tolk
