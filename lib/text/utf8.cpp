// UTF-8 validation and repair of untrusted input (see utf8.h).
#include "text/utf8.h"

#include <cstdint>

namespace tolk {

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Length of the well-formed sequence starting at `pos`, or 0 when it is invalid; `subpart` then receives the
// length of the maximal invalid subpart (at least 1) that one U+FFFD replaces.
size_t sequence_length(std::string_view s, size_t pos, size_t& subpart) {
    const auto byte = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
    const uint8_t lead = byte(pos);
    subpart = 1;
    if (lead < 0x80) return 1;
    size_t need = 0;
    uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte; later bytes are always 80..BF
    if (lead >= 0xC2 && lead <= 0xDF) {
        need = 1;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        need = 2;
        if (lead == 0xE0) lo = 0xA0;  // no overlong 3-byte forms
        if (lead == 0xED) hi = 0x9F;  // no UTF-16 surrogates
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        need = 3;
        if (lead == 0xF0) lo = 0x90;  // no overlong 4-byte forms
        if (lead == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
    } else {
        return 0;  // stray continuation byte, C0/C1 overlong lead, or F5..FF
    }
    for (size_t k = 1; k <= need; ++k) {
        if (pos + k >= s.size()) return 0;
        const uint8_t b = byte(pos + k);
        const bool ok = k == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
        if (!ok) return 0;
        subpart = k + 1;
    }
    return need + 1;
}

}  // namespace

SanitizedText sanitize_utf8(std::string_view bytes) {
    SanitizedText out;
    out.text.reserve(bytes.size());
    size_t pos = 0;
    while (pos < bytes.size()) {
        size_t subpart = 1;
        const size_t len = sequence_length(bytes, pos, subpart);
        if (len == 0) {
            out.text += kReplacement;
            ++out.invalid_sequences;
            pos += subpart;
            continue;
        }
        const auto b0 = static_cast<uint8_t>(bytes[pos]);
        const bool c0_or_del = len == 1 && ((b0 < 0x20 && b0 != '\t') || b0 == 0x7F);
        const bool c1 = len == 2 && b0 == 0xC2 && static_cast<uint8_t>(bytes[pos + 1]) < 0xA0;
        if (c0_or_del || c1) {
            out.text += ' ';
            ++out.control_chars;
        } else {
            out.text.append(bytes.substr(pos, len));
        }
        pos += len;
    }
    return out;
}

bool is_valid_utf8(std::string_view bytes) {
    size_t pos = 0;
    while (pos < bytes.size()) {
        size_t subpart = 1;
        const size_t len = sequence_length(bytes, pos, subpart);
        if (len == 0) return false;
        pos += len;
    }
    return true;
}

size_t utf8_length(std::string_view text) {
    size_t n = 0;
    for (const char c : text)
        if ((static_cast<uint8_t>(c) & 0xC0) != 0x80) ++n;
    return n;
}

std::string_view utf8_prefix(std::string_view text, size_t max_bytes) {
    if (text.size() <= max_bytes) return text;
    size_t end = max_bytes;
    while (end > 0 && (static_cast<uint8_t>(text[end]) & 0xC0) == 0x80) --end;
    return text.substr(0, end);
}

}  // namespace tolk
