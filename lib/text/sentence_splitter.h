// Splits a line into sentences with ICU's sentence break iterator (UAX #29 rules plus ICU's per-language
// abbreviation suppressions) and tolk's own abbreviation lists for en, de and fr, so "Mr. Smith", "the U.S.
// Senate" and "z. B. Äpfel" stay one sentence; keeps the whitespace between sentences.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <unicode/uversion.h>

U_NAMESPACE_BEGIN
class BreakIterator;
U_NAMESPACE_END

namespace tolk {

struct Sentence {
    std::string text;       // the sentence without surrounding whitespace; never empty
    std::string separator;  // whitespace that followed it in the line ("" after the last one)
};

// Not thread-safe (ICU break iterators keep state); give each thread its own splitter.
class SentenceSplitter {
public:
    // `language`: ISO 639 code of the source text ("en", "de", ...); selects ICU's abbreviation list. Unknown or
    // empty languages fall back to the root rules.
    explicit SentenceSplitter(const std::string& language = "en");
    ~SentenceSplitter();
    SentenceSplitter(const SentenceSplitter&) = delete;
    SentenceSplitter& operator=(const SentenceSplitter&) = delete;

    // `text` must be valid UTF-8 (see sanitize_utf8). Leading and trailing whitespace is dropped; a text that is
    // only whitespace gives no sentences.
    std::vector<Sentence> split(std::string_view text);

private:
    std::string language_;  // ISO 639 code: picks the abbreviation list joined back after ICU's breaks
    std::unique_ptr<icu::BreakIterator> iterator_;
};

// True for the whitespace characters the splitter trims: ASCII space and tab, and Unicode spaces (Zs,
// U+2028/U+2029, U+0085 and the ideographic space included).
bool is_space_at(std::string_view text, size_t pos, size_t& length);

// `text` without leading and trailing whitespace (as is_space_at defines it).
std::string_view trim_spaces(std::string_view text);

}  // namespace tolk
