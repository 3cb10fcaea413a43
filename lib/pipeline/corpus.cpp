// Window-by-window translation of streams and argument lists (see corpus.h).
#include "pipeline/corpus.h"

#include <algorithm>

#include "core/error.h"
#include "pipeline/interrupt.h"
#include "text/utf8.h"

namespace tolk {

size_t window_size(const StreamOptions& options, const TranslatorOptions& translator) {
    if (options.unbuffered) return 1;
    if (options.window_lines > 0) return options.window_lines;
    // Enough lines for every worker to get about 16 full batches: sorting a window by length only pays when
    // the window is much larger than a batch, and a bounded window keeps memory flat on endless streams.
    return std::max<size_t>(256, static_cast<size_t>(translator.limits.batch_size) * 16 *
                                     static_cast<size_t>(translator.workers));
}

namespace {

// Where a line came from, for warnings: "file.txt:12" or "argument 3".
using LabelFn = std::function<std::string(int64_t line_number)>;

struct WindowResult {
    size_t written = 0;
    bool stopped = false;
};

WindowResult process_window(Translator& translator, const std::vector<std::string>& raw, int64_t first_line_number,
                            const LabelFn& label, std::ostream& out, const StreamOptions& options,
                            Progress& progress, int64_t lines_written_before) {
    std::vector<InputRecord> records(raw.size());
    std::vector<std::string> texts(raw.size());
    for (size_t i = 0; i < raw.size(); ++i) {
        const int64_t number = first_line_number + static_cast<int64_t>(i);
        SanitizedText clean = sanitize_utf8(raw[i]);
        if (clean.invalid_sequences > 0) progress.warn(label(number) + ": invalid UTF-8 replaced with U+FFFD");
        if (options.input_format == Format::jsonl) {
            records[i] = parse_jsonl_record(clean.text, static_cast<size_t>(number));
            if (!records[i].problem.empty())
                progress.warn(label(number) + ": " + records[i].problem + "; writing an empty translation");
            // JSON escapes can still smuggle in control characters (\u0000).
            texts[i] = sanitize_utf8(records[i].text).text;
        } else {
            records[i].id_json = std::to_string(number);
            texts[i] = std::move(clean.text);
        }
    }

    TranslateHooks hooks;
    hooks.warn = [&](size_t index, const std::string& message) {
        progress.warn(label(first_line_number + static_cast<int64_t>(index)) + ": " + message);
    };
    hooks.cancel = &interrupt_flag();
    hooks.tick = [&] {
        // Lines finish in input order only at the end of a window; estimate them from the segments done.
        const auto estimate = static_cast<int64_t>(translator.call_progress() * static_cast<double>(raw.size()));
        progress.update(translator.stats(), lines_written_before + estimate);
    };
    const std::vector<LineTranslation> results = translator.translate(texts, hooks);

    WindowResult window;
    std::string buffer;
    for (size_t i = 0; i < results.size(); ++i) {
        if (!results[i].complete) {
            window.stopped = true;
            break;
        }
        const auto index = static_cast<size_t>(first_line_number - 1) + i;
        buffer += format_output(options.output, index, records[i], texts[i], results[i]);
        ++window.written;
    }
    out << buffer;
    out.flush();
    if (interrupted()) window.stopped = true;
    progress.update(translator.stats(), lines_written_before + static_cast<int64_t>(window.written));
    return window;
}

}  // namespace

Shard parse_shard(const std::string& text) {
    const auto slash = text.find('/');
    const auto number = [&](const std::string& part) -> long long {
        if (part.empty() || part.size() > 6 || part.find_first_not_of("0123456789") != std::string::npos) return -1;
        return std::stoll(part);
    };
    const long long k = slash == std::string::npos ? -1 : number(text.substr(0, slash));
    const long long n = slash == std::string::npos ? -1 : number(text.substr(slash + 1));
    TOLK_CHECK(k >= 1 && n >= 1 && k <= n, "--shard ", text, ": expected K/N with 1 <= K <= N (e.g. 2/8)");
    return {static_cast<int>(k), static_cast<int>(n)};
}

StreamTotals translate_stream(Translator& translator, LineReader& reader, std::ostream& out,
                              const StreamOptions& options, Progress& progress, int64_t lines_before) {
    StreamTotals totals;
    const size_t window = window_size(options, translator.options());
    const std::string name = reader.name();
    const LabelFn label = [&](int64_t n) { return name + ":" + std::to_string(n); };
    std::vector<std::string> lines;
    std::string line;
    // Skipping is only reading: a few hundred MB/s, so a resumed job gets back to work in seconds.
    int64_t skipped = 0;
    while (skipped < options.skip_lines && reader.next(line)) ++skipped;
    bool more = skipped == options.skip_lines;
    while (more) {
        size_t want = window;
        if (options.max_lines >= 0)
            want = static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(window), options.max_lines - totals.lines_read));
        if (want == 0) break;
        lines.clear();
        while (lines.size() < want && (more = reader.next(line))) lines.push_back(line);
        if (lines.empty()) break;
        const int64_t first = skipped + totals.lines_read + 1;
        totals.lines_read += static_cast<int64_t>(lines.size());
        const WindowResult result = process_window(translator, lines, first, label, out, options, progress,
                                                   lines_before + totals.lines_written);
        totals.lines_written += static_cast<int64_t>(result.written);
        if (options.on_written) options.on_written(totals.lines_written);
        if (result.stopped) break;
    }
    totals.interrupted = interrupted();
    return totals;
}

StreamTotals translate_texts(Translator& translator, const std::vector<std::string>& texts, std::ostream& out,
                             const StreamOptions& options, Progress& progress) {
    StreamTotals totals;
    const LabelFn label = [](int64_t n) { return "argument " + std::to_string(n); };
    StreamOptions as_text = options;
    as_text.input_format = Format::text;  // arguments are plain text even when the output is JSONL
    const size_t window = window_size(options, translator.options());
    for (size_t begin = 0; begin < texts.size(); begin += window) {
        const size_t end = std::min(texts.size(), begin + window);
        const std::vector<std::string> lines(texts.begin() + static_cast<std::ptrdiff_t>(begin),
                                             texts.begin() + static_cast<std::ptrdiff_t>(end));
        totals.lines_read += static_cast<int64_t>(lines.size());
        const WindowResult result = process_window(translator, lines, static_cast<int64_t>(begin) + 1, label, out,
                                                   as_text, progress, totals.lines_written);
        totals.lines_written += static_cast<int64_t>(result.written);
        if (result.stopped) break;
    }
    totals.interrupted = interrupted();
    return totals;
}

}  // namespace tolk
