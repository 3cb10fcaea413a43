// sacreBLEU's 13a tokenizer on code points (the regexes only name ASCII characters, but "non-digit"
// must cover a whole code point, and the final whitespace split uses Python's Unicode whitespace).
#include "eval/tokenizer_13a.h"

#include "eval/unicode_text.h"

namespace tolk {

namespace {

// Python's str.replace: every non-overlapping occurrence, scanning left to right.
void replace_all(std::u32string& s, std::u32string_view from, std::u32string_view to) {
    if (s.find(from) == std::u32string::npos) return;
    std::u32string out;
    out.reserve(s.size());
    size_t pos = 0;
    while (true) {
        const size_t hit = s.find(from, pos);
        if (hit == std::u32string::npos) break;
        out.append(s, pos, hit - pos);
        out.append(to);
        pos = hit + from.size();
    }
    out.append(s, pos, std::u32string::npos);
    s = std::move(out);
}

bool is_ascii_digit(char32_t c) { return c >= U'0' && c <= U'9'; }
bool is_period_or_comma(char32_t c) { return c == U'.' || c == U','; }

// The character class of 13a's first rule: [{-~] [[-`] [ -&] [(-+] [:-@] and '/'.
bool is_13a_symbol(char32_t c) {
    return (c >= U'{' && c <= U'~') || (c >= U'[' && c <= U'`') || (c >= U' ' && c <= U'&') ||
           (c >= U'(' && c <= U'+') || (c >= U':' && c <= U'@') || c == U'/';
}

// re.sub for a pattern of two single-character classes `(A)(B)`: scan left to right, and after a match
// resume right after its second character (matches never overlap).
template <typename MatchA, typename MatchB, typename Emit>
std::u32string sub_pairs(const std::u32string& s, MatchA match_a, MatchB match_b, Emit emit) {
    std::u32string out;
    out.reserve(s.size() + s.size() / 4);
    size_t i = 0;
    while (i < s.size()) {
        if (i + 1 < s.size() && match_a(s[i]) && match_b(s[i + 1])) {
            emit(out, s[i], s[i + 1]);
            i += 2;
        } else {
            out.push_back(s[i]);
            ++i;
        }
    }
    return out;
}

}  // namespace

std::string tokenize_13a(std::string_view line) {
    std::u32string s = utf8_to_u32(line);

    // Language-independent part (mteval-v13a's SGML clean-up).
    replace_all(s, U"<skipped>", U"");
    replace_all(s, U"-\n", U"");
    replace_all(s, U"\n", U" ");
    replace_all(s, U"&quot;", U"\"");
    replace_all(s, U"&amp;", U"&");
    replace_all(s, U"&lt;", U"<");
    replace_all(s, U"&gt;", U">");

    // Pad with spaces so the pair rules below see a neighbour at both ends, as sacreBLEU does.
    std::u32string padded;
    padded.reserve(s.size() * 2 + 2);
    padded.push_back(U' ');
    for (char32_t c : s) {
        if (is_13a_symbol(c)) {
            padded.push_back(U' ');
            padded.push_back(c);
            padded.push_back(U' ');
        } else {
            padded.push_back(c);
        }
    }
    padded.push_back(U' ');

    const auto not_digit = [](char32_t c) { return !is_ascii_digit(c); };
    // Period and comma unless preceded by a digit: "(x)([.,])" -> "x . " / "x , ".
    s = sub_pairs(padded, not_digit, is_period_or_comma, [](std::u32string& out, char32_t a, char32_t b) {
        out.push_back(a);
        out.push_back(U' ');
        out.push_back(b);
        out.push_back(U' ');
    });
    // Period and comma unless followed by a digit: "([.,])(x)" -> " . x".
    s = sub_pairs(s, is_period_or_comma, not_digit, [](std::u32string& out, char32_t a, char32_t b) {
        out.push_back(U' ');
        out.push_back(a);
        out.push_back(U' ');
        out.push_back(b);
    });
    // Dash after a digit: "([0-9])(-)" -> "9 - ".
    s = sub_pairs(s, is_ascii_digit, [](char32_t c) { return c == U'-'; },
                  [](std::u32string& out, char32_t a, char32_t b) {
                      out.push_back(a);
                      out.push_back(U' ');
                      out.push_back(b);
                      out.push_back(U' ');
                  });

    std::u32string joined;
    joined.reserve(s.size());
    for (const auto& word : split_py_whitespace(s)) {
        if (!joined.empty()) joined.push_back(U' ');
        joined += word;
    }
    return u32_to_utf8(joined);
}

}  // namespace tolk
