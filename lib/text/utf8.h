// UTF-8 sanitising for untrusted input lines: invalid byte sequences become U+FFFD, control characters become
// spaces, so that everything downstream (ICU, SentencePiece, JSON output) only ever sees valid, printable UTF-8.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace tolk {

struct SanitizedText {
    std::string text;
    int invalid_sequences = 0;  // maximal invalid subparts replaced by U+FFFD
    int control_chars = 0;      // C0/C1 controls (NUL included) and DEL replaced by a space
};

// Replaces each maximal invalid subpart (Unicode 15, section 3.9, "U+FFFD substitution of maximal subparts",
// the convention ICU and WHATWG follow) by U+FFFD, and each control character except TAB by a space.
// Overlong forms, surrogates (ED A0..BF) and code points above U+10FFFF count as invalid.
SanitizedText sanitize_utf8(std::string_view bytes);

// True when `bytes` is well-formed UTF-8.
bool is_valid_utf8(std::string_view bytes);

// Number of code points in valid UTF-8 text.
size_t utf8_length(std::string_view text);

// The longest prefix of valid UTF-8 `text` that has at most `max_bytes` bytes and ends on a code point boundary.
std::string_view utf8_prefix(std::string_view text, size_t max_bytes);

}  // namespace tolk
