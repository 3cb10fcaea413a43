// Corpora at scale, through the built binary on the tiny fixture model: --resume after SIGKILL at random points
// (and after SIGINT/SIGTERM) gives the uninterrupted output byte for byte; a changed input, model or option is
// refused; --shard K/N outputs concatenate to the whole output, also run as the documented GNU parallel recipe;
// the sentence cache changes nothing in the output and reports what it reused.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "test_support.h"

namespace fs = std::filesystem;

namespace {

const fs::path kData = TOLK_TEST_DATA;
const fs::path kJoint = kData / "tiny-joint";
const fs::path kSeparate = kData / "tiny-separate";

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string quote(const std::string& s) {
    std::string q = "'";
    for (const char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

using tolk::testing::write_file;

const fs::path& scratch() {
    static const tolk::testing::TempDir dir("tolk_test_corpus_scale");
    return dir.path;
}

struct Run {
    int rc = -1;
    std::string err;
};

// Runs a shell command line in the scratch directory; stderr is captured.
Run shell(const std::string& command) {
    static int counter = 0;
    const fs::path err = scratch() / ("shell" + std::to_string(++counter) + ".err");
    const int status =
        std::system(("cd " + quote(scratch().string()) + " && { " + command + " ; } 2> " + quote(err.string())).c_str());
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_file(err)};
}

// tolk with the tiny model, one thread, and short outputs: each case stays well under a second of work.
// Every run here translates one sentence per batch (--batch-size 1). The tests compare outputs byte for byte across
// runs that split the input differently (shards, resumed windows, cache hits); on AVX2 CPUs oneDNN's jit gemm can
// round a row's last bits differently depending on the rows batched with it, which would show in the printed
// scores. What these tests check is the numbering, windows, state and merging, so they fix the batch composition.
constexpr const char* kOneSentencePerBatch = "--batch-size 1";

std::string tolk_cmd(const fs::path& model = kJoint) {
    return quote(TOLK_BINARY) + " -m " + quote(model.string()) + " --threads 1 --workers 1 --max-new-tokens 8 " +
           kOneSentencePerBatch;
}

// A corpus with the shape of real ones: repeated boilerplate, multi-sentence lines, empty lines, and many
// distinct sentences built from Multi30k-like words.
std::string make_corpus(size_t lines, unsigned seed) {
    const std::vector<std::string> subjects = {"A man", "Two dogs", "A woman", "The children", "A boy", "People"};
    const std::vector<std::string> verbs = {"is riding", "are playing with", "is holding", "walk past", "look at"};
    const std::vector<std::string> objects = {"a bicycle", "the ball", "a red car", "the street", "a small tree"};
    const std::vector<std::string> boilerplate = {"Thank you!", "Click here to continue.", "All rights reserved."};
    std::mt19937 rng(seed);
    std::string out;
    for (size_t i = 0; i < lines; ++i) {
        const unsigned r = rng() % 10;
        if (r == 0) {
            out += "\n";
        } else if (r < 4) {
            out += boilerplate[rng() % boilerplate.size()] + "\n";
        } else {
            std::string line = subjects[rng() % subjects.size()] + " " + verbs[rng() % verbs.size()] + " " +
                               objects[rng() % objects.size()] + ".";
            if (r == 9) line += " " + boilerplate[rng() % boilerplate.size()];
            out += line + "\n";
        }
    }
    return out;
}

// Starts `tolk ARGS...` (argv, no shell) with stdout and stderr to files.
pid_t spawn(const std::vector<std::string>& args, const fs::path& log) {
    const pid_t pid = ::fork();
    if (pid == 0) {
        const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            ::dup2(fd, STDOUT_FILENO);
            ::dup2(fd, STDERR_FILENO);
        }
        std::vector<char*> argv;
        for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    return pid;
}

int wait_for(pid_t pid) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::vector<std::string> tolk_argv(const std::vector<std::string>& extra) {
    std::vector<std::string> argv = {TOLK_BINARY, "-m",        kJoint.string(), "--threads",    "1", "--workers",
                                     "1",         "--max-new-tokens", "8",     "--batch-size", "1"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
}

int64_t lines_done(const fs::path& state) {
    if (!fs::exists(state)) return 0;
    const auto json = nlohmann::json::parse(read_file(state), nullptr, false);
    return json.is_object() ? json.value("lines_done", int64_t{0}) : -1;
}

}  // namespace

TEST_CASE("--resume after SIGKILL at random points gives the uninterrupted output byte for byte") {
    const fs::path dir = scratch() / "kill";
    fs::create_directories(dir);
    const fs::path in = dir / "in.txt", ref = dir / "ref.txt", out = dir / "out.txt";
    const fs::path state = dir / ".out.txt.tolk-resume";
    write_file(in, make_corpus(600, 1));
    // n-best with scores: the "N |||" line indices must continue where the killed run stopped.
    const std::vector<std::string> options = {"--nbest", "2", "--window", "16", "-i", in.string()};

    auto argv = tolk_argv(options);
    argv.insert(argv.end(), {"-o", ref.string()});
    const auto start = std::chrono::steady_clock::now();
    REQUIRE(wait_for(spawn(argv, dir / "ref.log")) == 0);
    const auto full_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start)
                             .count();
    const std::string expected = read_file(ref);
    REQUIRE(!expected.empty());

    std::mt19937 rng(20240611);
    argv = tolk_argv(options);
    argv.insert(argv.end(), {"-o", out.string(), "--resume"});
    int kills = 0, resumed_mid_job = 0;
    int64_t previous = 0;
    bool finished = false;
    for (int attempt = 0; attempt < 12 && !finished; ++attempt) {
        const pid_t pid = spawn(argv, dir / "run.log");
        int status = 0;
        bool exited = false;
        if (attempt % 2 == 1) {
            // Every other kill waits until this run has committed new progress: how soon a run reaches its first
            // checkpoint depends on the machine (start-up, hashing, model load), and a fast machine's random
            // early kills would otherwise all land before it, testing nothing but a restart.
            const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
            while (lines_done(state) <= previous && std::chrono::steady_clock::now() < deadline) {
                if (::waitpid(pid, &status, WNOHANG) == pid) {
                    exited = true;
                    break;
                }
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
            }
        }
        if (!exited) {
            const auto delay =
                std::chrono::milliseconds(rng() % static_cast<unsigned>(std::max<int64_t>(full_ms / 4, 10)));
            std::this_thread::sleep_for(delay);
            ::kill(pid, SIGKILL);
        }
        const int rc = exited ? (WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status)) : wait_for(pid);
        if (rc == 0) {
            finished = true;
            break;
        }
        CHECK(rc == 128 + SIGKILL);
        ++kills;
        const int64_t done = lines_done(state);
        REQUIRE(done >= previous);  // committed progress never goes back
        if (done > 0) ++resumed_mid_job;
        CHECK_FALSE(fs::exists(out));  // the output appears only complete
        previous = done;
    }
    if (!finished) REQUIRE(wait_for(spawn(argv, dir / "run.log")) == 0);
    MESSAGE(kills, " kills, ", resumed_mid_job, " with progress saved; uninterrupted run ", full_ms, " ms");
    CHECK(kills > 0);
    CHECK(resumed_mid_job > 0);
    CHECK(read_file(out) == expected);
    CHECK_FALSE(fs::exists(state));
    CHECK_FALSE(fs::exists(dir / ".out.txt.tolk-partial"));
}

TEST_CASE("--resume after SIGINT and SIGTERM; the summary says where it resumed") {
    const fs::path dir = scratch() / "signals";
    fs::create_directories(dir);
    const fs::path in = dir / "in.jsonl", ref = dir / "ref.jsonl", out = dir / "out.jsonl";
    std::string jsonl;
    std::istringstream lines(make_corpus(300, 2));
    int id = 0;
    for (std::string line; std::getline(lines, line);)
        jsonl += nlohmann::json{{"id", "doc" + std::to_string(++id)}, {"text", line}}.dump() + "\n";
    write_file(in, jsonl);
    const std::string args = " --window 8 --scores -i " + quote(in.string());
    REQUIRE(shell(tolk_cmd() + args + " -o " + quote(ref.string())).rc == 0);

    int interrupted_runs = 0;
    for (const int sig : {SIGINT, SIGTERM}) {
        auto argv = tolk_argv({"--window", "8", "--scores", "-i", in.string(), "-o", out.string(), "--resume"});
        const pid_t pid = spawn(argv, dir / "sig.log");
        // Wait until some progress is saved, then signal.
        for (int i = 0; i < 2000 && lines_done(dir / ".out.jsonl.tolk-resume") < 16; ++i)  // at most 10 s
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        ::kill(pid, sig);
        const int rc = wait_for(pid);
        if (rc == 0) continue;  // finished before the signal: nothing to resume
        ++interrupted_runs;
        CHECK((rc == 130 || rc == 128 + sig));
        if (sig == SIGINT) CHECK(read_file(dir / "sig.log").find("--resume to continue") != std::string::npos);
        CHECK(lines_done(dir / ".out.jsonl.tolk-resume") > 0);
        CHECK_FALSE(fs::exists(out));
        const Run resumed = shell(tolk_cmd() + args + " -o " + quote(out.string()) + " --resume --summary");
        CHECK(resumed.rc == 0);
        CHECK(resumed.err.find("resumed after ") != std::string::npos);
        CHECK(read_file(out) == read_file(ref));
        fs::remove(out);
    }
    CHECK(interrupted_runs > 0);
}

TEST_CASE("--resume refuses a changed input, model or output option, with exit 2 and what differs") {
    const fs::path dir = scratch() / "refuse";
    fs::create_directories(dir);
    const fs::path in = dir / "in.txt", out = dir / "out.txt";
    write_file(in, make_corpus(200, 3));
    const std::string io = " -i " + quote(in.string()) + " -o " + quote(out.string()) + " --resume";
    // An interrupted job: the state of a job that stopped after its first window.
    auto argv = tolk_argv({"--window", "4", "-i", in.string(), "-o", out.string(), "--resume"});
    const pid_t pid = spawn(argv, dir / "log");
    for (int i = 0; i < 5000 && lines_done(dir / ".out.txt.tolk-resume") < 4; ++i)  // at most 10 s
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    ::kill(pid, SIGKILL);
    wait_for(pid);
    REQUIRE(fs::exists(dir / ".out.txt.tolk-resume"));

    Run r = shell(tolk_cmd() + " --beam 2" + io);
    CHECK(r.rc == 2);
    CHECK(r.err.find("cannot resume") != std::string::npos);
    CHECK(r.err.find("--beam was 4, now 2") != std::string::npos);
    CHECK(r.err.find("to start over") != std::string::npos);

    r = shell(tolk_cmd() + " --format jsonl" + io);
    CHECK(r.rc == 2);
    CHECK(r.err.find("--format was \"text\", now \"jsonl\"") != std::string::npos);

    r = shell(tolk_cmd(kSeparate) + io);
    CHECK(r.rc == 2);
    CHECK(r.err.find("the model was") != std::string::npos);

    const std::string original = read_file(in);
    write_file(in, original + "One more line.\n");
    r = shell(tolk_cmd() + io);
    CHECK(r.rc == 2);
    CHECK(r.err.find("changed since") != std::string::npos);
    write_file(in, original);

    r = shell(tolk_cmd() + " --resume -o " + quote(out.string()) + " < " + quote(in.string()));
    CHECK(r.rc == 2);
    CHECK(r.err.find("--resume needs exactly one input file") != std::string::npos);

    // Batching, workers and the cache do not change the output: resuming with other values is fine.
    r = shell(tolk_cmd() + " --window 64 --max-batch-tokens 64 --no-cache" + io);
    CHECK(r.rc == 0);
    CHECK(shell(tolk_cmd() + " -i " + quote(in.string()) + " -o " + quote((dir / "ref.txt").string())).rc == 0);
    CHECK(read_file(out) == read_file(dir / "ref.txt"));
}

TEST_CASE("--shard K/N: the shards' outputs concatenated are the whole output") {
    const fs::path dir = scratch() / "shards";
    fs::create_directories(dir);
    const fs::path in = dir / "in.txt";
    write_file(in, make_corpus(101, 4));
    const std::string in_arg = " -i " + quote(in.string());
    // n-best lines carry the input line's index and JSONL records default to the line number as id: both must
    // count from the start of the whole input in every shard.
    for (const std::string format : {"--nbest 2", "--format jsonl --scores"}) {
        REQUIRE(shell(tolk_cmd() + " " + format + in_arg + " -o whole.out").rc == 0);
        for (const int n : format == "--nbest 2" ? std::vector<int>{1, 3, 7} : std::vector<int>{3}) {
            std::string cat = "cat";
            for (int k = 1; k <= n; ++k) {
                const std::string part = "part." + std::to_string(k);
                REQUIRE(shell(tolk_cmd() + " " + format + in_arg + " --shard " + std::to_string(k) + "/" +
                              std::to_string(n) + " -o " + part)
                            .rc == 0);
                cat += " " + part;
            }
            REQUIRE(shell(cat + " > merged.out").rc == 0);
            CHECK_MESSAGE(read_file(scratch() / "merged.out") == read_file(scratch() / "whole.out"), format, " N=", n);
        }
    }
    // More shards than lines: the extra shards are empty files.
    write_file(dir / "two.txt", "A man.\nTwo dogs.\n");
    REQUIRE(shell(tolk_cmd() + " -i " + quote((dir / "two.txt").string()) + " --shard 2/5 -o empty.out").rc == 0);
    CHECK(read_file(scratch() / "empty.out").empty());

    Run r = shell(tolk_cmd() + in_arg + " --shard 0/4");
    CHECK(r.rc == 2);
    CHECK(r.err.find("--shard 0/4: expected K/N") != std::string::npos);
    r = shell(tolk_cmd() + in_arg + " --shard 5/4");
    CHECK(r.rc == 2);
    r = shell(tolk_cmd() + " --shard 1/2 < " + quote(in.string()));
    CHECK(r.rc == 2);
    CHECK(r.err.find("stdin cannot be split into shards") != std::string::npos);
}

namespace {

// The recipes of docs/corpora.md, run as written: a wrapper named `tolk` first in PATH adds the tiny model and
// short outputs; "node1,node2" become ":", GNU parallel's name for this machine.
std::string recipe(const std::string& name) {
    const fs::path root = fs::path(TOLK_TEST_DATA).parent_path().parent_path();
    for (const fs::path& doc : {root / "docs" / "corpora.md", root / "README.md"}) {
        const std::string text = read_file(doc);
        const std::string fence = "```bash tested:" + name + "\n";
        const auto begin = text.find(fence);
        if (begin == std::string::npos) continue;
        const auto body = begin + fence.size();
        return text.substr(body, text.find("\n```", body) - body + 1);
    }
    FAIL("no ```bash tested:", name, " block in docs/corpora.md or README.md");
    return "";
}

// A fresh directory with big.en, the wrapper, and single.de: the single-process output to compare with.
fs::path recipe_dir(const std::string& name) {
    const fs::path dir = scratch() / ("recipe-" + name);
    fs::create_directories(dir / "bin");
    write_file(dir / "bin" / "tolk", "#!/bin/sh\nexec " + quote(TOLK_BINARY) + " -m " + quote(kJoint.string()) +
                                         " --threads 1 --max-new-tokens 8 " + kOneSentencePerBatch + " \"$@\"\n");
    fs::permissions(dir / "bin" / "tolk", fs::perms::owner_all);
    write_file(dir / "big.en", make_corpus(400, 5));
    REQUIRE(shell("cd " + quote(dir.string()) + " && bin/tolk -i big.en -o single.de").rc == 0);
    return dir;
}

Run run_recipe(const fs::path& dir, const std::string& script) {
    write_file(dir / "recipe.sh", script);
    return shell("cd " + quote(dir.string()) + " && PATH=\"$PWD/bin:$PATH\" bash recipe.sh");
}

bool have_parallel() {
    if (std::system("command -v parallel > /dev/null 2>&1") == 0) return true;
    MESSAGE("SKIPPED: GNU parallel is not installed (Debian package 'parallel'; setup.sh --test installs it)");
    return false;
}

}  // namespace

TEST_CASE("recipe: GNU parallel on one machine merges to the single-process output") {
    if (!have_parallel()) return;
    const fs::path dir = recipe_dir("parallel-local");
    const Run r = run_recipe(dir, recipe("parallel-local"));
    REQUIRE_MESSAGE(r.rc == 0, r.err);
    CHECK(read_file(dir / "big.de") == read_file(dir / "single.de"));
    CHECK_FALSE(fs::exists(dir / "big.de.1"));
    CHECK_FALSE(fs::exists(dir / "shards.log"));
}

TEST_CASE("recipe: GNU parallel --sshlogin (run on this machine as ':') merges to the single-process output") {
    if (!have_parallel()) return;
    const fs::path dir = recipe_dir("parallel-ssh");
    std::string script = recipe("parallel-ssh");
    const auto hosts = script.find("4/node1,4/node2");
    REQUIRE(hosts != std::string::npos);
    script.replace(hosts, std::string("4/node1,4/node2").size(), "2/:");
    const Run r = run_recipe(dir, script);
    REQUIRE_MESSAGE(r.rc == 0, r.err);
    CHECK(read_file(dir / "big.de") == read_file(dir / "single.de"));
}

TEST_CASE("recipe: the Slurm array script, run once per SLURM_ARRAY_TASK_ID, then the merge") {
    const fs::path dir = recipe_dir("slurm");
    const std::string script = recipe("slurm");
    write_file(dir / "translate.sbatch", script);
    const auto array = script.find("--array=1-");
    REQUIRE(array != std::string::npos);
    const int tasks = std::stoi(script.substr(array + 10));
    std::string all;
    for (int k = 1; k <= tasks; ++k)
        all += "SLURM_ARRAY_TASK_ID=" + std::to_string(k) + " SLURM_CPUS_PER_TASK=1 bash translate.sbatch || exit 1\n";
    Run r = run_recipe(dir, all);
    REQUIRE_MESSAGE(r.rc == 0, r.err);
    r = run_recipe(dir, recipe("slurm-merge"));
    REQUIRE_MESSAGE(r.rc == 0, r.err);
    CHECK(read_file(dir / "big.de") == read_file(dir / "single.de"));
}

TEST_CASE("the sentence cache changes no output byte (greedy, beam, n-best, tokens) and reports reuse") {
    const fs::path dir = scratch() / "cache";
    fs::create_directories(dir);
    const fs::path in = dir / "in.txt";
    write_file(in, make_corpus(300, 6));
    for (const std::string options :
         {"--beam 1", "--beam 4", "--nbest 3 --beam 3", "--format jsonl --nbest 2 --tokens", "--no-split --beam 2"}) {
        const std::string base = tolk_cmd() + " " + options + " -i " + quote(in.string()) + " --window 32";
        REQUIRE(shell(base + " --no-cache -o nocache.out").rc == 0);
        const Run cached = shell(base + " --summary -o cached.out");
        REQUIRE(cached.rc == 0);
        CHECK_MESSAGE(read_file(scratch() / "cached.out") == read_file(scratch() / "nocache.out"), options);
        CHECK_MESSAGE(cached.err.find(" reused)") != std::string::npos, cached.err);
    }
}
