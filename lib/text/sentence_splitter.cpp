// Sentence splitting on ICU's BreakIterator over a UTF-8 UText (no UTF-16 copy of the line).
#include "text/sentence_splitter.h"

#include <unicode/brkiter.h>
#include <unicode/locid.h>
#include <unicode/uchar.h>
#include <unicode/utext.h>
#include <unicode/utf8.h>

#include "core/error.h"

namespace tolk {

SentenceSplitter::SentenceSplitter(const std::string& language) {
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
