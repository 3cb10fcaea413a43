// Text primitives the metrics need to match sacreBLEU (Python str semantics): UTF-8 <-> code points,
// Python's notion of whitespace (str.split / str.rstrip), and Unicode lowercasing (str.lower) via ICU.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tolk {

// Decodes UTF-8 into code points. Throws tolk::Error on malformed input (overlong forms, surrogates,
// truncated sequences), as Python would refuse to decode such a file.
std::u32string utf8_to_u32(std::string_view text);
std::string u32_to_utf8(std::u32string_view text);
// True when `text` is well-formed UTF-8; `bad_offset` (if given) receives the first bad byte's offset.
bool is_valid_utf8(std::string_view text, size_t* bad_offset = nullptr);

// Python's str.isspace(): general category Zs or bidirectional class WS, B or S. That is the set
// str.split() and str.rstrip() use, so NO-BREAK SPACE and U+3000 separate words, as in sacreBLEU.
bool is_py_space(char32_t c);

// str.split() with no arguments: runs of whitespace separate, no empty pieces.
std::vector<std::u32string> split_py_whitespace(std::u32string_view text);
std::vector<std::string> split_py_whitespace(std::string_view utf8);
// str.rstrip() with no arguments.
std::string rstrip_py_whitespace(std::string_view utf8);
// ''.join(text.split()): every whitespace character removed.
std::u32string remove_py_whitespace(std::u32string_view text);

// str.lower(): full Unicode lowercase mapping (language-independent, final sigma aware).
std::string to_lower_unicode(std::string_view utf8);

}  // namespace tolk
