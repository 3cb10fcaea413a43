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
    // Input lines read and dropped before translating (a resumed job, a shard). Line numbers in warnings, n-best
    // indices and default JSONL ids stay those of the whole input, so the output does not depend on the skip.
    int64_t skip_lines = 0;
    // Most lines translated after the skip (a shard's end); -1: to the end of the input.
    int64_t max_lines = -1;
    // Called after each window's lines are written and flushed, with the lines written so far by this call
    // (a resumable output checkpoints there).
    std::function<void(int64_t lines_written)> on_written;
};

// A contiguous part of the input: shard K of N covers lines [begin, end) (0-based) of an input of L lines, with
// begin = (K-1)*L/N and end = K*L/N rounded down, so the shards of 1..N concatenate to the whole input and
// differ in size by at most one line.
struct Shard {
    int index = 1;  // K, 1-based
    int count = 1;  // N
    // N is at most 999,999 (parse_shard), so K*L fits in 64 bits for any input under 9 trillion lines.
    int64_t begin(int64_t lines) const { return (index - 1) * lines / count; }
    int64_t end(int64_t lines) const { return index * lines / count; }
};
// Parses "K/N" (1 <= K <= N <= 999999); throws tolk::Error naming --shard otherwise.
Shard parse_shard(const std::string& text);

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
