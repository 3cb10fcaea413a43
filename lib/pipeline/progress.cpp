// Progress line, summary and warnings on stderr (see progress.h).
#include "pipeline/progress.h"

#include <algorithm>
#include <cmath>

namespace tolk {

Progress::Progress(ProgressOptions options, std::FILE* stream)
    : options_(options), stream_(stream), start_time_(std::chrono::steady_clock::now()) {}

void Progress::start(const TranslatorStats& stats, int64_t lines_before) {
    base_ = stats;
    lines_before_ = lines_before;
    start_time_ = std::chrono::steady_clock::now();
}

std::string Progress::duration_text(double seconds) {
    const auto s = static_cast<int64_t>(std::llround(std::max(seconds, 0.0)));
    char buffer[48];
    if (s >= 3600)
        std::snprintf(buffer, sizeof buffer, "%lldh%02lldm", static_cast<long long>(s / 3600),
                      static_cast<long long>(s / 60 % 60));
    else if (s >= 60)
        std::snprintf(buffer, sizeof buffer, "%lldm%02llds", static_cast<long long>(s / 60),
                      static_cast<long long>(s % 60));
    else
        std::snprintf(buffer, sizeof buffer, "%llds", static_cast<long long>(s));
    return buffer;
}

std::string Progress::summary_text(int64_t lines, const TranslatorStats& delta, double seconds) {
    const double rate = seconds > 0 ? static_cast<double>(delta.target_tokens) / seconds : 0.0;
    char sentences[96];
    if (delta.reused > 0)  // tokens below count the model's work: the translated sentences only
        std::snprintf(sentences, sizeof sentences, "%lld sentences (%lld translated, %lld reused)",
                      static_cast<long long>(delta.sentences + delta.reused), static_cast<long long>(delta.sentences),
                      static_cast<long long>(delta.reused));
    else
        std::snprintf(sentences, sizeof sentences, "%lld sentences", static_cast<long long>(delta.sentences));
    char buffer[320];
    std::snprintf(buffer, sizeof buffer, "%lld lines, %s, %lld source + %lld target tokens in %.1f s (%.0f target tokens/s)",
                  static_cast<long long>(lines), sentences, static_cast<long long>(delta.source_tokens),
                  static_cast<long long>(delta.target_tokens), seconds, rate);
    return buffer;
}

void Progress::clear_line() {
    if (!line_shown_) return;
    std::fputs("\r\033[K", stream_);
    line_shown_ = false;
}

void Progress::update(const TranslatorStats& stats, int64_t lines_written) {
    if (!options_.live) return;
    const auto now = std::chrono::steady_clock::now();
    if (line_shown_ && now - last_draw_ < std::chrono::milliseconds(200)) return;
    last_draw_ = now;
    const double seconds = std::chrono::duration<double>(now - start_time_).count();
    const double sentences_per_s =
        seconds > 0 ? static_cast<double>(stats.sentences - base_.sentences) / seconds : 0.0;
    const double tokens_per_s =
        seconds > 0 ? static_cast<double>(stats.target_tokens - base_.target_tokens) / seconds : 0.0;
    const std::string line = "tolk: " + progress_text(label_, lines_written, total_lines_, lines_before_, seconds,
                                                      sentences_per_s, tokens_per_s);
    std::fputs("\r\033[K", stream_);
    std::fputs(line.c_str(), stream_);
    std::fflush(stream_);
    line_shown_ = true;
}

std::string Progress::progress_text(const std::string& label, int64_t lines_written, std::optional<int64_t> total,
                                    int64_t lines_before, double seconds, double sentences_per_s,
                                    double tokens_per_s) {
    std::string line = label.empty() ? "" : label + ": ";
    line += std::to_string(lines_written);
    if (total && *total > 0) {
        const double fraction = static_cast<double>(lines_written) / static_cast<double>(*total);
        char buffer[64];
        std::snprintf(buffer, sizeof buffer, "/%lld lines (%.0f%%)", static_cast<long long>(*total), 100.0 * fraction);
        line += buffer;
        // The time left at this run's own speed: lines an earlier run finished took none of its time.
        const int64_t this_run = lines_written - lines_before;
        if (this_run > 0 && lines_written < *total && seconds > 0)
            line += ", ETA " + duration_text(seconds * static_cast<double>(*total - lines_written) /
                                             static_cast<double>(this_run));
    } else {
        line += " lines";
    }
    char rates[96];
    std::snprintf(rates, sizeof rates, ", %.1f sentences/s, %.0f tokens/s", sentences_per_s, tokens_per_s);
    return line + rates;
}

void Progress::warn(const std::string& message) {
    clear_line();
    std::fprintf(stream_, "tolk: warning: %s\n", message.c_str());
    std::fflush(stream_);
}

void Progress::finish(const TranslatorStats& stats, int64_t lines_written) {
    clear_line();
    if (!options_.summary) return;
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time_).count();
    const TranslatorStats delta{stats.lines - base_.lines, stats.sentences - base_.sentences,
                                stats.source_tokens - base_.source_tokens, stats.target_tokens - base_.target_tokens,
                                stats.reused - base_.reused};
    // lines_written counts the job (an earlier run's lines included); the summary is about this run.
    std::string text = summary_text(lines_written - lines_before_, delta, seconds);
    if (lines_before_ > 0) text += "; resumed after " + std::to_string(lines_before_) + " lines";
    if (!label_.empty()) text = label_ + ": " + text;
    std::fprintf(stream_, "tolk: %s\n", text.c_str());
    std::fflush(stream_);
}

}  // namespace tolk
