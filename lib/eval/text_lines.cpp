// Line reading for `tolk eval`: '\n'-separated UTF-8 lines with trailing whitespace stripped.
#include "eval/text_lines.h"

#include <fstream>
#include <iostream>

#include "core/error.h"
#include "eval/unicode_text.h"

namespace tolk {

std::vector<std::string> read_text_lines(std::istream& in, const std::string& name) {
    std::vector<std::string> lines;
    std::string line;
    while (std::getline(in, line)) {
        size_t bad = 0;
        TOLK_CHECK(is_valid_utf8(line, &bad), name, " line ", lines.size() + 1, ": invalid UTF-8 at byte ", bad + 1);
        lines.push_back(rstrip_py_whitespace(line));
    }
    TOLK_CHECK(in.eof(), name, ": read error after line ", lines.size());
    return lines;
}

std::vector<std::string> read_text_lines(const std::string& path) {
    if (path == "-") return read_text_lines(std::cin, "<stdin>");
    std::ifstream in(path, std::ios::binary);
    TOLK_CHECK(in.is_open(), path, ": cannot open file for reading");
    return read_text_lines(in, path);
}

}  // namespace tolk
