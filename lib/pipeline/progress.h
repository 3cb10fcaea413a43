// Everything the pipeline writes to stderr: warnings, the live progress line (terminal only) and the end
// summary. Nothing here ever touches stdout.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

#include "pipeline/translator.h"

namespace tolk {

struct ProgressOptions {
    bool live = false;     // redraw a progress line in place (only sensible when stderr is a terminal)
    bool summary = false;  // print the one-line summary at the end
};

class Progress {
public:
    explicit Progress(ProgressOptions options, std::FILE* stream = stderr);

    // Lines expected in total, when the inputs are regular files; enables the percentage and the ETA.
    void set_total_lines(std::optional<int64_t> total) { total_lines_ = total; }
    // Records the translator's counters at the start, so rates count only this run.
    void start(const TranslatorStats& stats);
    // Redraws the progress line if live and at least 200 ms passed since the last redraw.
    void update(const TranslatorStats& stats, int64_t lines_written);
    // "tolk: warning: <message>" on its own line, clearing the progress line first.
    void warn(const std::string& message);
    // Clears the progress line and, if enabled, prints the summary.
    void finish(const TranslatorStats& stats, int64_t lines_written);

    // The summary text (without "tolk: " and newline), exposed for tests.
    static std::string summary_text(int64_t lines, const TranslatorStats& delta, double seconds);
    // "1m05s", "2h03m", "7s".
    static std::string duration_text(double seconds);

private:
    void clear_line();

    ProgressOptions options_;
    std::FILE* stream_;
    std::optional<int64_t> total_lines_;
    TranslatorStats base_{};
    std::chrono::steady_clock::time_point start_time_;
    std::chrono::steady_clock::time_point last_draw_{};
    bool line_shown_ = false;
};

}  // namespace tolk
