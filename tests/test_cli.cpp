// CLI tests: drive the built `tolk` binary (TOLK_BINARY) on the tiny fixture models through arguments, stdin,
// files, formats, exit codes and error messages, a 20,000-line mixed corpus, batching invariance, and an
// interactive pipe driver (tests/cli/pipe_driver.py) that deadlocks-fails rather than hangs.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "test_support.h"

namespace fs = std::filesystem;

namespace {

const fs::path kData = TOLK_TEST_DATA;
const fs::path kJoint = kData / "tiny-joint";
const fs::path kSeparate = kData / "tiny-separate";
const fs::path kDriver = fs::path(TOLK_TEST_DATA).parent_path() / "cli" / "pipe_driver.py";

struct RunResult {
    int rc = -1;
    std::string out;
    std::string err;
    std::vector<std::string> lines() const {
        std::vector<std::string> v;
        std::istringstream in(out);
        for (std::string l; std::getline(in, l);) v.push_back(l);
        return v;
    }
    int err_lines() const { return static_cast<int>(std::count(err.begin(), err.end(), '\n')); }
};

std::string quote(const std::string& s) {
    std::string q = "'";
    for (const char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

using tolk::testing::write_file;

// A scratch directory per test process, removed when the program exits.
const fs::path& scratch() {
    static const tolk::testing::TempDir dir("tolk_test_cli");
    return dir.path;
}

// Runs `tolk ARGS` (args already shell-quoted) with `input` on stdin; a 120 s timeout guards against hangs.
RunResult run_tolk(const std::string& args, const std::string& input = "", const std::string& env = "") {
    static int counter = 0;
    const fs::path base = scratch() / ("run" + std::to_string(++counter));
    write_file(base.string() + ".in", input);
    const std::string cmd = env + " timeout 120 " + quote(TOLK_BINARY) + " " + args + " < " +
                            quote(base.string() + ".in") + " > " + quote(base.string() + ".out") + " 2> " +
                            quote(base.string() + ".err");
    const int status = std::system(("cd " + quote(scratch().string()) + " && " + cmd).c_str());
    RunResult r;
    r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = read_file(base.string() + ".out");
    r.err = read_file(base.string() + ".err");
    return r;
}

// One oneDNN thread: the tiny models gain nothing from more, and ctest may run test programs side by side.
std::string model(const fs::path& dir) { return "-m " + quote(dir.string()) + " --threads 1"; }

nlohmann::json golden(const fs::path& dir) { return nlohmann::json::parse(read_file(dir / "golden.json")); }

std::vector<std::string> split_lines(const std::string& text) {
    std::vector<std::string> v;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) v.push_back(l);
    return v;
}

}  // namespace

TEST_CASE("fixtures are present") {
    REQUIRE(fs::exists(kJoint / "config.json"));
    REQUIRE(fs::exists(kSeparate / "config.json"));
}

TEST_CASE("arguments: each argument one line, matching the reference translations (beam 4 and greedy)") {
    for (const auto& dir : {kJoint, kSeparate}) {
        const auto g = golden(dir);
        std::string args, expected_beam, expected_greedy;
        for (const auto& c : g["cases"]) {
            args.append(" ").append(quote(c["text"].get<std::string>()));
            expected_beam += c["beam4_text"].get<std::string>() + "\n";
            expected_greedy += c["greedy_text"].get<std::string>() + "\n";
        }
        // --no-split: the reference translated each case as one sequence.
        RunResult r = run_tolk("translate -m " + quote(dir.string()) + " --no-split" + args);  // default threads
        CHECK(r.rc == 0);
        CHECK(r.err == "");
        CHECK(r.out == expected_beam);
        r = run_tolk(model(dir) + " --no-split --beam 1" + args);  // bare text: translate is the default command
        CHECK(r.rc == 0);
        CHECK(r.out == expected_greedy);
    }
}

TEST_CASE("stdin: one output line per input line, empty lines stay empty, same as argument by argument") {
    const auto g = golden(kJoint);
    std::vector<std::string> texts;
    for (const auto& c : g["cases"]) texts.push_back(c["text"]);
    std::string input, args;
    for (const auto& t : texts) {
        input += t + "\n\n   \n";
        args.append(" ").append(quote(t));
    }
    const RunResult alone = run_tolk(model(kJoint) + " --max-new-tokens 12" + args);
    REQUIRE(alone.rc == 0);
    const auto expected = alone.lines();
    const RunResult r = run_tolk(model(kJoint) + " --max-new-tokens 12", input);
    CHECK(r.rc == 0);
    CHECK(r.err == "");
    const auto lines = r.lines();
    REQUIRE(lines.size() == 3 * texts.size());
    for (size_t i = 0; i < texts.size(); ++i) {
        CHECK(lines[3 * i] == expected[i]);
        CHECK(lines[3 * i + 1] == "");
        CHECK(lines[3 * i + 2] == "");
    }
    // No trailing newline on the last line, CRLF line ends: still one line each.
    const RunResult crlf = run_tolk(model(kJoint) + " --max-new-tokens 12", texts[0] + "\r\n" + texts[1]);
    CHECK(crlf.rc == 0);
    CHECK(crlf.lines() == std::vector<std::string>{expected[0], expected[1]});
}

TEST_CASE("files: -i several files, -o one output, --output-dir one output per input") {
    const fs::path dir = scratch() / "files";
    fs::create_directories(dir);
    write_file(dir / "a.txt", "Hello.\nA man.\n");
    write_file(dir / "b.txt", "Two dogs.\n");
    const RunResult ref = run_tolk(model(kJoint) + " --max-new-tokens 10 Hello. 'A man.' 'Two dogs.'");
    REQUIRE(ref.rc == 0);
    RunResult r = run_tolk(model(kJoint) + " --max-new-tokens 10 -i " + quote((dir / "a.txt").string()) + " " +
                           quote((dir / "b.txt").string()) + " -o " + quote((dir / "out.txt").string()));
    CHECK(r.rc == 0);
    CHECK(r.out == "");
    CHECK(read_file(dir / "out.txt") == ref.out);
    r = run_tolk(model(kJoint) + " --max-new-tokens 10 -i " + quote((dir / "a.txt").string()) + " " +
                 quote((dir / "b.txt").string()) + " --output-dir " + quote((dir / "out").string()));
    CHECK(r.rc == 0);
    const auto ref_lines = ref.lines();
    CHECK(read_file(dir / "out" / "a.txt") == ref_lines[0] + "\n" + ref_lines[1] + "\n");
    CHECK(read_file(dir / "out" / "b.txt") == ref_lines[2] + "\n");
    // No temporary files left next to the outputs.
    int entries = 0;
    for (const auto& e : fs::directory_iterator(dir / "out")) entries += e.is_regular_file();
    CHECK(entries == 2);
}

TEST_CASE("user mistakes: exit 2, one line on stderr naming the problem, no output file left") {
    const fs::path dir = scratch() / "mistakes";
    fs::create_directories(dir / "empty-model");
    const std::string out = quote((dir / "out.txt").string());
    struct Case {
        std::string args;
        std::string needle;
    };
    const std::vector<Case> cases = {
        {model(kJoint) + " -i " + quote((dir / "missing.txt").string()) + " -o " + out, "missing.txt"},
        {model(kJoint) + " -o " + quote((dir / "no" / "such" / "dir.txt").string()) + " hi", "dir.txt"},
        {"-m " + quote((dir / "empty-model").string()) + " -o " + out + " hi", "empty-model"},
        {"-m " + quote((dir / "nonexistent").string()) + " hi", "nonexistent"},
        {model(kJoint) + " --beam abc hi", "--beam"},
        {model(kJoint) + " --beam 0 hi", "--beam"},
        {model(kJoint) + " --nbest 0 hi", "--nbest"},
        {model(kJoint) + " --format xml hi", "--format"},
        {model(kJoint) + " --no-such-option hi", "--no-such-option"},
        {model(kJoint) + " --beam 2 --nbest 3 hi", "--nbest"},
        {model(kJoint) + " --batch-size -1 hi", "--batch-size"},
        {"info -m " + quote((dir / "empty-model").string()), "empty-model"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.args);
        const RunResult r = run_tolk(c.args);
        CHECK(r.rc == 2);
        CHECK(r.err_lines() == 1);
        CHECK(r.err.rfind("tolk: error: ", 0) == 0);
        CHECK(r.err.find(c.needle) != std::string::npos);
        CHECK(r.err.find("terminate") == std::string::npos);
        CHECK(r.out == "");
        CHECK_FALSE(fs::exists(dir / "out.txt"));
    }
    // A model directory with a broken safetensors file.
    fs::create_directories(dir / "broken-model");
    for (const auto& e : fs::directory_iterator(kJoint)) fs::copy_file(e.path(), dir / "broken-model" / e.path().filename());
    fs::resize_file(dir / "broken-model" / "model.safetensors", 100);
    const RunResult r = run_tolk("-m " + quote((dir / "broken-model").string()) + " -o " + out + " hi");
    CHECK(r.rc == 2);
    CHECK(r.err_lines() == 1);
    CHECK(r.err.find("model.safetensors") != std::string::npos);
    CHECK_FALSE(fs::exists(dir / "out.txt"));
    int leftovers = 0;
    for (const auto& e : fs::directory_iterator(dir)) leftovers += e.is_regular_file();
    CHECK(leftovers == 0);
}

TEST_CASE("help, info and models") {
    RunResult r = run_tolk("--help");
    CHECK(r.rc == 0);
    CHECK(r.out.find("Examples") != std::string::npos);
    CHECK(r.out.find("Exit codes") != std::string::npos);
    r = run_tolk("translate --help");
    CHECK(r.rc == 0);
    CHECK(r.out.find("--max-batch-tokens") != std::string::npos);
    r = run_tolk("info -m " + quote(kSeparate.string()));
    CHECK(r.rc == 0);
    CHECK(r.out.find("parameters: ") != std::string::npos);
    CHECK(r.out.find("model.encoder.embed_tokens.weight") != std::string::npos);
    CHECK(r.out.find("F16") != std::string::npos);
    CHECK(r.out.find("\"d_model\": 48") != std::string::npos);
    r = run_tolk("models", "", "TOLK_MODEL_PATH=" + quote(kData.string()));
    CHECK(r.rc == 0);
    CHECK(r.out.find("tiny-joint") != std::string::npos);
    CHECK(r.out.find("tiny-separate") != std::string::npos);
    // TOLK_MODEL and model names from the search path.
    const RunResult by_path = run_tolk(model(kJoint) + " --max-new-tokens 6 'A dog.'");
    r = run_tolk("--threads 1 --max-new-tokens 6 'A dog.'", "", "TOLK_MODEL=" + quote(kJoint.string()));
    CHECK(r.rc == 0);
    CHECK(r.out == by_path.out);
    r = run_tolk("-m tiny-joint --threads 1 --max-new-tokens 6 'A dog.'", "", "TOLK_MODEL_PATH=" + quote(kData.string()));
    CHECK(r.rc == 0);
    CHECK(r.out == by_path.out);
    // --from/--to pick among the models found (both fixtures are en->de; tiny-joint sorts first).
    r = run_tolk("--from en --to de --threads 1 --max-new-tokens 6 'A dog.'", "",
                 "TOLK_MODEL_PATH=" + quote(kData.string()));
    CHECK(r.rc == 0);
    CHECK(r.out == by_path.out);
    r = run_tolk("--from en --to xx 'A dog.'", "", "TOLK_MODEL_PATH=" + quote(kData.string()));
    CHECK(r.rc == 2);
    CHECK(r.err.find("--from/--to: no model translates en->xx") != std::string::npos);
}

TEST_CASE("formats: jsonl in and out with ids, scores, n-best and tokens; tsv") {
    const std::string input = R"({"id": "x1", "text": "A man is walking."})" "\n" R"({"id": 2, "text": ""})" "\n"
                              "not json\n";
    RunResult r = run_tolk(model(kJoint) + " --input-format jsonl --format jsonl --nbest 2 --tokens --max-new-tokens 8",
                           input);
    CHECK(r.rc == 0);
    const auto lines = r.lines();
    REQUIRE(lines.size() == 3);
    const auto first = nlohmann::json::parse(lines[0]);
    CHECK(first["id"] == "x1");
    CHECK(first["translation"].is_string());
    CHECK(first["nbest"].size() == 2);
    CHECK(first["nbest"][0]["translation"] == first["translation"]);
    CHECK(first["score"] == first["nbest"][0]["score"]);
    CHECK(first["score"].get<double>() >= first["nbest"][1]["score"].get<double>());
    CHECK(first["tokens"].size() > 0);
    CHECK(nlohmann::json::parse(lines[1])["translation"] == "");
    CHECK(nlohmann::json::parse(lines[2])["id"] == 3);
    CHECK(r.err.find("<stdin>:3: not a JSON object") != std::string::npos);

    r = run_tolk(model(kJoint) + " --format tsv --max-new-tokens 8", "A man.\n\nTwo dogs.\n");
    CHECK(r.rc == 0);
    const auto tsv = r.lines();
    REQUIRE(tsv.size() == 3);
    CHECK(tsv[0].rfind("A man.\t", 0) == 0);
    CHECK(tsv[1] == "\t");

    // Text n-best: "N ||| translation ||| score", N counting input lines from 0, scores best first.
    r = run_tolk(model(kJoint) + " --nbest 3 --max-new-tokens 8", "A man.\nTwo dogs.\n");
    CHECK(r.rc == 0);
    const auto nbest = r.lines();
    REQUIRE(nbest.size() == 6);
    CHECK(nbest[0].rfind("0 ||| ", 0) == 0);
    CHECK(nbest[3].rfind("1 ||| ", 0) == 0);
}

TEST_CASE("multi-sentence lines are split, translated as sentences and rejoined on one line") {
    const RunResult parts = run_tolk(model(kJoint) + " --max-new-tokens 10 'A man is walking.' 'Two dogs play.'");
    REQUIRE(parts.rc == 0);
    const auto p = parts.lines();
    RunResult r = run_tolk(model(kJoint) + " --max-new-tokens 10 'A man is walking. Two dogs play.'");
    CHECK(r.rc == 0);
    CHECK(r.out == p[0] + " " + p[1] + "\n");
    r = run_tolk(model(kJoint) + " --max-new-tokens 10 --no-split 'A man is walking. Two dogs play.'");
    CHECK(r.rc == 0);
    CHECK(r.lines().size() == 1);
}

TEST_CASE("bad input: invalid UTF-8, NUL and control bytes, a 100,000-character line, binary junk") {
    std::string input = "A man.\n";
    input += "bad \xFF\xFE bytes.\n";
    input += std::string("nul\0in the\x01 middle.", 20) + "\n";
    std::string long_line;
    while (long_line.size() < 100000) long_line += "A man is walking down the street with a dog ";
    input += long_line + "\n";
    std::mt19937 rng(3);
    std::string junk;
    for (int i = 0; i < 5000; ++i) {
        char c = static_cast<char>(rng() & 0xFF);
        junk += c == '\n' ? ' ' : c;
    }
    input += junk + "\nTwo dogs.\n";
    const RunResult r = run_tolk(model(kJoint) + " --max-new-tokens 4 --beam 1", input);
    CHECK(r.rc == 0);
    const auto lines = r.lines();
    REQUIRE(lines.size() == 6);
    const RunResult ref = run_tolk(model(kJoint) + " --max-new-tokens 4 --beam 1 'A man.' 'Two dogs.'");
    CHECK(lines[0] == ref.lines()[0]);
    CHECK(lines[5] == ref.lines()[1]);
    CHECK(r.err.find("<stdin>:2: invalid UTF-8 replaced with U+FFFD") != std::string::npos);
    CHECK(r.err.find("<stdin>:5: invalid UTF-8") != std::string::npos);
    CHECK(r.err.find("<stdin>:4: sentence 1 has") != std::string::npos);  // cut into pieces, with a warning
    CHECK(r.err.find("pieces") != std::string::npos);
}

TEST_CASE("a 20,000-line mixed corpus keeps its line count and order") {
    // Probe sentences at known positions, translated alone first: the corpus output must have them at exactly
    // those positions, whatever the batching did with the lines around them.
    const std::vector<std::string> probes = {"A man.", "Two dogs play.", "A woman is sitting on a bench.",
                                             "The child runs.", "A black dog."};
    std::string args;
    for (const auto& p : probes) args.append(" ").append(quote(p));
    const std::string opts = " --max-new-tokens 3 --beam 1";
    const RunResult ref = run_tolk(model(kJoint) + opts + args);
    REQUIRE(ref.rc == 0);
    const auto expected = ref.lines();

    std::mt19937 rng(11);
    std::string corpus;
    std::vector<std::pair<size_t, std::string>> checks;  // line index -> expected output
    std::vector<size_t> bad_utf8;
    const size_t n = 20000;
    for (size_t i = 0; i < n; ++i) {
        // Mostly short lines, as in real corpora; long and junk lines are a few percent, enough to land in many
        // windows and batches while keeping the run short.
        const unsigned kind = rng() % 100;
        if (kind < 15) {
            corpus += "\n";
            checks.emplace_back(i, "");
        } else if (kind < 30) {
            const size_t p = rng() % probes.size();
            corpus += probes[p] + "\n";
            checks.emplace_back(i, expected[p]);
        } else if (kind < 45) {
            corpus += "A man walks. A dog runs! Why? Two women sit on a bench.\n";
        } else if (kind < 46) {
            std::string s;
            for (int k = 0; k < 60; ++k) s += "word" + std::to_string(rng() % 50) + " ";
            corpus += s + "\n";
        } else if (kind < 51) {
            corpus += "bad \xC3 utf8 \xE2\x82\n";
            bad_utf8.push_back(i);
        } else if (kind < 53) {
            std::string s;
            for (int k = 0; k < 30; ++k) {
                const char c = static_cast<char>(rng() & 0xFF);
                s += c == '\n' ? '\0' : c;
            }
            corpus += s + "\n";
        } else if (kind < 58) {
            corpus += "   \t  \n";
            checks.emplace_back(i, "");
        } else {
            corpus += "The dog number " + std::to_string(i) + " is brown.\n";
        }
    }
    const fs::path file = scratch() / "corpus.txt";
    write_file(file, corpus);
    const fs::path out = scratch() / "corpus.out";
    const RunResult r = run_tolk(model(kJoint) + opts + " -i " + quote(file.string()) + " -o " + quote(out.string()));
    REQUIRE(r.rc == 0);
    const auto lines = split_lines(read_file(out));
    REQUIRE(lines.size() == n);
    for (const auto& [i, text] : checks) {
        CAPTURE(i);
        CHECK(lines[i] == text);
    }
    CHECK(!bad_utf8.empty());
    CHECK(r.err.find(file.string() + ":" + std::to_string(bad_utf8.front() + 1) + ": invalid UTF-8") !=
          std::string::npos);
}

TEST_CASE("translations do not depend on batch size, token budget or workers") {
    std::string input;
    std::mt19937 rng(5);
    const std::vector<std::string> words = {"a", "man", "dog", "two", "women", "play", "street", "the", "red", "ball"};
    for (int i = 0; i < 150; ++i) {
        std::string line;
        const int len = 1 + static_cast<int>(rng() % 12);
        for (int k = 0; k < len; ++k) line += (k ? " " : "") + words[rng() % words.size()];
        input += line + ".\n";
    }
    const RunResult base = run_tolk(model(kSeparate) + " --max-new-tokens 10 --batch-size 1", input);
    REQUIRE(base.rc == 0);
    REQUIRE(base.lines().size() == 150);
    for (const std::string extra : {" --batch-size 64 --max-batch-tokens 100000", " --batch-size 7 --max-batch-tokens 40",
                                    " --workers 3 --batch-size 5"}) {
        CAPTURE(extra);
        const RunResult r = run_tolk(model(kSeparate) + " --max-new-tokens 10" + extra, input);
        CHECK(r.rc == 0);
        CHECK(r.out == base.out);
    }
}

TEST_CASE("interactive pipe: each line is answered before the next is written") {
    const std::string lines = "A man.\n\nTwo dogs play. A cat sleeps.\nA woman.\n";
    const std::string cmd = "/usr/bin/python3 " + quote(kDriver.string()) + " pipe 20 " + quote(TOLK_BINARY) +
                            " " + model(kJoint) + " --max-new-tokens 8 --unbuffered";
    const fs::path in = scratch() / "pipe.in", out = scratch() / "pipe.out", err = scratch() / "pipe.err";
    write_file(in, lines);
    const int status = std::system((cmd + " < " + quote(in.string()) + " > " + quote(out.string()) + " 2> " +
                                    quote(err.string())).c_str());
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(read_file(err) == "");
    const auto got = split_lines(read_file(out));
    const RunResult ref = run_tolk(model(kJoint) + " --max-new-tokens 8", lines);
    CHECK(got == ref.lines());
}

TEST_CASE("Ctrl-C: finished lines are flushed, exit 130; with -o no file is left") {
    const std::string cmd = "/usr/bin/python3 " + quote(kDriver.string()) + " sigint 20 " + quote(TOLK_BINARY) +
                            " " + model(kJoint) + " --max-new-tokens 8 --unbuffered";
    const fs::path in = scratch() / "sig.in", out = scratch() / "sig.out";
    write_file(in, "A man.\nTwo dogs.\n");
    int status = std::system((cmd + " < " + quote(in.string()) + " > " + quote(out.string())).c_str());
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(split_lines(read_file(out)).size() == 2);

    // With -o: tolk waits for more input when SIGINT arrives; the output file must not appear.
    const fs::path dir = scratch() / "sigint-o";
    fs::create_directories(dir);
    const std::string fifo = (dir / "fifo").string();
    const std::string script = "mkfifo " + quote(fifo) + "; " + quote(TOLK_BINARY) + " " + model(kJoint) + " -o " +
                               quote((dir / "out.txt").string()) + " < " + quote(fifo) + " & pid=$!; exec 3> " +
                               quote(fifo) + "; printf 'A man.\\n' >&3; sleep 1; kill -INT $pid; wait $pid; echo $? > " +
                               quote((dir / "rc").string()) + "; exec 3>&-; rm " + quote(fifo);
    std::system(("bash -c " + quote(script) + " 2>/dev/null").c_str());
    CHECK(read_file(dir / "rc") == "130\n");
    CHECK_FALSE(fs::exists(dir / "out.txt"));
    int leftovers = 0;
    for (const auto& e : fs::directory_iterator(dir)) leftovers += e.path().filename() != "rc";
    CHECK(leftovers == 0);
}
