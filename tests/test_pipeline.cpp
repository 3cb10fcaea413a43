// Pipeline tests with a fake translation engine: UTF-8 repair, sentence splitting, batch planning, order
// restoration, batch-size invariance, long-sentence cutting, formats, atomic files and the line reader; the
// sentence cache, shards, skipping, resumable output and the progress line.
#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>

#include "core/error.h"
#include "pipeline/batching.h"
#include "pipeline/corpus.h"
#include "pipeline/file_io.h"
#include "pipeline/formats.h"
#include "pipeline/resume_state.h"
#include "pipeline/sentence_cache.h"
#include "pipeline/translator.h"
#include "text/sentence_splitter.h"
#include "text/utf8.h"
#include "test_support.h"

using namespace tolk;
namespace fs = std::filesystem;

namespace {

// A fake model: a token is a whitespace-separated word; the "translation" of a sentence is its words in upper
// case (ASCII), so the expected output of any input is known without the pipeline. The second n-best
// hypothesis is the sentence in lower case. It records every batch it sees and fails on the word "POISON"; a batch
// of several sentences with the word "HUGE" throws BatchTooLarge.
class FakeEngine : public TranslationEngine {
public:
    explicit FakeEngine(int max_tokens = 512) : max_tokens_(max_tokens) {}

    std::vector<int32_t> encode(std::string_view sentence) const override {
        std::vector<int32_t> ids;
        std::lock_guard lock(mutex_);
        std::istringstream words{std::string(sentence)};
        for (std::string word; words >> word;) {
            auto [it, added] = ids_.emplace(word, static_cast<int32_t>(words_.size()) + 1);
            if (added) words_.push_back(word);
            ids.push_back(it->second);
        }
        ids.push_back(0);  // </s>
        return ids;
    }
    int32_t eos_id() const override { return 0; }
    int max_source_tokens() const override { return max_tokens_; }

    std::unique_ptr<TranslationSession> new_session(int) const override {
        return std::make_unique<Session>(*this);
    }

    std::string word(int32_t id) const {
        std::lock_guard lock(mutex_);
        return words_.at(static_cast<size_t>(id) - 1);
    }
    std::vector<std::vector<std::vector<int32_t>>> batches() const {
        std::lock_guard lock(mutex_);
        return batches_;
    }

private:
    class Session : public TranslationSession {
    public:
        explicit Session(const FakeEngine& engine) : engine_(engine) {}
        std::vector<std::vector<SegmentHypothesis>> translate(const std::vector<std::vector<int32_t>>& src) override {
            {
                std::lock_guard lock(engine_.mutex_);
                engine_.batches_.push_back(src);
            }
            // "HUGE" stands for a sentence whose output would outgrow the decoder budget next to others.
            if (src.size() > 1)
                for (const auto& ids : src)
                    for (size_t i = 0; i + 1 < ids.size(); ++i)
                        if (engine_.word(ids[i]) == "HUGE") throw BatchTooLarge("fake: batch too large");
            std::vector<std::vector<SegmentHypothesis>> out;
            for (const auto& ids : src) {
                TOLK_CHECK(static_cast<int>(ids.size()) <= engine_.max_tokens_, "fake: sequence too long");
                TOLK_CHECK(!ids.empty() && ids.back() == 0, "fake: sequence must end with </s>");
                std::string upper, lower;
                std::vector<std::string> tokens;
                for (size_t i = 0; i + 1 < ids.size(); ++i) {
                    const std::string w = engine_.word(ids[i]);
                    TOLK_CHECK(w != "POISON", "fake: poisoned sentence");
                    std::string u = w, l = w;
                    for (char& c : u) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
                    for (char& c : l) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
                    upper += (i ? " " : "") + u;
                    lower += (i ? " " : "") + l;
                    tokens.push_back(u);
                }
                const auto n = static_cast<int64_t>(ids.size());
                out.push_back({{upper, -0.5f, tokens, n}, {lower, -1.5f, {}, n}});
            }
            return out;
        }

    private:
        const FakeEngine& engine_;
    };

    int max_tokens_;
    mutable std::mutex mutex_;
    mutable std::map<std::string, int32_t> ids_;
    mutable std::vector<std::string> words_;
    mutable std::vector<std::vector<std::vector<int32_t>>> batches_;
};

std::string upper_words(std::string_view s) {
    std::istringstream in{std::string(s)};
    std::string out;
    for (std::string w; in >> w;) {
        for (char& c : w) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        out += (out.empty() ? "" : " ") + w;
    }
    return out;
}

std::vector<std::string> random_lines(size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    const std::vector<std::string> words = {"the", "cat", "sat", "on", "a", "mat", "dogs", "bark", "loudly", "x"};
    std::vector<std::string> lines;
    for (size_t i = 0; i < n; ++i) {
        const size_t len = rng() % 25;
        std::string line;
        for (size_t k = 0; k < len; ++k) line += (k ? " " : "") + words[rng() % words.size()] + std::to_string(i % 7);
        lines.push_back(line);
    }
    return lines;
}

std::vector<std::string> texts_of(const std::vector<LineTranslation>& results) {
    std::vector<std::string> out;
    for (const auto& r : results) out.push_back(r.nbest.at(0).text);
    return out;
}

using testing::write_file;

}  // namespace

TEST_CASE("sanitize_utf8 keeps valid text and replaces maximal invalid subparts") {
    CHECK(sanitize_utf8("Grüße, 世界 🌍\tok").text == "Grüße, 世界 🌍\tok");
    CHECK(sanitize_utf8("Grüße").invalid_sequences == 0);
    const std::string fffd = "\xEF\xBF\xBD";
    // A stray continuation byte and an impossible byte: one U+FFFD each.
    auto s = sanitize_utf8("a\x80" "b\xFF" "c");
    CHECK(s.text == "a" + fffd + "b" + fffd + "c");
    CHECK(s.invalid_sequences == 2);
    // A truncated 3-byte sequence is one maximal subpart: one U+FFFD.
    CHECK(sanitize_utf8("x\xE2\x82").text == "x" + fffd);
    CHECK(sanitize_utf8("\xE2\x82" "y").text == fffd + "y");
    // Overlong '/' (C0 AF): both bytes invalid on their own.
    CHECK(sanitize_utf8("\xC0\xAF").text == fffd + fffd);
    // Surrogate U+D800 (ED A0 80): ED cannot be followed by A0, so three replacements, as ICU does.
    CHECK(sanitize_utf8("\xED\xA0\x80").invalid_sequences == 3);
    // Above U+10FFFF.
    CHECK(sanitize_utf8("\xF4\x90\x80\x80").invalid_sequences == 4);
    CHECK(sanitize_utf8("\xF0\x9F\x8C\x8D").invalid_sequences == 0);
}

TEST_CASE("sanitize_utf8 turns control characters into spaces, keeps tabs") {
    const std::string with_nul("a\0b\x01" "c\x7F" "d\xC2\x85" "e\tf", 12);
    const auto s = sanitize_utf8(with_nul);
    CHECK(s.text == "a b c d e\tf");
    CHECK(s.control_chars == 4);
    CHECK(s.invalid_sequences == 0);
    CHECK(is_valid_utf8(s.text));
    CHECK_FALSE(is_valid_utf8("\xC3"));
    CHECK(utf8_length("Grüße") == 5);
    CHECK(utf8_prefix("Grüße", 3) == "Gr");
}

TEST_CASE("sentence splitter: sentences, separators, abbreviations, no-space scripts") {
    SentenceSplitter splitter("en");
    auto s = splitter.split("  Hello world.  How are you? Fine!  ");
    REQUIRE(s.size() == 3);
    CHECK(s[0].text == "Hello world.");
    CHECK(s[0].separator == "  ");
    CHECK(s[1].text == "How are you?");
    CHECK(s[1].separator == " ");
    CHECK(s[2].text == "Fine!");
    CHECK(s[2].separator.empty());

    s = splitter.split("Mr. Smith went to Washington. He was tired.");
    REQUIRE(s.size() == 2);
    CHECK(s[0].text == "Mr. Smith went to Washington.");

    CHECK(splitter.split("   ").empty());
    CHECK(splitter.split("").empty());
    CHECK(splitter.split("no final stop").size() == 1);

    s = splitter.split("你好。你好吗？");
    REQUIRE(s.size() == 2);
    CHECK(s[0].text == "你好。");
    CHECK(s[0].separator.empty());
}

TEST_CASE("plan_batches: every segment once, budget and row cap respected, similar lengths together") {
    std::mt19937 rng(7);
    std::vector<int> lengths(500);
    for (int& l : lengths) l = 1 + static_cast<int>(rng() % 120);
    lengths[17] = 900;  // longer than the budget on its own
    const BatchLimits limits{1000, 16};
    const auto batches = plan_batches(lengths, limits);
    std::vector<int> seen(lengths.size(), 0);
    int previous_longest = 1 << 30;
    for (const auto& batch : batches) {
        REQUIRE(!batch.empty());
        CHECK(static_cast<int>(batch.size()) <= limits.batch_size);
        int longest = 0, shortest = 1 << 30;
        for (const size_t i : batch) {
            ++seen[i];
            longest = std::max(longest, lengths[i]);
            shortest = std::min(shortest, lengths[i]);
        }
        if (batch.size() > 1) CHECK(static_cast<int>(batch.size()) * longest <= limits.max_batch_tokens);
        CHECK(longest <= previous_longest);  // longest batches first
        previous_longest = shortest;
    }
    for (const int count : seen) CHECK(count == 1);
    CHECK(plan_batches(std::vector<int>{}, limits).empty());
    CHECK_THROWS_AS(plan_batches(lengths, BatchLimits{0, 4}), Error);
}

TEST_CASE("translator restores input order and translations do not depend on batching or workers") {
    FakeEngine engine;
    const auto lines = random_lines(300, 1);
    std::vector<std::string> expected;
    for (const auto& l : lines) expected.push_back(upper_words(l));

    for (const int batch_size : {1, 3, 64}) {
        for (const int workers : {1, 3}) {
            TranslatorOptions options;
            options.limits = {200, batch_size};
            options.workers = workers;
            options.split_sentences = false;
            Translator translator(engine, options);
            const auto results = translator.translate(lines);
            REQUIRE(results.size() == lines.size());
            CHECK(texts_of(results) == expected);
            for (const auto& r : results) CHECK(r.complete);
            CHECK(translator.stats().lines == 300);
        }
    }
}

TEST_CASE("translator batches by token budget: no batch over budget unless alone, rows capped") {
    FakeEngine engine;
    TranslatorOptions options;
    options.limits = {60, 5};
    options.split_sentences = false;
    Translator translator(engine, options);
    translator.translate(random_lines(200, 2));
    for (const auto& batch : engine.batches()) {
        size_t longest = 0;
        for (const auto& ids : batch) longest = std::max(longest, ids.size());
        CHECK(batch.size() <= 5);
        if (batch.size() > 1) CHECK(batch.size() * longest <= 60);
    }
}

TEST_CASE("translator splits lines into sentences and rejoins them on one line") {
    FakeEngine engine;
    Translator translator(engine, TranslatorOptions{});
    const auto results = translator.translate({"The cat sat. The dog barked!  Why?", "", "   ", "one"});
    REQUIRE(results.size() == 4);
    CHECK(results[0].nbest[0].text == "THE CAT SAT. THE DOG BARKED!  WHY?");
    CHECK(results[0].sentences == 3);
    CHECK(results[0].nbest[1].text == "the cat sat. the dog barked!  why?");
    CHECK(results[0].nbest[0].score == doctest::Approx(-0.5));
    CHECK(results[1].nbest[0].text.empty());
    CHECK(results[1].sentences == 0);
    CHECK(results[2].nbest[0].text.empty());
    CHECK(results[3].nbest[0].text == "ONE");
    // Three sentences went to the model as separate rows, not one long row.
    size_t rows = 0;
    for (const auto& b : engine.batches()) rows += b.size();
    CHECK(rows == 4);

    FakeEngine whole_engine;
    TranslatorOptions no_split;
    no_split.split_sentences = false;
    Translator whole(whole_engine, no_split);
    CHECK(whole.translate({"The cat sat. The dog barked!"})[0].nbest[0].text == "THE CAT SAT. THE DOG BARKED!");
    REQUIRE(whole_engine.batches().size() == 1);
    CHECK(whole_engine.batches()[0].size() == 1);
}

TEST_CASE("translator cuts a sentence longer than the model's positions into pieces, with a warning") {
    FakeEngine engine(/*max_tokens=*/8);
    TranslatorOptions options;
    options.split_sentences = false;
    Translator translator(engine, options);
    std::string line;
    for (int i = 0; i < 30; ++i) line.append("w").append(std::to_string(i)).append(" ");
    std::vector<std::string> warnings;
    TranslateHooks hooks;
    hooks.warn = [&](size_t index, const std::string& message) {
        warnings.push_back(std::to_string(index) + ": " + message);
    };
    const auto results = translator.translate({"short one", line}, hooks);
    CHECK(results[1].nbest[0].text == upper_words(line));  // nothing lost, nothing reordered
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].find("1: sentence 1 has 31 tokens") == 0);
    CHECK(warnings[0].find("5 pieces") != std::string::npos);
    for (const auto& batch : engine.batches())
        for (const auto& ids : batch) CHECK(ids.size() <= 8);
}

TEST_CASE("translator: a failing sentence empties only its own line, with a warning") {
    FakeEngine engine;
    TranslatorOptions options;
    options.limits = {4096, 8};
    Translator translator(engine, options);
    std::vector<std::string> warnings;
    TranslateHooks hooks;
    hooks.warn = [&](size_t index, const std::string& m) { warnings.push_back(std::to_string(index) + ": " + m); };
    const auto results = translator.translate({"good one", "a POISON b. fine", "also good"}, hooks);
    CHECK(results[0].nbest[0].text == "GOOD ONE");
    CHECK(results[1].nbest[0].text.empty());
    CHECK(results[1].failed);
    CHECK(results[2].nbest[0].text == "ALSO GOOD");
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].find("1: cannot be translated") == 0);
}

TEST_CASE("translator: a batch too large for the decoder runs again in halves, with the same results") {
    FakeEngine engine;
    TranslatorOptions options;
    options.limits = {4096, 8};
    options.workers = 2;
    Translator translator(engine, options);
    std::vector<std::string> lines = random_lines(40, 17);
    for (size_t i : {3u, 4u, 11u, 30u}) lines[i] += " HUGE";
    std::vector<std::string> warnings;
    TranslateHooks hooks;
    hooks.warn = [&](size_t index, const std::string& m) { warnings.push_back(std::to_string(index) + ": " + m); };
    const auto results = translator.translate(lines, hooks);
    CHECK(warnings.empty());
    for (size_t i = 0; i < lines.size(); ++i) CHECK(results[i].nbest.at(0).text == upper_words(lines[i]));
    // Each HUGE sentence was finally translated in a batch of its own; the others kept company.
    int alone = 0;
    size_t largest = 0;
    for (const auto& batch : engine.batches()) {
        largest = std::max(largest, batch.size());
        for (const auto& ids : batch)
            for (size_t k = 0; k + 1 < ids.size(); ++k)
                if (engine.word(ids[k]) == "HUGE" && batch.size() == 1) ++alone;
    }
    CHECK(alone == 4);
    CHECK(largest > 1);
}

TEST_CASE("translator: a cancelled run leaves the remaining lines incomplete") {
    FakeEngine engine;
    TranslatorOptions options;
    options.split_sentences = false;
    Translator translator(engine, options);
    std::atomic<bool> cancel{true};
    TranslateHooks hooks;
    hooks.cancel = &cancel;
    const auto results = translator.translate({"a b", "c", ""}, hooks);
    CHECK_FALSE(results[0].complete);
    CHECK_FALSE(results[1].complete);
    CHECK(results[2].complete);  // nothing to translate
}

TEST_CASE("formats: text, n-best, tsv and jsonl records") {
    LineTranslation t;
    t.nbest = {{"Hallo Welt", -0.25f, {"▁Hallo", "▁Welt"}, 3}, {"Hallo, Welt", -0.75f, {}, 4}};
    t.complete = true;
    InputRecord record{"\"doc-1\"", "Hello world", ""};
    OutputOptions o;
    CHECK(format_output(o, 4, record, "Hello world", t) == "Hallo Welt\n");
    o.scores = true;
    CHECK(format_output(o, 4, record, "Hello world", t) == "4 ||| Hallo Welt ||| -0.2500\n");
    o.scores = false;
    o.nbest = 2;
    CHECK(format_output(o, 0, record, "Hello world", t) == "0 ||| Hallo Welt ||| -0.2500\n0 ||| Hallo, Welt ||| -0.7500\n");
    o = {};
    o.format = Format::tsv;
    CHECK(format_output(o, 0, record, "Hello\tworld", t) == "Hello world\tHallo Welt\n");
    o.format = Format::jsonl;
    CHECK(format_output(o, 0, record, "Hello world", t) == "{\"id\":\"doc-1\",\"translation\":\"Hallo Welt\"}\n");
    o.nbest = 2;
    o.tokens = true;
    CHECK(format_output(o, 0, record, "Hello world", t) ==
          "{\"id\":\"doc-1\",\"translation\":\"Hallo Welt\",\"score\":-0.25,\"nbest\":[{\"translation\":\"Hallo "
          "Welt\",\"score\":-0.25},{\"translation\":\"Hallo, Welt\",\"score\":-0.75}],\"tokens\":[\"▁Hallo\",\"▁Welt\"]}\n");
    // A translation with a newline still gives one line.
    t.nbest[0].text = "a\nb";
    o = {};
    CHECK(format_output(o, 0, record, "x", t) == "a b\n");
    CHECK(parse_format("tsv", "--format") == Format::tsv);
    CHECK_THROWS_WITH_AS(parse_format("xml", "--format"), doctest::Contains("--format: unknown format 'xml'"), Error);
}

TEST_CASE("parse_jsonl_record: id of any type, text required") {
    auto r = parse_jsonl_record(R"({"id": 7, "text": "Hi"})", 3);
    CHECK(r.id_json == "7");
    CHECK(r.text == "Hi");
    CHECK(r.problem.empty());
    r = parse_jsonl_record(R"({"text": "Hi", "id": {"doc": "a"}})", 3);
    CHECK(r.id_json == R"({"doc":"a"})");
    r = parse_jsonl_record(R"({"text": "Hi"})", 3);
    CHECK(r.id_json == "3");
    r = parse_jsonl_record(R"({"id": 1, "txt": "Hi"})", 3);
    CHECK(r.problem == "no string field \"text\"");
    CHECK(r.id_json == "1");
    r = parse_jsonl_record("not json", 9);
    CHECK(r.problem == "not a JSON object");
    CHECK(r.id_json == "9");
}

TEST_CASE("LineReader: terminators, CRLF, BOM, last line without newline, long lines, line count") {
    const testing::TempDir tmp("tolk_test_pipeline_reader");
    const fs::path& dir = tmp.path;
    const std::string long_line(300000, 'x');
    write_file(dir / "in.txt", "\xEF\xBB\xBFone\r\n\ntwo\n" + long_line + "\nlast");
    LineReader reader((dir / "in.txt").string());
    CHECK(reader.count_lines() == 5);
    std::vector<std::string> lines;
    for (std::string line; reader.next(line);) lines.push_back(line);
    REQUIRE(lines.size() == 5);
    CHECK(lines[0] == "one");
    CHECK(lines[1].empty());
    CHECK(lines[2] == "two");
    CHECK(lines[3] == long_line);
    CHECK(lines[4] == "last");
    CHECK_THROWS_WITH_AS(LineReader((dir / "missing.txt").string()), doctest::Contains("missing.txt: cannot open input"),
                         Error);
    CHECK_THROWS_WITH_AS(LineReader(dir.string()), doctest::Contains("it is a directory"), Error);
}

TEST_CASE("AtomicFile: appears only on commit, leaves nothing behind otherwise") {
    const testing::TempDir tmp("tolk_test_pipeline_atomic");
    const fs::path& dir = tmp.path;
    {
        AtomicFile file(dir / "out.txt");
        file.stream() << "partial";
        CHECK_FALSE(fs::exists(dir / "out.txt"));
    }
    CHECK(fs::is_empty(dir));
    {
        AtomicFile file(dir / "out.txt");
        file.stream() << "complete\n";
        file.commit();
    }
    std::ifstream in(dir / "out.txt");
    std::string content;
    std::getline(in, content);
    CHECK(content == "complete");
    CHECK(std::distance(fs::directory_iterator(dir), fs::directory_iterator()) == 1);
    CHECK_THROWS_WITH_AS(AtomicFile(dir / "no" / "such" / "dir.txt"), doctest::Contains("cannot write output"), Error);
}

TEST_CASE("translate_stream: one record per line, in order, bad lines warned by name and number") {
    const testing::TempDir tmp("tolk_test_pipeline_stream");
    const fs::path& dir = tmp.path;
    std::string input;
    std::vector<std::string> expected;
    const auto lines = random_lines(1000, 3);
    for (size_t i = 0; i < lines.size(); ++i) {
        if (i == 10) {
            input += "bad \xFF byte\n";
            expected.push_back("BAD \xEF\xBF\xBD BYTE");
        } else if (i == 20) {
            input += std::string("nul\0inside", 10) + "\n";
            expected.push_back("NUL INSIDE");
        } else {
            input += lines[i] + "\n";
            expected.push_back(upper_words(lines[i]));
        }
    }
    write_file(dir / "in.txt", input);
    FakeEngine engine;
    TranslatorOptions options;
    options.limits = {100, 4};
    options.workers = 2;
    Translator translator(engine, options);
    std::FILE* err = std::tmpfile();
    Progress progress(ProgressOptions{}, err);
    LineReader reader((dir / "in.txt").string());
    std::ostringstream out;
    StreamOptions stream_options;
    stream_options.window_lines = 64;
    const StreamTotals totals = translate_stream(translator, reader, out, stream_options, progress);
    CHECK(totals.lines_read == 1000);
    CHECK(totals.lines_written == 1000);
    CHECK_FALSE(totals.interrupted);
    std::istringstream got(out.str());
    std::vector<std::string> got_lines;
    for (std::string l; std::getline(got, l);) got_lines.push_back(l);
    CHECK(got_lines == expected);
    std::rewind(err);
    char buffer[4096] = {};
    const size_t n = std::fread(buffer, 1, sizeof buffer - 1, err);
    std::fclose(err);
    CHECK(std::string(buffer, n) == "tolk: warning: " + (dir / "in.txt").string() + ":11: invalid UTF-8 replaced with U+FFFD\n");
}

TEST_CASE("translate_stream: JSONL in, JSONL out, ids kept, a broken record gives an empty translation") {
    const testing::TempDir tmp("tolk_test_pipeline_jsonl");
    const fs::path& dir = tmp.path;
    write_file(dir / "in.jsonl", "{\"id\": \"a\", \"text\": \"hello there\"}\nbroken\n{\"id\": 3, \"text\": \"\"}\n");
    FakeEngine engine;
    Translator translator(engine, TranslatorOptions{});
    std::FILE* err = std::tmpfile();
    Progress progress(ProgressOptions{}, err);
    LineReader reader((dir / "in.jsonl").string());
    std::ostringstream out;
    StreamOptions o;
    o.input_format = Format::jsonl;
    o.output.format = Format::jsonl;
    translate_stream(translator, reader, out, o, progress);
    std::fclose(err);
    CHECK(out.str() ==
          "{\"id\":\"a\",\"translation\":\"HELLO THERE\"}\n{\"id\":2,\"translation\":\"\"}\n{\"id\":3,\"translation\":\"\"}\n");
}

TEST_CASE("progress summary and durations") {
    CHECK(Progress::duration_text(7.2) == "7s");
    CHECK(Progress::duration_text(65) == "1m05s");
    CHECK(Progress::duration_text(7380) == "2h03m");
    CHECK(Progress::summary_text(10, {10, 12, 100, 200}, 2.0) ==
          "10 lines, 12 sentences, 100 source + 200 target tokens in 2.0 s (100 target tokens/s)");
}

TEST_CASE("progress line: a resumed job counts the whole job, its ETA only this run's speed") {
    // 600 of 1000 lines done, 500 of them by an earlier run: 100 lines in 10 s, 400 left -> 40 s.
    CHECK(Progress::progress_text("", 600, 1000, 500, 10.0, 1.5, 20) ==
          "600/1000 lines (60%), ETA 40s, 1.5 sentences/s, 20 tokens/s");
    CHECK(Progress::progress_text("shard 2/4", 10, 250, 0, 2.0, 5, 50) ==
          "shard 2/4: 10/250 lines (4%), ETA 48s, 5.0 sentences/s, 50 tokens/s");
    CHECK(Progress::progress_text("", 500, 1000, 500, 1.0, 0, 0) == "500/1000 lines (50%), 0.0 sentences/s, 0 tokens/s");
    CHECK(Progress::progress_text("", 7, std::nullopt, 0, 1.0, 0, 0) == "7 lines, 0.0 sentences/s, 0 tokens/s");
    CHECK(Progress::summary_text(10, {10, 8, 100, 200, 4}, 2.0) ==
          "10 lines, 12 sentences (8 translated, 4 reused), 100 source + 200 target tokens in 2.0 s (100 target tokens/s)");
}

TEST_CASE("SentenceCache: finds what was stored, evicts least recently used, stays within its bound") {
    const std::vector<SegmentHypothesis> nbest = {{std::string(100, 'x'), -1.0f, {"a", "b"}, 3}};
    SentenceCache cache(2000);
    for (int32_t i = 0; i < 100; ++i) {
        cache.insert({i, 0}, nbest);
        CHECK(cache.bytes() <= 2000);
    }
    CHECK(cache.size() > 2);
    CHECK(cache.size() < 100);
    CHECK(cache.find({0, 0}) == nullptr);  // evicted long ago
    const auto* hit = cache.find({99, 0});
    REQUIRE(hit != nullptr);
    CHECK(hit->front().text == nbest.front().text);
    CHECK(hit->front().tokens == nbest.front().tokens);
    // Touching the oldest surviving entry protects it from the next eviction.
    int32_t oldest = 0;
    while (!cache.find({oldest, 0})) ++oldest;
    cache.insert({1000, 0}, nbest);
    CHECK(cache.find({oldest, 0}) != nullptr);
    CHECK(cache.find({oldest + 1, 0}) == nullptr);
    // Too large for the bound: not stored; disabled: nothing stored.
    cache.insert({5000, 0}, {{std::string(5000, 'y'), 0.0f, {}, 1}});
    CHECK(cache.find({5000, 0}) == nullptr);
    SentenceCache off(0);
    off.insert({1, 0}, nbest);
    CHECK(off.find({1, 0}) == nullptr);
}

TEST_CASE("translator: each distinct sentence goes to the model once, results identical to no cache") {
    std::vector<std::string> lines;
    const auto distinct = random_lines(40, 9);
    std::mt19937 rng(3);
    for (int i = 0; i < 400; ++i) lines.push_back(distinct[rng() % distinct.size()] + ". Thank you!");
    for (const bool split : {true, false}) {
        FakeEngine plain_engine, cached_engine;
        TranslatorOptions options;
        options.split_sentences = split;
        options.limits = {300, 8};
        options.cache_bytes = 0;
        Translator plain(plain_engine, options);
        options.cache_bytes = 1 << 20;
        Translator cached(cached_engine, options);
        std::vector<LineTranslation> a, b;
        for (size_t begin = 0; begin < lines.size(); begin += 100) {  // several calls: the cache spans them
            const std::vector<std::string> window(lines.begin() + static_cast<std::ptrdiff_t>(begin),
                                                  lines.begin() + static_cast<std::ptrdiff_t>(begin + 100));
            for (auto& r : plain.translate(window)) a.push_back(std::move(r));
            for (auto& r : cached.translate(window)) b.push_back(std::move(r));
        }
        REQUIRE(a.size() == b.size());
        for (size_t i = 0; i < a.size(); ++i) {
            REQUIRE(a[i].nbest.size() == b[i].nbest.size());
            for (size_t k = 0; k < a[i].nbest.size(); ++k) {
                CHECK(a[i].nbest[k].text == b[i].nbest[k].text);
                CHECK(a[i].nbest[k].score == b[i].nbest[k].score);
                CHECK(a[i].nbest[k].tokens == b[i].nbest[k].tokens);
            }
            CHECK(a[i].source_tokens == b[i].source_tokens);
        }
        std::set<std::vector<int32_t>> seen;
        size_t rows = 0;
        for (const auto& batch : cached_engine.batches())
            for (const auto& ids : batch) {
                CHECK(seen.insert(ids).second);  // never the same sequence twice
                ++rows;
            }
        const TranslatorStats stats = cached.stats();
        CHECK(stats.sentences == static_cast<int64_t>(rows));
        CHECK(stats.sentences + stats.reused == plain.stats().sentences);
        CHECK(stats.reused > 0);
        CHECK(plain.stats().reused == 0);
    }
}

TEST_CASE("translator with cache: a failing sentence fails every repeat, and is not cached") {
    FakeEngine engine;
    Translator translator(engine, TranslatorOptions{});
    const auto results = translator.translate({"a POISON b", "fine", "a POISON b"});
    CHECK(results[0].failed);
    CHECK(results[2].failed);
    CHECK(results[1].nbest[0].text == "FINE");
    CHECK(translator.translate({"a POISON b"})[0].failed);
}

TEST_CASE("parse_shard and Shard ranges: contiguous, covering, sizes within one line") {
    CHECK(parse_shard("2/8").index == 2);
    CHECK(parse_shard("2/8").count == 8);
    for (const char* bad : {"0/4", "5/4", "4", "/4", "1/", "a/b", "1/-2", "1/1000000", ""})
        CHECK_THROWS_WITH_AS(parse_shard(bad), doctest::Contains("--shard"), Error);
    for (const int64_t lines : {0, 1, 5, 100, 1001}) {
        for (const int n : {1, 2, 3, 7, 16}) {
            int64_t next = 0;
            for (int k = 1; k <= n; ++k) {
                const Shard s{k, n};
                CHECK(s.begin(lines) == next);
                CHECK(s.end(lines) >= s.begin(lines));
                CHECK(s.end(lines) - s.begin(lines) <= lines / n + 1);
                next = s.end(lines);
            }
            CHECK(next == lines);
        }
    }
}

TEST_CASE("translate_stream: skip and max lines keep the whole input's numbering") {
    const testing::TempDir tmp("tolk_test_pipeline_skip");
    std::string input;
    for (int i = 0; i < 50; ++i) input += "w" + std::to_string(i) + "\n";
    write_file(tmp.path / "in.txt", input);
    FakeEngine engine;
    Translator translator(engine, TranslatorOptions{});
    std::FILE* err = std::tmpfile();
    Progress progress(ProgressOptions{}, err);
    const auto run = [&](int64_t skip, int64_t max) {
        LineReader reader((tmp.path / "in.txt").string());
        std::ostringstream out;
        StreamOptions o;
        o.output.nbest = 2;
        o.window_lines = 7;
        o.skip_lines = skip;
        o.max_lines = max;
        std::vector<int64_t> checkpoints;
        o.on_written = [&](int64_t n) { checkpoints.push_back(n); };
        const StreamTotals t = translate_stream(translator, reader, out, o, progress);
        CHECK(t.lines_written == (max < 0 ? 50 - skip : std::min<int64_t>(max, 50 - skip)));
        CHECK((checkpoints.empty() ? 0 : checkpoints.back()) == t.lines_written);
        return out.str();
    };
    const std::string whole = run(0, -1);
    CHECK(whole.find("49 ||| W49 ||| -0.5000\n") != std::string::npos);
    CHECK(run(0, 20) + run(20, 13) + run(33, -1) == whole);
    CHECK(run(50, -1).empty());
    std::fclose(err);
}

TEST_CASE("ResumableOutput: checkpoints survive, a reopened job continues, another job is refused") {
    const testing::TempDir tmp("tolk_test_pipeline_resume");
    const fs::path out = tmp.path / "out.txt";
    const nlohmann::json job = {{"input", {{"path", "/in.txt"}, {"size", 10}, {"hash", "ab"}}},
                                {"model", {{"dir", "/m"}, {"hash", "cd"}}},
                                {"options", {{"--beam", 4}}}};
    {
        ResumableOutput o(out, job);
        CHECK_FALSE(o.resumed());
        CHECK(o.lines_done() == 0);
        CHECK(fs::exists(o.state_path()));
        o.stream() << "one\ntwo\n";
        o.checkpoint(2);
        o.stream() << "three, cut by a kill\n";
        o.stream().flush();
        // A second writer of the same output is refused while the first holds it.
        testing::check_error([&] { ResumableOutput second(out, job); }, {"another tolk run is writing this output"});
    }  // "killed": no commit
    CHECK_FALSE(fs::exists(out));
    nlohmann::json other = job;
    other["options"]["--beam"] = 1;
    testing::check_error([&] { ResumableOutput again(out, other); }, {"cannot resume", "--beam was 4, now 1", "start over"});
    other = job;
    other["input"]["size"] = 11;
    testing::check_error([&] { ResumableOutput again(out, other); }, {"the input /in.txt changed since (10 bytes then, 11 now"});
    {
        ResumableOutput o(out, job);
        CHECK(o.resumed());
        CHECK(o.lines_done() == 2);
        o.stream() << "three\n";
        o.checkpoint(3);
        o.commit();
    }
    std::ifstream in(out, std::ios::binary);
    CHECK(std::string(std::istreambuf_iterator<char>(in), {}) == "one\ntwo\nthree\n");
    CHECK(std::distance(fs::directory_iterator(tmp.path), fs::directory_iterator()) == 1);

    if (fs::exists("/dev/null"))
        testing::check_error([&] { ResumableOutput null_output("/dev/null", job); }, {"not a regular file"});

    write_file(tmp.path / "a.txt", "x\ny\nlast");
    write_file(tmp.path / "b.txt", "x\ny\nlasT");
    const FileScan a = scan_file(tmp.path / "a.txt");
    CHECK(a.lines == 3);
    CHECK(a.size == 8);
    CHECK(a.hash == scan_file(tmp.path / "a.txt").hash);
    CHECK(a.hash != scan_file(tmp.path / "b.txt").hash);
}
