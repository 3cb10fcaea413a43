// UTF-8 decoding, Python-compatible whitespace handling and ICU lowercasing for the metrics.
#include "eval/unicode_text.h"

#include <unicode/locid.h>
#include <unicode/unistr.h>

#include "core/error.h"

namespace tolk {

namespace {

// Length of the sequence a lead byte starts, or 0 when the byte cannot start one.
int utf8_sequence_length(unsigned char lead) {
    if (lead < 0x80) return 1;
    if (lead >= 0xC2 && lead <= 0xDF) return 2;
    if (lead >= 0xE0 && lead <= 0xEF) return 3;
    if (lead >= 0xF0 && lead <= 0xF4) return 4;
    return 0;
}

// Decodes one code point at `pos`; returns false on malformed input (then `cp` is unspecified).
bool decode_one(std::string_view s, size_t pos, char32_t& cp, int& len) {
    const auto lead = static_cast<unsigned char>(s[pos]);
    len = utf8_sequence_length(lead);
    if (len == 0 || pos + static_cast<size_t>(len) > s.size()) return false;
    if (len == 1) {
        cp = lead;
        return true;
    }
    cp = lead & (0x7F >> len);
    for (int i = 1; i < len; ++i) {
        const auto b = static_cast<unsigned char>(s[pos + i]);
        if ((b & 0xC0) != 0x80) return false;
        cp = (cp << 6) | (b & 0x3F);
    }
    // Reject overlong 3/4-byte forms, UTF-16 surrogates and values past U+10FFFF.
    if (len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) return false;
    if (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) return false;
    return true;
}

}  // namespace

bool is_valid_utf8(std::string_view text, size_t* bad_offset) {
    size_t pos = 0;
    while (pos < text.size()) {
        char32_t cp;
        int len;
        if (!decode_one(text, pos, cp, len)) {
            if (bad_offset) *bad_offset = pos;
            return false;
        }
        pos += static_cast<size_t>(len);
    }
    return true;
}

std::u32string utf8_to_u32(std::string_view text) {
    std::u32string out;
    out.reserve(text.size());
    size_t pos = 0;
    while (pos < text.size()) {
        char32_t cp;
        int len;
        if (!decode_one(text, pos, cp, len)) TOLK_FAIL("invalid UTF-8 at byte offset ", pos);
        out.push_back(cp);
        pos += static_cast<size_t>(len);
    }
    return out;
}

std::string u32_to_utf8(std::u32string_view text) {
    std::string out;
    out.reserve(text.size());
    for (char32_t c : text) {
        if (c < 0x80) {
            out.push_back(static_cast<char>(c));
        } else if (c < 0x800) {
            out.push_back(static_cast<char>(0xC0 | (c >> 6)));
            out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
        } else if (c < 0x10000) {
            out.push_back(static_cast<char>(0xE0 | (c >> 12)));
            out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
            out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
        } else {
            out.push_back(static_cast<char>(0xF0 | (c >> 18)));
            out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
            out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
            out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
        }
    }
    return out;
}

bool is_py_space(char32_t c) {
    if (c <= 0x20) return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20);
    switch (c) {
        case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029:
        case 0x202F: case 0x205F: case 0x3000:
            return true;
        default:
            return c >= 0x2000 && c <= 0x200A;
    }
}

std::vector<std::u32string> split_py_whitespace(std::u32string_view text) {
    std::vector<std::u32string> words;
    size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && is_py_space(text[i])) ++i;
        const size_t start = i;
        while (i < text.size() && !is_py_space(text[i])) ++i;
        if (i > start) words.emplace_back(text.substr(start, i - start));
    }
    return words;
}

std::vector<std::string> split_py_whitespace(std::string_view utf8) {
    std::vector<std::string> words;
    for (const auto& w : split_py_whitespace(utf8_to_u32(utf8))) words.push_back(u32_to_utf8(w));
    return words;
}

std::string rstrip_py_whitespace(std::string_view utf8) {
    std::u32string text = utf8_to_u32(utf8);
    size_t end = text.size();
    while (end > 0 && is_py_space(text[end - 1])) --end;
    text.resize(end);
    return u32_to_utf8(text);
}

std::u32string remove_py_whitespace(std::u32string_view text) {
    std::u32string out;
    out.reserve(text.size());
    for (char32_t c : text)
        if (!is_py_space(c)) out.push_back(c);
    return out;
}

std::string to_lower_unicode(std::string_view utf8) {
    TOLK_CHECK(is_valid_utf8(utf8), "lowercasing: text is not valid UTF-8");
    icu::UnicodeString u = icu::UnicodeString::fromUTF8(icu::StringPiece(utf8.data(), static_cast<int32_t>(utf8.size())));
    // The root locale gives the language-independent full mapping Python's str.lower() applies
    // (e.g. U+0130 -> "i" + U+0307, final sigma -> U+03C2).
    u.toLower(icu::Locale::getRoot());
    std::string out;
    u.toUTF8String(out);
    return out;
}

}  // namespace tolk
