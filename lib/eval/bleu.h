// Corpus BLEU (Papineni et al., 2002) exactly as sacreBLEU 2.x computes it: 13a tokenization,
// n-gram statistics summed over the corpus, closest-reference brevity penalty, 'exp' smoothing.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tolk {

enum class BleuTokenizer {
    k13a,  // mteval-v13a, sacreBLEU's default
    none,  // input is already tokenized; split on whitespace only
};

// Smoothing of zero n-gram matches (Chen & Cherry, 2014), named as in sacreBLEU.
enum class BleuSmooth {
    none,   // a zero precision makes the score 0
    floor,  // zero matches count as smooth_value (default 0.1)
    add_k,  // add smooth_value (default 1) to matches and totals of orders >= 2
    exp,    // mteval's NIST smoothing: the k-th zero precision becomes 1 / (2^k * total); the default
};

struct BleuOptions {
    bool lowercase = false;                         // Unicode lowercase before tokenizing ("case:lc")
    BleuTokenizer tokenizer = BleuTokenizer::k13a;  // "tok:13a"
    BleuSmooth smooth = BleuSmooth::exp;            // "smooth:exp"
    double smooth_value = -1.0;                     // floor / add-k value; < 0 takes sacreBLEU's default
    int max_ngram_order = 4;                        // highest n-gram order
    bool effective_order = false;                   // average only orders the hypotheses have ("eff:yes");
                                                    // meant for sentence-level BLEU
};

// BLEU's sufficient statistics; summing them over segments and scoring the sum is corpus BLEU.
struct BleuStats {
    int64_t sys_len = 0;          // hypothesis tokens
    int64_t ref_len = 0;          // tokens of the reference closest in length, per segment
    std::vector<int64_t> correct;  // [max_ngram_order] clipped n-gram matches
    std::vector<int64_t> total;    // [max_ngram_order] hypothesis n-grams

    BleuStats& operator+=(const BleuStats& other);
};

struct BleuScore {
    double score = 0.0;               // 0..100
    std::vector<double> counts;       // matches per order (add-k smoothing adds to these, as in sacreBLEU)
    std::vector<double> totals;       // hypothesis n-grams per order
    std::vector<double> precisions;   // percent per order, after smoothing
    double bp = 0.0;                  // brevity penalty
    double ratio = 0.0;               // sys_len / ref_len (0 when ref_len is 0)
    int64_t sys_len = 0;
    int64_t ref_len = 0;
    std::string signature;            // "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:..."

    // sacreBLEU's verbose part: "82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)".
    std::string verbose() const;
    // "BLEU|<signature> = 48.53 <verbose>" with `width` decimals for the score.
    std::string format(int width = 2) const;
};

class Bleu {
public:
    explicit Bleu(BleuOptions options = {});

    const BleuOptions& options() const { return options_; }

    // Lowercasing (if asked), trailing-whitespace strip and tokenization, as applied to every segment.
    std::string preprocess(std::string_view segment) const;

    // Statistics of one hypothesis against its references (raw, not yet preprocessed). Empty references
    // are ignored, as sacreBLEU does for a variable number of references; at least one must remain.
    BleuStats segment_stats(std::string_view hypothesis, const std::vector<std::string>& references) const;

    // The score of summed statistics. `nrefs` only feeds the signature (<= 0: "var").
    BleuScore score_from_stats(const BleuStats& stats, int nrefs) const;

    // Corpus BLEU. references[k][i] is the k-th reference of hypothesis i (sacreBLEU's layout); every
    // stream must have as many lines as `hypotheses`.
    BleuScore corpus_score(const std::vector<std::string>& hypotheses,
                           const std::vector<std::vector<std::string>>& references) const;

    // BLEU of one sentence (sacreBLEU's sentence_score: the corpus of one segment).
    BleuScore sentence_score(std::string_view hypothesis, const std::vector<std::string>& references) const;

    std::string signature(int nrefs) const;

private:
    BleuOptions options_;
};

// sacreBLEU's BLEU.compute_bleu: the score from statistics under a smoothing method.
BleuScore compute_bleu(const BleuStats& stats, const BleuOptions& options);

}  // namespace tolk
