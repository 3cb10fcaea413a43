// Tests of lib/eval: the 13a tokenizer, BLEU and chrF against hand-computed values and against the
// numbers sacreBLEU's own test suite and README state (test_bleu.py, test_sentence_bleu.py,
// test_chrf.py, README.md of mjpost/sacrebleu 2.x), plus `tolk eval` once main() registers it.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include "core/error.h"
#include "eval/bleu.h"
#include "eval/chrf.h"
#include "eval/evaluate.h"
#include "eval/text_lines.h"
#include "eval/tokenizer_13a.h"
#include "eval/unicode_text.h"
#include "test_support.h"

using namespace tolk;

namespace {

using Lines = std::vector<std::string>;
using Streams = std::vector<std::vector<std::string>>;

// The README / test_bleu.py example: three hypotheses, two reference streams.
const Lines kHyps = {"The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."};
const Streams kRefs = {
    {"The dog bit the man.", "It was not unexpected.", "The man bit him first."},
    {"The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."},
};

std::string fixed(double v, int decimals) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}

BleuOptions raw_bleu_options(double floor_value) {
    // sacreBLEU's raw_corpus_bleu: no tokenization, floor smoothing, effective order.
    BleuOptions o;
    o.tokenizer = BleuTokenizer::none;
    o.smooth = BleuSmooth::floor;
    o.smooth_value = floor_value;
    o.effective_order = true;
    return o;
}

double chrf_corpus(const Lines& hyps, const Lines& refs, int beta, bool eps, bool whitespace = false) {
    ChrfOptions o;
    o.beta = beta;
    o.eps_smoothing = eps;
    o.whitespace = whitespace;
    return Chrf(o).corpus_score(hyps, {refs}).score;
}

}  // namespace

TEST_CASE("13a tokenizer: punctuation, numbers, entities") {
    CHECK(tokenize_13a("Hello, world!") == "Hello , world !");
    // '.' and ',' stay inside numbers; '$' is padded; the final period is split.
    CHECK(tokenize_13a("It costs $3.50, or 1,000 yen.") == "It costs $ 3.50 , or 1,000 yen .");
    // A dash after a digit is split, a dash between letters is not.
    CHECK(tokenize_13a("pages 10-20") == "pages 10 - 20");
    CHECK(tokenize_13a("well-known") == "well-known");
    CHECK(tokenize_13a("it's") == "it's");
    CHECK(tokenize_13a("(a) [b] {c} a/b x@y #1 50% a&b") == "( a ) [ b ] { c } a / b x @ y # 1 50 % a & b");
    // Non-overlapping scans: in "a..b" the second '.' is split off by the third rule.
    CHECK(tokenize_13a("a..b") == "a . . b");
    CHECK(tokenize_13a("e.g.") == "e . g .");
    CHECK(tokenize_13a("3.14.") == "3.14 .");
    CHECK(tokenize_13a("x,y") == "x , y");
    // A period after a space or before the end is split even next to a digit on its other side.
    CHECK(tokenize_13a(".5 and 5.") == ". 5 and 5 .");
    // SGML entities are decoded once, in sacreBLEU's order, then padded like any symbol.
    CHECK(tokenize_13a("&quot;Hi&quot; &amp; &lt;b&gt;") == "\" Hi \" & < b >");
    // "&amp;" is decoded before "&lt;", so "&amp;lt;" ends up as "<".
    CHECK(tokenize_13a("&amp;lt;") == "<");
    CHECK(tokenize_13a("a <skipped> b") == "a b");
    CHECK(tokenize_13a("hyphen-\nated line\nbreak") == "hyphenated line break");
    // Python whitespace: tabs and NO-BREAK SPACE separate tokens; leading/trailing space is trimmed.
    CHECK(tokenize_13a("  a\tb\xC2\xA0" "c  ") == "a b c");
    // Non-ASCII letters count as non-digits for the period rule.
    CHECK(tokenize_13a("Größe.") == "Größe .");
    CHECK(tokenize_13a("") == "");
}

TEST_CASE("unicode helpers follow Python's str semantics") {
    CHECK(split_py_whitespace(std::string("a\xE3\x80\x80" "b\xE2\x80\x83" "c\x1F" "d")) == Lines{"a", "b", "c", "d"});
    CHECK(rstrip_py_whitespace("ab \r\t\xC2\xA0") == "ab");
    CHECK(to_lower_unicode("ÄRGER ÜBER Straße") == "ärger über straße");
    // Final sigma, as Python lowercases it: "ΟΔΟΣ" -> "οδος" ending in U+03C2.
    CHECK(to_lower_unicode("ΟΔΟΣ") == "\xCE\xBF\xCE\xB4\xCE\xBF\xCF\x82");
    CHECK_THROWS_AS(utf8_to_u32("ab\xC3"), Error);
    CHECK_THROWS_AS(utf8_to_u32("\xC0\xAF"), Error);
    CHECK(u32_to_utf8(utf8_to_u32("naïve € 😀")) == "naïve € 😀");
}

TEST_CASE("BLEU: perfect match, empty hypothesis, brevity penalty") {
    const Bleu bleu;
    const BleuScore perfect = bleu.corpus_score({"The cat sat on the mat."}, {{"The cat sat on the mat."}});
    CHECK(perfect.score == doctest::Approx(100.0));
    CHECK(perfect.bp == 1.0);

    const BleuScore empty = bleu.corpus_score({""}, {{"a b c"}});
    CHECK(empty.score == 0.0);
    CHECK(empty.bp == 0.0);
    CHECK(empty.sys_len == 0);
    CHECK(empty.ref_len == 3);

    // 4 hypothesis tokens, 8 reference tokens, every n-gram matches: BLEU = exp(1 - 8/4) * 100.
    const BleuScore short_hyp = bleu.corpus_score({"a b c d"}, {{"a b c d e f g h"}});
    CHECK(short_hyp.bp == doctest::Approx(std::exp(-1.0)));
    CHECK(short_hyp.score == doctest::Approx(100.0 * std::exp(-1.0)));
    CHECK(short_hyp.ratio == doctest::Approx(0.5));

    // Closest reference length: 3 and 5 are both 1 away from 4, the shorter wins, so no penalty.
    const BleuScore tie = bleu.corpus_score({"a b c d"}, {{"a b c"}, {"a b c d e"}});
    CHECK(tie.ref_len == 3);
    CHECK(tie.bp == 1.0);
    CHECK(tie.signature == "nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:tolk-2.x-compat");

    // Three tokens have no 4-gram: without effective order the 4-gram precision is 0 and so is BLEU.
    CHECK(bleu.corpus_score({"a b c"}, {{"a b c"}}).score == 0.0);
}

TEST_CASE("BLEU: hand-counted n-grams with exp smoothing") {
    // hyp "the the the the" vs ref "the cat is on the mat":
    //   1-grams: "the" x4, clipped to the reference's 2 -> 2/4 = 50%
    //   2-grams: "the the" x3, none in the reference -> 0/3; exp smoothing: 100 / (2 * 3)
    //   3-grams: 0/2 -> 100 / (4 * 2);  4-grams: 0/1 -> 100 / (8 * 1)
    //   BP: 4 < 6 tokens -> exp(1 - 6/4)
    const BleuScore s = Bleu().corpus_score({"the the the the"}, {{"the cat is on the mat"}});
    CHECK(s.counts == std::vector<double>{2, 0, 0, 0});
    CHECK(s.totals == std::vector<double>{4, 3, 2, 1});
    CHECK(s.precisions[0] == doctest::Approx(50.0));
    CHECK(s.precisions[1] == doctest::Approx(100.0 / 6));
    CHECK(s.precisions[2] == doctest::Approx(12.5));
    CHECK(s.precisions[3] == doctest::Approx(12.5));
    const double bp = std::exp(1.0 - 6.0 / 4.0);
    CHECK(s.bp == doctest::Approx(bp));
    CHECK(s.score == doctest::Approx(bp * std::pow(50.0 * (100.0 / 6) * 12.5 * 12.5, 0.25)));

    // Lowercasing: all-caps hypothesis matches nothing unless case is ignored.
    BleuOptions lc;
    lc.lowercase = true;
    CHECK(Bleu().corpus_score({"THE CAT SAT ON THE MAT"}, {{"the cat sat on the mat"}}).score == 0.0);
    const BleuScore lower = Bleu(lc).corpus_score({"THE CAT SAT ON THE MAT"}, {{"the cat sat on the mat"}});
    CHECK(lower.score == doctest::Approx(100.0));
    CHECK(lower.signature.find("case:lc") != std::string::npos);
}

TEST_CASE("BLEU: sacreBLEU's README and test_bleu.py corpus numbers") {
    const BleuScore s = Bleu().corpus_score(kHyps, kRefs);
    CHECK(std::abs(s.score - 48.530827) < 1e-6);
    CHECK(s.format() ==
          "BLEU|nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:tolk-2.x-compat = 48.53 "
          "82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)");

    // Empty hypotheses are kept (and score 0).
    CHECK(Bleu().corpus_score({"", "", ""}, kRefs).score == 0.0);

    BleuOptions none_tok;
    none_tok.tokenizer = BleuTokenizer::none;
    CHECK(std::abs(Bleu(none_tok).corpus_score(kHyps, kRefs).score - 49.1919566) < 1e-6);

    BleuOptions no_smooth;
    no_smooth.smooth = BleuSmooth::none;
    CHECK(std::abs(Bleu(no_smooth).corpus_score(kHyps, kRefs).score - 48.530827) < 1e-6);

    const char* by_order[] = {"77.65", "60.50", "53.93", "48.53", "46.14", "43.28"};
    for (int order = 1; order <= 6; ++order) {
        BleuOptions o;
        o.max_ngram_order = order;
        CHECK(fixed(Bleu(o).corpus_score(kHyps, kRefs).score, 2) == by_order[order - 1]);
    }

    // README: a missing first reference of the first sentence gives a variable reference count.
    Streams var_refs = kRefs;
    var_refs[0][0] = "";
    const BleuScore v = Bleu().corpus_score(kHyps, var_refs);
    CHECK(v.format() ==
          "BLEU|nrefs:var|case:mixed|eff:no|tok:13a|smooth:exp|version:tolk-2.x-compat = 29.44 "
          "82.4/42.9/27.3/12.5 (BP = 0.889 ratio = 0.895 hyp_len = 17 ref_len = 19)");

    Streams all_empty = {{"", "x", "y"}};
    CHECK_THROWS_AS(Bleu().corpus_score(kHyps, all_empty), Error);
    CHECK_THROWS_AS(Bleu().corpus_score(kHyps, {{"only one line"}}), Error);
}

TEST_CASE("BLEU: sacreBLEU's raw_corpus_bleu, statistics and compute_bleu cases") {
    const Bleu raw(raw_bleu_options(0.01));
    CHECK(raw.corpus_score({"this is a test", "another test"}, {{"ref1", "ref2"}}).score == 0.0);
    CHECK(std::abs(raw.corpus_score({"this is a test"}, {{"this is a test"}}).score / 100 - 1.0) < 1e-8);
    CHECK(std::abs(raw.corpus_score({"this is a fest"}, {{"this is a test"}}).score / 100 - 0.223606797749979) < 1e-8);
    // Effective order.
    CHECK(std::abs(raw.corpus_score({"test"}, {{"a test"}}).score / 100 - 0.3678794411714425) < 1e-8);
    CHECK(std::abs(raw.corpus_score({"a test"}, {{"a test"}}).score / 100 - 1.0) < 1e-8);
    CHECK(std::abs(raw.corpus_score({"a little test"}, {{"a test"}}).score / 100 - 0.03218297948685433) < 1e-8);

    const BleuScore stats = raw.corpus_score({"am I am a character sequence"}, {{"I am a symbol string sequence a a"}});
    CHECK(stats.counts == std::vector<double>{4, 2, 1, 0});
    CHECK(stats.totals == std::vector<double>{6, 5, 4, 3});

    // Offset: floor 0.1 (the default) vs floor 0.
    CHECK(std::abs(Bleu(raw_bleu_options(-1)).corpus_score({"am I am a character sequence"},
                                                           {{"I am a symbol string sequence a a"}})
                           .score /
                       100 -
                   0.1555722182) < 1e-8);
    CHECK(Bleu(raw_bleu_options(0.0))
              .corpus_score({"am I am a character sequence"}, {{"I am a symbol string sequence a a"}})
              .score == 0.0);

    // compute_bleu on given statistics, no smoothing.
    BleuOptions none;
    none.smooth = BleuSmooth::none;
    BleuStats given{11, 11, {9, 7, 5, 3}, {10, 8, 6, 4}};
    CHECK(std::abs(compute_bleu(given, none).score / 100 - 0.8375922397) < 1e-8);

    // Degenerate statistics under floor smoothing all score exactly 0.
    struct Degenerate {
        BleuStats stats;
        double floor;
    };
    const Degenerate cases[] = {
        {{0, 1, {0, 0, 0, 0}, {4, 4, 2, 1}}, 0.0},     {{14, 10, {0, 0, 0, 0}, {10, 11, 12, 0}}, 0.0},
        {{0, 0, {0, 0, 0, 0}, {0, 0, 0, 0}}, 0.0},     {{6, 6, {6, 5, 4, 0}, {6, 5, 4, 3}}, 0.0},
        {{0, 0, {0, 0, 0, 0}, {0, 0, 0, 0}}, 0.1},     {{1, 5, {0, 0, 0, 0}, {0, 0, 0, 0}}, 0.01},
    };
    for (const auto& c : cases) {
        BleuOptions floor;
        floor.smooth = BleuSmooth::floor;
        floor.smooth_value = c.floor;
        CHECK(compute_bleu(c.stats, floor).score == 0.0);
    }
}

TEST_CASE("BLEU: sacreBLEU's test_sentence_bleu.py (effective order, smoothing variants)") {
    const std::string ref = "producţia de zahăr brut se exprimă în zahăr alb;";
    const std::string sys = "Producția de zahăr primă va fi exprimată în ceea ce privește zahărul alb;";
    struct Case {
        BleuSmooth smooth;
        double value;
        BleuTokenizer tok;
        double expected;
    };
    const Case cases[] = {
        {BleuSmooth::exp, -1, BleuTokenizer::k13a, 8.493},    {BleuSmooth::none, -1, BleuTokenizer::k13a, 0.0},
        {BleuSmooth::floor, -1, BleuTokenizer::k13a, 4.51688}, {BleuSmooth::floor, 0.1, BleuTokenizer::k13a, 4.51688},
        {BleuSmooth::floor, 0.5, BleuTokenizer::k13a, 10.10},  {BleuSmooth::add_k, -1, BleuTokenizer::k13a, 14.882},
        {BleuSmooth::add_k, 1, BleuTokenizer::k13a, 14.882},   {BleuSmooth::add_k, 2, BleuTokenizer::k13a, 21.389},
        {BleuSmooth::exp, -1, BleuTokenizer::none, 7.347},
    };
    for (const auto& c : cases) {
        BleuOptions o;
        o.smooth = c.smooth;
        o.smooth_value = c.value;
        o.tokenizer = c.tok;
        o.effective_order = true;
        CHECK(std::abs(Bleu(o).sentence_score(sys, {ref}).score - c.expected) < 1e-3);
    }
    // No match at all scores 0 under every smoothing (sacreBLEU #141).
    for (BleuSmooth smooth : {BleuSmooth::exp, BleuSmooth::none, BleuSmooth::floor, BleuSmooth::add_k}) {
        BleuOptions o;
        o.smooth = smooth;
        o.effective_order = true;
        CHECK(Bleu(o).sentence_score("this is a cat", {"okay thanks"}).score == 0.0);
    }
    BleuOptions floor;
    floor.smooth = BleuSmooth::floor;
    floor.effective_order = true;
    CHECK(Bleu(floor).signature(1) == "nrefs:1|case:mixed|eff:yes|tok:13a|smooth:floor[0.10]|version:tolk-2.x-compat");
}

TEST_CASE("BLEU: 13a token count of newstest2014 en-de matches sacreBLEU's published ref_len") {
    // Published sacreBLEU signatures for wmt14/full en-de report ref_len = 62688; that is the 13a token
    // count of the 3003 German references. Runs only where the project's shared data sits beside it.
    const std::filesystem::path ref =
        std::filesystem::path(TOLK_SOURCE_DIR) / ".." / "shared" / "data" / "dev" / "wmt" / "newstest2014.en-de.de";
    if (!std::filesystem::exists(ref)) {
        MESSAGE("no ", ref.string(), "; skipped");
        return;
    }
    const Lines lines = read_text_lines(ref.string());
    REQUIRE(lines.size() == 3003);
    const BleuScore s = Bleu().corpus_score(lines, {lines});
    CHECK(s.ref_len == 62688);
    CHECK(s.sys_len == 62688);
    CHECK(s.score == doctest::Approx(100.0));
}

TEST_CASE("chrF: hand-computed cases") {
    const Chrf chrf;
    CHECK(chrf.corpus_score({"Niemand hat die Absicht"}, {{"Niemand hat die Absicht"}}).score == doctest::Approx(100.0));
    CHECK(chrf.corpus_score({""}, {{"reference"}}).score == 0.0);
    // Whitespace (Python's set, NO-BREAK SPACE included) is removed before extracting n-grams.
    CHECK(chrf.corpus_score({"a\xC2\xA0" "b c"}, {{"abc"}}).score == doctest::Approx(100.0));

    // hyp "ab, c" vs ref "ab c": character text "ab,c" vs "abc".
    //   order 1: hyp a b , c (4), ref a b c (3), match 3      -> P 3/4, R 1
    //   order 2: hyp ab b, ,c (3), ref ab bc (2), match 1     -> P 1/3, R 1/2
    //   order 3: hyp ab, b,c (2), ref abc (1), match 0        -> P 0,   R 0
    //   order 4: the reference has no 4-gram, so the order is skipped; 5 and 6 are empty.
    // chrF averages over the 3 effective orders: P = (3/4 + 1/3) / 3, R = 1.5 / 3, F2 = 5PR / (4P + R).
    const double p = (0.75 + 1.0 / 3) / 3, r = 1.5 / 3;
    const ChrfScore s = chrf.corpus_score({"ab, c"}, {{"ab c"}});
    CHECK(s.score == doctest::Approx(100 * 5 * p * r / (4 * p + r)));
    CHECK(s.format() == "chrF2|nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:tolk-2.x-compat = " +
                            fixed(100 * 5 * p * r / (4 * p + r), 2));

    // chrF++ adds word orders. Words: hyp "ab," splits into "ab" ","; so hyp [ab , c], ref [ab c].
    //   word 1: 3 hyp, 2 ref, 2 matches -> P 2/3, R 1;  word 2: "ab ," ", c" vs "ab c" -> P 0, R 0
    // Five effective orders: P = (3/4 + 1/3 + 0 + 2/3 + 0) / 5, R = (1 + 1/2 + 0 + 1 + 0) / 5.
    ChrfOptions pp;
    pp.word_order = 2;
    const double pp_p = (0.75 + 1.0 / 3 + 2.0 / 3) / 5, pp_r = 2.5 / 5;
    const ChrfScore spp = Chrf(pp).corpus_score({"ab, c"}, {{"ab c"}});
    CHECK(spp.score == doctest::Approx(100 * 5 * pp_p * pp_r / (4 * pp_p + pp_r)));
    CHECK(spp.name == "chrF2++");
    CHECK(spp.signature == "nrefs:1|case:mixed|eff:yes|nc:6|nw:2|space:no|version:tolk-2.x-compat");
    CHECK(chrf_words(U"(hi) a b. ,c .") ==
          std::vector<std::u32string>{U"(hi", U")", U"a", U"b", U".", U",", U"c", U"."});

    // Characters are code points, not bytes: "éa" vs "éb" -> order 1: P = R = 1/2; order 2: 0 -> F = 25.
    CHECK(chrf.corpus_score({"éa"}, {{"éb"}}).score == doctest::Approx(25.0));

    // Lowercasing is Unicode-aware.
    ChrfOptions lc;
    lc.lowercase = true;
    CHECK(Chrf(lc).corpus_score({"ÄRGER ÜBER"}, {{"ärger über"}}).score == doctest::Approx(100.0));
    CHECK(chrf.corpus_score({"ÄRGER ÜBER"}, {{"ärger über"}}).score < 50.0);
}

TEST_CASE("chrF: sacreBLEU's README and test_chrf.py numbers") {
    CHECK(fixed(Chrf().corpus_score(kHyps, kRefs).score, 2) == "59.73");

    // Epsilon smoothing, beta 3 (test_cases).
    struct Case {
        Lines hyps, refs;
        double expected;
    };
    const Case eps_cases[] = {
        {{"abcdefg"}, {"hijklmnop"}, 0.0},
        {{"a"}, {"b"}, 0.0},
        {{""}, {"b"}, 0.0},
        {{""}, {"ref"}, 0.0},
        {{""}, {"reference"}, 0.0},
        {{"aa"}, {"ab"}, 8.3333},
        {{"a", "b"}, {"a", "c"}, 8.3333},
        {{"a"}, {"a"}, 16.6667},
        {{"a b c"}, {"a b c"}, 50.0},
        {{"a b c"}, {"abc"}, 50.0},
        {{" risk assessment must be made of those who are qualified and expertise in the sector - these are the "
          "scientists ."},
         {"risk assessment has to be undertaken by those who are qualified and expert in that area - that is the "
          "scientists ."},
         63.361730},
        {{" Die    Beziehung zwischen  Obama und Netanjahu ist nicht gerade  freundlich. "},
         {"Das Verhältnis zwischen Obama und Netanyahu ist nicht gerade freundschaftlich."},
         64.1302698},
        {{"Niemand hat die Absicht, eine Mauer zu errichten"}, {"Niemand hat die Absicht, eine Mauer zu errichten"}, 100.0},
    };
    for (const auto& c : eps_cases) CHECK(std::abs(chrf_corpus(c.hyps, c.refs, 3, true) - c.expected) < 1e-4);

    // sacreBLEU < 2.0 style effective order, beta 3 (test_cases_effective_order).
    const Case eff_cases[] = {
        {{"a"}, {"a"}, 100.0},        {{""}, {"reference"}, 0.0}, {{"a b c"}, {"a b c"}, 100.0},
        {{"a b c"}, {"abc"}, 100.0},  {{""}, {"c"}, 0.0},         {{"a", "b"}, {"a", "c"}, 50.0},
        {{"aa"}, {"ab"}, 25.0},
    };
    for (const auto& c : eff_cases) CHECK(std::abs(chrf_corpus(c.hyps, c.refs, 3, false) - c.expected) < 1e-4);

    // Whitespace kept, beta 3 (test_cases_keep_whitespace).
    CHECK(std::abs(chrf_corpus({"Die Beziehung zwischen Obama und Netanjahu ist nicht gerade freundlich."},
                               {"Das Verhältnis zwischen Obama und Netanyahu ist nicht gerade freundschaftlich."}, 3,
                               false, true) -
                   67.3481606) < 1e-4);
    CHECK(std::abs(chrf_corpus({"risk assessment must be made of those who are qualified and expertise in the sector - "
                                "these are the scientists ."},
                               {"risk assessment has to be undertaken by those who are qualified and expert in that "
                                "area - that is the scientists ."},
                               3, false, true) -
                   65.2414427) < 1e-4);

    // Sentence level, beta 2, epsilon smoothing (test_sentence_level_chrf).
    ChrfOptions sent;
    sent.eps_smoothing = true;
    const Chrf sentence(sent);
    CHECK(std::abs(sentence
                       .sentence_score("Co nás nejvíc trápí, protože lékaři si vybírají, kdo bude žít a kdo zemře.",
                                       {"Nejvíce smutní jsme z toho, že musíme rozhodovat o tom, kdo bude žít a kdo zemře."})
                       .score -
                   39.14078509) < 1e-4);
    CHECK(std::abs(sentence
                       .sentence_score("Nebo prostě nemají vybavení, které by jim pomohlo, uvedli lékaři.",
                                       {"A někdy nemáme ani potřebný materiál, abychom jim pomohli, popsali lékaři."})
                       .score -
                   31.22557079) < 1e-4);
    CHECK(std::abs(sentence
                       .sentence_score("Lapali po dechu, jejich životy skončily dřív, než skutečně začaly.",
                                       {"Lapali po dechu a pak jejich život skončil - dřív, než skutečně mohl začít, "
                                        "připomněli."})
                       .score -
                   57.15704367) < 1e-4);
}

TEST_CASE("evaluation report and line reading") {
    EvalOptions options;
    options.metrics = parse_metric_list("bleu,chrf,chrf++,bleu");
    CHECK(options.metrics.size() == 3);
    CHECK_THROWS_AS(parse_metric_list("bleu,ter"), Error);
    CHECK_THROWS_AS(parse_metric_list("bleu,"), Error);

    const EvalResult result = evaluate_corpus(kHyps, kRefs, options);
    const std::string text = format_eval_text(result);
    CHECK(text.find("BLEU|nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:tolk-2.x-compat = 48.53") == 0);
    CHECK(text.find("\nchrF2|nrefs:2|case:mixed|eff:yes|nc:6|nw:0|space:no|version:tolk-2.x-compat = 59.73\n") !=
          std::string::npos);
    CHECK(text.find("\nchrF2++|") != std::string::npos);
    const auto json = eval_to_json(result);
    CHECK(json["segments"] == 3);
    CHECK(std::abs(json["bleu"]["score"].get<double>() - 48.530827) < 1e-6);
    CHECK(json["bleu"]["ref_len"] == 18);
    CHECK(json["chrf"]["name"] == "chrF2");

    // '\n' separates lines; "\r" and other trailing whitespace are stripped; no line after a final '\n'.
    std::istringstream in("one \r\ntwo\n\nfour\xC2\xA0");
    CHECK(read_text_lines(in, "mem") == Lines{"one", "two", "", "four"});
    std::istringstream bad("fine\nbad \xFF byte\n");
    try {
        read_text_lines(bad, "hyp.txt");
        FAIL("invalid UTF-8 was accepted");
    } catch (const Error& e) {
        CHECK(std::string(e.what()) == "hyp.txt line 2: invalid UTF-8 at byte 5");
    }
}

TEST_CASE("tolk eval command line") {
    namespace fs = std::filesystem;
    const testing::TempDir tmp("tolk_test_eval");
    const fs::path& dir = tmp.path;
    const auto write = [&](const std::string& name, const std::string& text) {
        std::ofstream(dir / name, std::ios::binary) << text;
        return (dir / name).string();
    };
    const std::string tolk = TOLK_BINARY;
    const std::string out = (dir / "out.txt").string();
    const auto run = [&](const std::string& args) {
        const int status = std::system((tolk + " eval " + args + " > " + out + " 2>&1").c_str());
        std::ifstream in(out);
        std::stringstream ss;
        ss << in.rdbuf();
        return std::make_pair(WEXITSTATUS(status), ss.str());
    };
    REQUIRE(run("--help").second.find("--ref") != std::string::npos);
    const std::string hyp = write("hyp.txt", kHyps[0] + "\n" + kHyps[1] + "\n" + kHyps[2] + "\n");
    const std::string ref1 = write("ref1.txt", kRefs[0][0] + "\n" + kRefs[0][1] + "\n" + kRefs[0][2] + "\n");
    const std::string ref2 = write("ref2.txt", kRefs[1][0] + "\n" + kRefs[1][1] + "\n" + kRefs[1][2] + "\n");
    const std::string short_ref = write("short.txt", "one line\n");

    auto [rc, text] = run("-r " + ref1 + " -r " + ref2 + " -i " + hyp);
    CHECK(rc == 0);
    CHECK(text.find("BLEU|nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:tolk-2.x-compat = 48.53 "
                    "82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)") != std::string::npos);
    CHECK(text.find("chrF2|nrefs:2|case:mixed|eff:yes|nc:6|nw:0|space:no|version:tolk-2.x-compat = 59.73") !=
          std::string::npos);

    std::tie(rc, text) = run("-r " + ref1 + " -r " + ref2 + " --metrics bleu --json < " + hyp);
    CHECK(rc == 0);
    const auto json = nlohmann::json::parse(text);
    CHECK(std::abs(json["bleu"]["score"].get<double>() - 48.530827) < 1e-6);
    CHECK(!json.contains("chrf"));

    std::tie(rc, text) = run("-r " + short_ref + " -i " + hyp);
    CHECK(rc == 2);
    CHECK(text.find(hyp) != std::string::npos);
    CHECK(text.find(short_ref) != std::string::npos);
    CHECK(text.find("3 lines") != std::string::npos);
    CHECK(text.find("has 1") != std::string::npos);
}
