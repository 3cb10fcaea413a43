// Corpus and stream driver: reads input in windows of lines, sanitises them, translates each window through
// the Translator (length-sorted batches), and writes the results in input order in the chosen format.
#pragma once

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "pipeline/file_io.h"
#include "pipeline/formats.h"
#include "pipeline/progress.h"
#include "pipeline/translator.h"

namespace tolk {

struct StreamOptions {
    Format input_format = Format::text;  // text or jsonl
    OutputOptions output;
    // Lines read, sorted and batched together. Larger windows batch better; 0: 16 full batches per worker.
    size_t window_lines = 0;
    // Translate and flush each line as soon as it arrives (interactive callers, pipes that wait for answers).
    bool unbuffered = false;
};

struct StreamTotals {
    int64_t lines_read = 0;
    int64_t lines_written = 0;
    bool interrupted = false;  // stopped by SIGINT: the lines written are the complete ones, in order
};

// Lines per window for these options (see StreamOptions::window_lines).
size_t window_size(const StreamOptions& options, const TranslatorOptions& translator);

// Translates every line `reader` yields into `out`; one record per input line, in order. Warnings name the
// input and line ("notes.txt:17: invalid UTF-8 replaced with U+FFFD"). Stops early, after flushing the
// complete lines, when interrupted() becomes true.
StreamTotals translate_stream(Translator& translator, LineReader& reader, std::ostream& out,
                              const StreamOptions& options, Progress& progress, int64_t lines_before = 0);

// Translates each text as one input line (command-line arguments); warnings name "argument N".
StreamTotals translate_texts(Translator& translator, const std::vector<std::string>& texts, std::ostream& out,
                             const StreamOptions& options, Progress& progress);

}  // namespace tolk
