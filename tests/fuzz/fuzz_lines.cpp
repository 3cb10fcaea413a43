// libFuzzer target: the input side of a run. Bytes are read by LineReader (with a small line limit, so cutting is
// exercised), sanitised, parsed as JSONL records, and written back through every output format.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "pipeline/file_io.h"
#include "pipeline/formats.h"
#include "text/utf8.h"

namespace {

int memory_file() {
    static const int fd = ::memfd_create("tolk_fuzz_lines", 0);
    return fd;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const int fd = memory_file();
    if (fd < 0 || ::ftruncate(fd, 0) != 0) return 0;
    if (size && ::pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)) return 0;
    try {
        tolk::LineReader reader("/proc/self/fd/" + std::to_string(fd), 257);
        reader.set_warning_handler([](const std::string&) {});
        std::string line;
        size_t index = 0;
        while (reader.next(line)) {
            if (line.size() > 257) __builtin_trap();
            const tolk::SanitizedText clean = tolk::sanitize_utf8(line);
            if (!tolk::is_valid_utf8(clean.text)) __builtin_trap();
            const tolk::InputRecord record = tolk::parse_jsonl_record(clean.text, index + 1);
            const std::string text = tolk::sanitize_utf8(record.text).text;
            tolk::LineTranslation translation;
            tolk::SegmentHypothesis best;
            best.text = text;
            best.score = -static_cast<float>(text.size()) / 7.0f;
            best.tokens = {text.substr(0, text.size() / 2), "\xE2\x96\x81"};
            translation.nbest = {best, best};
            for (const tolk::Format format : {tolk::Format::text, tolk::Format::jsonl, tolk::Format::tsv}) {
                tolk::OutputOptions options;
                options.format = format;
                options.nbest = static_cast<int>(index % 3) + 1;
                options.scores = index % 2 == 0;
                options.tokens = format == tolk::Format::jsonl;
                const std::string out = tolk::format_output(options, index, record, text, translation);
                // One record is one physical line in jsonl and tsv.
                if (format != tolk::Format::text && out.find('\n') != out.size() - 1) __builtin_trap();
            }
            ++index;
        }
    } catch (const tolk::Error&) {
    }
    return 0;
}
