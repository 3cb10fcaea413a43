// chrF (Popović, 2015) and chrF++ (Popović, 2017) exactly as sacreBLEU 2.x computes them: character
// n-grams up to order 6 on text without whitespace, beta 2, statistics summed over the corpus.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tolk {

struct ChrfOptions {
    int char_order = 6;          // character n-gram orders 1..char_order ("nc:6")
    int word_order = 0;          // word n-gram orders 1..word_order; 2 gives chrF++ ("nw:0")
    int beta = 2;                // recall weighs beta times as much as precision
    bool lowercase = false;      // Unicode lowercase first ("case:lc")
    bool whitespace = false;     // keep whitespace inside character n-grams ("space:yes")
    bool eps_smoothing = false;  // chrF++.py/NLTK/Moses averaging of per-order F-scores ("eff:no");
                                 // the default averages precision and recall over the orders both
                                 // sides have ("eff:yes"), as sacreBLEU does by default
};

// chrF's sufficient statistics: for each order (character orders first, then word orders) the number
// of hypothesis n-grams, reference n-grams and clipped matches. Summed over segments for corpus chrF.
struct ChrfStats {
    std::vector<int64_t> values;  // [3 * (char_order + word_order)]: hyp, ref, match per order

    ChrfStats& operator+=(const ChrfStats& other);
};

struct ChrfScore {
    double score = 0.0;     // 0..100
    std::string name;       // "chrF2", "chrF2++"
    std::string signature;  // "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:..."

    // "chrF2|<signature> = 59.73" with `width` decimals.
    std::string format(int width = 2) const;
};

class Chrf {
public:
    explicit Chrf(ChrfOptions options = {});

    const ChrfOptions& options() const { return options_; }

    // Statistics of one hypothesis against its raw references. With several references, those of the
    // reference with the best F-score are kept (the first one on ties), as in sacreBLEU. Empty
    // references are ignored; at least one must remain.
    ChrfStats segment_stats(std::string_view hypothesis, const std::vector<std::string>& references) const;

    // The F-score (0..100) of (summed) statistics.
    double f_score(const ChrfStats& stats) const;
    ChrfScore score_from_stats(const ChrfStats& stats, int nrefs) const;

    // Corpus chrF. references[k][i] is the k-th reference of hypothesis i.
    ChrfScore corpus_score(const std::vector<std::string>& hypotheses,
                           const std::vector<std::vector<std::string>>& references) const;
    ChrfScore sentence_score(std::string_view hypothesis, const std::vector<std::string>& references) const;

    std::string name() const;
    std::string signature(int nrefs) const;

private:
    ChrfOptions options_;
};

// chrF++'s word split: whitespace-separated words, with one ASCII punctuation character split off the
// end of a word (or else off its start) when the word is longer than one character.
std::vector<std::u32string> chrf_words(std::u32string_view text);

}  // namespace tolk
