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

    // Lines expected in total, when the inputs are regular files; enables the percentage and the ETA. For a
    // resumed job this is the whole job (the lines an earlier run finished included); for a shard, the shard.
    void set_total_lines(std::optional<int64_t> total) { total_lines_ = total; }
    // Shown before the counts, e.g. "shard 2/4".
    void set_label(std::string label) { label_ = std::move(label); }
    // Records the translator's counters at the start, so rates count only this run. `lines_before`: lines of
    // the job an earlier run already finished (resume); they count as done but not into this run's speed.
    void start(const TranslatorStats& stats, int64_t lines_before = 0);
    // Redraws the progress line if live and at least 200 ms passed since the last redraw.
    void update(const TranslatorStats& stats, int64_t lines_written);
    // "tolk: warning: <message>" on its own line, clearing the progress line first.
    void warn(const std::string& message);
    // Clears the progress line and, if enabled, prints the summary.
    void finish(const TranslatorStats& stats, int64_t lines_written);

    // The summary text (without "tolk: " and newline), exposed for tests. `lines`: lines this run wrote.
    static std::string summary_text(int64_t lines, const TranslatorStats& delta, double seconds);
    // The progress line's text (without "tolk: "), exposed for tests.
    static std::string progress_text(const std::string& label, int64_t lines_written, std::optional<int64_t> total,
                                     int64_t lines_before, double seconds, double sentences_per_s,
                                     double tokens_per_s);
    // "1m05s", "2h03m", "7s".
    static std::string duration_text(double seconds);

private:
    void clear_line();

    ProgressOptions options_;
    std::FILE* stream_;
    std::optional<int64_t> total_lines_;
    std::string label_;
    int64_t lines_before_ = 0;
    TranslatorStats base_{};
    std::chrono::steady_clock::time_point start_time_;
    std::chrono::steady_clock::time_point last_draw_{};
    bool line_shown_ = false;
};

}  // namespace tolk
