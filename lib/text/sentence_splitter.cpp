// Sentence splitting on ICU's BreakIterator over a UTF-8 UText (no UTF-16 copy of the line).
#include "text/sentence_splitter.h"

#include <unicode/brkiter.h>
#include <unicode/locid.h>
#include <unicode/uchar.h>
#include <unicode/utext.h>
#include <unicode/utf8.h>

#include "core/error.h"

namespace tolk {

SentenceSplitter::SentenceSplitter(const std::string& language) : language_(language.empty() ? "en" : language) {
    UErrorCode status = U_ZERO_ERROR;
    // "@ss=standard" asks ICU for its filtered sentence iterator, which does not break after the language's
    // common abbreviations ("Mr.", "Dr.", "z. B."); without it "Mr. Smith" would be cut in two.
    const std::string id = (language.empty() ? std::string("en") : language) + "@ss=standard";
    iterator_.reset(icu::BreakIterator::createSentenceInstance(icu::Locale(id.c_str()), status));
    if (U_FAILURE(status) || !iterator_) {
        status = U_ZERO_ERROR;
        iterator_.reset(icu::BreakIterator::createSentenceInstance(icu::Locale::getRoot(), status));
    }
    TOLK_CHECK(U_SUCCESS(status) && iterator_, "ICU: cannot create a sentence break iterator for '", language,
               "': ", u_errorName(status));
}

SentenceSplitter::~SentenceSplitter() = default;

namespace {

// Abbreviations after which a period does not end a sentence, per source language. ICU's own lists (CLDR, the
// "@ss=standard" above) are short: English has "Mr." but not "U.S." or "St.", German lacks "z. B." and "St.", so
// "The U.S. Senate" was cut in two. Only abbreviations that rarely end a sentence are listed ("etc.", "usw." and
// "a.m." often do): each entry joins a real sentence end that happens to follow it.
const char* const english_abbreviations[] = {
    "Mr.", "Mrs.", "Ms.", "Dr.", "Prof.", "St.", "Mt.", "Ft.", "Sr.", "Jr.", "Gen.", "Gov.", "Sen.", "Rep.",
    "Capt.", "Lt.", "Col.", "Sgt.", "Rev.", "Hon.", "Inc.", "Ltd.", "Corp.", "Co.", "Bros.", "vs.", "e.g.",
    "i.e.", "approx.", "Fig.", "No.", "Nos.", "Vol.", "Jan.", "Feb.", "Aug.", "Sept.", "Oct.", "Nov.", "Dec.",
    "U.S.", "U.K.", "U.N.", "E.U.", "U.S.A.", "D.C.", "Ph.D."};
const char* const german_abbreviations[] = {
    "Hr.", "Hrn.", "Fr.", "Dr.", "Prof.", "St.", "Nr.", "Str.", "bzw.", "ca.", "vgl.", "evtl.", "ggf.", "inkl.",
    "zzgl.", "bspw.", "sog.", "Abs.", "Art.", "Bd.", "Jh.", "Mio.", "Mrd.", "Tel.", "u.a.", "z.B.", "d.h.",
    "z.T.", "o.g.", "Jan.", "Feb.", "Aug.", "Sept.", "Okt.", "Nov.", "Dez.", "Dipl.", "Ing."};
const char* const french_abbreviations[] = {
    "M.", "MM.", "Mme.", "Mlle.", "Dr.", "Pr.", "St.", "Ste.", "ex.", "cf.", "env.", "av.", "bd.", "vol.",
    "janv.", "févr.", "avr.", "juill.", "sept.", "oct.", "nov.", "déc."};
// German writes ordinals as digits and a period: "am 3. Mai" is one sentence.
const char* const german_months[] = {"Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August",
                                     "September", "Oktober", "November", "Dezember"};

template <std::size_t N>
bool contains(const char* const (&words)[N], std::string_view word) {
    for (const char* w : words)
        if (word == w) return true;
    return false;
}

bool is_ascii_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_ascii_digit(char c) { return c >= '0' && c <= '9'; }

// The last space-separated word of `text` and the first of `next` (ASCII spaces suffice: both are trimmed
// sentence bodies whose words an abbreviation list can name).
std::string_view last_word(std::string_view text) {
    const size_t space = text.find_last_of(" \t");
    return space == std::string_view::npos ? text : text.substr(space + 1);
}
std::string_view first_word(std::string_view text) {
    const size_t end = text.find_first_of(" \t.,;:!?");
    return text.substr(0, end);
}

// Whether ICU's break between `before` and `after` follows an abbreviation rather than a sentence end.
bool joins_abbreviation(std::string_view language, std::string_view before, std::string_view after) {
    const std::string_view word = last_word(before);
    if (word.size() < 2 || word.back() != '.') return false;
    // Initials: one letter and a period ("John F. Kennedy"; German "z. B.", "d. h."; French "p. ex.").
    if (word.size() == 2 && is_ascii_letter(word[0])) return word[0] >= 'A' && word[0] <= 'Z' ? true : language != "en";
    if (language == "en") return contains(english_abbreviations, word);
    if (language == "de") {
        bool ordinal = word.size() <= 4;
        for (size_t i = 0; i + 1 < word.size(); ++i) ordinal = ordinal && is_ascii_digit(word[i]);
        if (ordinal && contains(german_months, first_word(after))) return true;
        return contains(german_abbreviations, word);
    }
    if (language == "fr") return contains(french_abbreviations, word);
    return false;
}

}  // namespace

bool is_space_at(std::string_view text, size_t pos, size_t& length) {
    const auto* s = reinterpret_cast<const uint8_t*>(text.data());
    const auto size = static_cast<int32_t>(text.size());
    auto i = static_cast<int32_t>(pos);
    UChar32 c = 0;
    U8_NEXT(s, i, size, c);
    length = static_cast<size_t>(i) - pos;
    return c >= 0 && (c == '\t' || u_isUWhiteSpace(c));
}

std::string_view trim_spaces(std::string_view text) {
    size_t begin = 0;
    size_t length = 0;
    while (begin < text.size() && is_space_at(text, begin, length)) begin += length;
    // Trailing whitespace: scan forward, remembering where the last non-space character ended.
    size_t end = begin;
    size_t pos = begin;
    while (pos < text.size()) {
        const bool space = is_space_at(text, pos, length);
        pos += length;
        if (!space) end = pos;
    }
    return text.substr(begin, end - begin);
}

std::vector<Sentence> SentenceSplitter::split(std::string_view line) {
    std::vector<Sentence> sentences;
    const std::string_view text = trim_spaces(line);
    if (text.empty()) return sentences;

    UErrorCode status = U_ZERO_ERROR;
    UText* utext = utext_openUTF8(nullptr, text.data(), static_cast<int64_t>(text.size()), &status);
    TOLK_CHECK(U_SUCCESS(status), "ICU: cannot open text for sentence splitting: ", u_errorName(status));
    iterator_->setText(utext, status);
    if (U_FAILURE(status)) {
        utext_close(utext);
        TOLK_FAIL("ICU: cannot set text for sentence splitting: ", u_errorName(status));
    }
    // For a UTF-8 UText, break positions are byte offsets into `text`.
    int32_t start = iterator_->first();
    for (int32_t end = iterator_->next(); end != icu::BreakIterator::DONE; start = end, end = iterator_->next()) {
        const std::string_view segment = text.substr(static_cast<size_t>(start), static_cast<size_t>(end - start));
        const std::string_view body = trim_spaces(segment);
        if (body.empty()) {
            // Whitespace-only segment (cannot follow trimming, but stay safe): fold into the previous separator.
            if (!sentences.empty()) sentences.back().separator.append(segment);
            continue;
        }
        const size_t body_begin = static_cast<size_t>(body.data() - segment.data());
        if (!sentences.empty() && joins_abbreviation(language_, sentences.back().text, body)) {
            Sentence& previous = sentences.back();
            previous.text.append(previous.separator).append(segment.substr(0, body_begin)).append(body);
            previous.separator.assign(segment.substr(body_begin + body.size()));
            continue;
        }
        if (!sentences.empty()) sentences.back().separator.append(segment.substr(0, body_begin));
        sentences.push_back({std::string(body), std::string(segment.substr(body_begin + body.size()))});
    }
    // Point the iterator at a static empty text before the UText over `line` goes away (it keeps a reference).
    static const icu::UnicodeString empty;
    iterator_->setText(empty);
    utext_close(utext);
    if (!sentences.empty()) sentences.back().separator.clear();
    return sentences;
}

}  // namespace tolk
