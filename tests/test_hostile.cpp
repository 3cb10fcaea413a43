// Hostile files and input (issue #9): deep or huge JSON, number overflow, non-regular files, absurd config values
// and options, NaN weights, overlong lines, unsafe output paths, fatal signals and closed standard fds. Each
// reproducer of the issue is a case here: a clear error naming the file (or a correct result), never a crash,
// a hang, unbounded memory or a stray temporary file.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/config.h"
#include "model/json_file.h"
#include "model/safetensors.h"
#include "model/weights.h"
#include "pipeline/file_io.h"
#include "pipeline/formats.h"
#include "pipeline/interrupt.h"
#include "test_support.h"
#include "text/tokenizer.h"
#include "text/vocab.h"

namespace fs = std::filesystem;
using namespace tolk;
using tolk::testing::check_error;
using tolk::testing::TempDir;
using tolk::testing::write_file;

namespace {

const fs::path kJoint = fs::path(TOLK_TEST_DATA) / "tiny-joint";

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string nested(int depth, const std::string& inner = "1") {
    return std::string(static_cast<size_t>(depth), '[') + inner + std::string(static_cast<size_t>(depth), ']');
}

// A copy of the tiny joint model in a fresh directory.
struct ModelCopy {
    TempDir tmp{"tolk_test_hostile"};
    fs::path dir = tmp.path / "m";
    ModelCopy() { fs::copy(kJoint, dir, fs::copy_options::recursive); }
    nlohmann::json config() const { return nlohmann::json::parse(read_file(dir / "config.json")); }
    void set_config(const nlohmann::json& c) const { write_file(dir / "config.json", c.dump()); }
};

// A safetensors file: 8-byte little-endian header length, header, data.
std::string safetensors_raw(const std::string& header, const std::string& data) {
    std::string out(8, '\0');
    uint64_t n = header.size();
    std::memcpy(out.data(), &n, 8);
    return out + header + data;
}

void parse_header(const std::string& bytes) {
    std::map<std::string, TensorInfo> infos;
    std::map<std::string, std::string> metadata;
    parse_safetensors_header(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), "h.safetensors",
                             infos, metadata);
}

struct RunResult {
    int rc = -1;
    std::string out, err;
};

std::string quote(const std::string& s) {
    std::string q = "'";
    for (const char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

// Runs a shell command line in which TOLK stands for the binary; stdout and stderr captured.
RunResult run_shell(const std::string& command_line, const fs::path& scratch) {
    std::string cmd = command_line;
    for (size_t pos; (pos = cmd.find("TOLK")) != std::string::npos;)
        cmd.replace(pos, 4, "timeout 60 " + quote(TOLK_BINARY));
    const fs::path out = scratch / "run.out", err = scratch / "run.err";
    const int status = std::system(("cd " + quote(scratch.string()) + " && (" + cmd + ") > " + quote(out.string()) +
                                    " 2> " + quote(err.string()))
                                       .c_str());
    RunResult r;
    r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = read_file(out);
    r.err = read_file(err);
    return r;
}

int count_lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

int stray_temp_files(const fs::path& dir) {
    int n = 0;
    for (const auto& e : fs::directory_iterator(dir)) n += e.path().filename().string().find(".tolk-") != std::string::npos;
    return n;
}

}  // namespace

TEST_CASE("json: depth and size limits, number overflow names the file and the field") {
    check_error([] { parse_json(nested(100000), "deep.json"); }, {"deep.json", "nested deeper than 64"});
    check_error([] { parse_json("{\"a\": " + nested(65) + "}", "x.json"); }, {"x.json", "nested deeper", "'a"});
    CHECK(parse_json("{\"a\": " + nested(60) + "}", "ok.json").is_object());
    check_error([] { parse_json(R"({"dropout": 1e400})", "config.json"); },
                {"config.json", "number overflow", "1e400", "'dropout'"});
    check_error([] { parse_json(R"({"a": {"b": [1, -1e999]}})", "c.json"); }, {"c.json", "number overflow", "a.b"});
    check_error([] { parse_json("{\"a\": 1,", "t.json"); }, {"t.json", "invalid JSON"});

    const TempDir tmp("tolk_test_hostile_json");
    write_file(tmp.path / "big.json", "[" + std::string(2000, ' ') + "]");
    check_error([&] { read_json_file(tmp.path / "big.json", 1000); }, {"big.json", "larger than the limit"});
    CHECK(read_json_file(tmp.path / "big.json", 4000).is_array());
}

TEST_CASE("non-regular model files: FIFO, /dev/zero, directory, symlink loop are errors naming the file") {
    const TempDir tmp("tolk_test_hostile_files");
    const fs::path fifo = tmp.path / "fifo.json";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    check_error([&] { read_json_file(fifo); }, {"fifo.json", "not a regular file", "FIFO"});
    check_error([&] { Vocab::load(fifo); }, {"fifo.json", "FIFO"});
    fs::create_symlink("/dev/zero", tmp.path / "zero.json");
    check_error([&] { read_json_file(tmp.path / "zero.json"); }, {"zero.json", "character device"});
    check_error([&] { SafeTensorsFile(tmp.path / "zero.json"); }, {"zero.json", "character device"});
    fs::create_directory(tmp.path / "dir.json");
    check_error([&] { read_json_file(tmp.path / "dir.json"); }, {"dir.json", "directory"});
    fs::create_symlink("loop.json", tmp.path / "loop.json");
    check_error([&] { read_json_file(tmp.path / "loop.json"); }, {"loop.json", "symbolic links"});
    check_error([&] { SafeTensorsFile(tmp.path / "loop.json"); }, {"loop.json", "symbolic links"});
}

TEST_CASE("model directory: hostile config, generation config, vocab, tokenizer files give errors naming them") {
    const ModelCopy m;
    const fs::path& d = m.dir;
    const auto config_error = [&](nlohmann::json change, std::initializer_list<std::string> fragments) {
        nlohmann::json c = m.config();
        c.update(change);
        m.set_config(c);
        check_error([&] { load_config(d); }, fragments);
    };
    const nlohmann::json good = m.config();
    config_error({{"encoder_layers", 1000000000}}, {"config.json", "encoder_layers", "limit"});
    config_error({{"encoder_layers", 2}, {"max_position_embeddings", 50000000}},
                 {"config.json", "max_position_embeddings", "limit"});
    config_error({{"max_position_embeddings", 2147483647}}, {"config.json", "max_position_embeddings"});
    config_error({{"max_position_embeddings", 512}, {"vocab_size", 4294967296LL}}, {"config.json", "vocab_size"});
    config_error({{"vocab_size", 801}, {"pad_token_id", 18446744073709551615ULL}}, {"config.json", "pad_token_id"});
    m.set_config(good);

    // A config that promises more layers than the file holds fails on the shapes, before loading anything.
    nlohmann::json more = good;
    more["encoder_layers"] = 256;
    m.set_config(more);
    check_error([&] { WeightStore::load(d, load_config(d)); }, {"model.safetensors", "missing tensor", "layers.2"});
    m.set_config(good);

    write_file(d / "config.json", good.dump().insert(1, "\"dropout2\": 1e400, "));
    check_error([&] { load_config(d); }, {"config.json", "number overflow", "dropout2"});
    write_file(d / "config.json", "{\"a\": " + nested(100000) + "}");
    check_error([&] { load_config(d); }, {"config.json", "nested deeper"});
    m.set_config(good);

    write_file(d / "generation_config.json", R"({"num_beams": 100000})");
    check_error([&] { load_config(d); }, {"generation_config.json", "num_beams", "limit of 64"});
    write_file(d / "generation_config.json", R"({"num_beams": 4, "x": )" + nested(100000) + "}");
    check_error([&] { load_config(d); }, {"generation_config.json", "nested deeper"});
    write_file(d / "generation_config.json", R"({"length_penalty": 1e400})");
    check_error([&] { load_config(d); }, {"generation_config.json", "length_penalty", "overflow"});
    fs::remove(d / "generation_config.json");
    fs::create_directory(d / "generation_config.json");
    check_error([&] { load_config(d); }, {"generation_config.json", "directory"});
    fs::remove(d / "generation_config.json");
    CHECK(load_config(d).num_beams == 4);  // absent is fine

    const std::string tok = read_file(d / "tokenizer_config.json");
    write_file(d / "tokenizer_config.json", "{\"x\": " + nested(100000) + "}");
    check_error([&] { load_config(d); }, {"tokenizer_config.json", "nested deeper"});
    check_error([&] { parse_tokenizer_config("{\"x\": " + nested(100000) + "}", "tokenizer_config.json"); },
                {"tokenizer_config.json", "nested deeper"});
    fs::remove(d / "tokenizer_config.json");
    ::mkfifo((d / "tokenizer_config.json").c_str(), 0600);
    check_error([&] { load_config(d); }, {"tokenizer_config.json", "FIFO"});
    fs::remove(d / "tokenizer_config.json");
    write_file(d / "tokenizer_config.json", tok);

    const std::string vocab = read_file(d / "vocab.json");
    write_file(d / "vocab.json", "{\"a\": " + nested(100000) + "}");
    check_error([&] { Vocab::load(d / "vocab.json"); }, {"vocab.json", "'a'", "integer"});
    write_file(d / "vocab.json", "{\"</s>\": 0, \"x\": 1e400}");
    check_error([&] { Vocab::load(d / "vocab.json"); }, {"vocab.json", "number overflow", "'x'"});
    write_file(d / "vocab.json", nested(100000));
    check_error([&] { Vocab::load(d / "vocab.json"); }, {"vocab.json", "JSON object"});
    fs::remove(d / "vocab.json");
    fs::create_symlink("/dev/zero", d / "vocab.json");
    check_error([&] { Vocab::load(d / "vocab.json"); }, {"vocab.json", "character device"});
    fs::remove(d / "vocab.json");
    write_file(d / "vocab.json", vocab);

    fs::rename(d / "source.spm", d / "source.spm.bak");
    fs::create_symlink("source.spm", d / "source.spm");
    const ModelConfig cfg = load_config(d);
    check_error([&] { Tokenizer::load(d, cfg); }, {"source.spm", "symbolic links"});
}

TEST_CASE("vocab.json: duplicate pieces and ids resolve as in Python, in time linear in the file") {
    const TempDir tmp("tolk_test_hostile_vocab");
    write_file(tmp.path / "v.json", R"({"</s>": 0, "<unk>": 1, "<pad>": 2, "a": 3, "b": 3, "a": 4})");
    const Vocab v = Vocab::load(tmp.path / "v.json");
    CHECK(v.find("a") == 4);  // the last value of a repeated key
    CHECK(*v.piece(3) == "b");
    CHECK(*v.piece(4) == "a");
    CHECK(v.size() == 5);
    // 300,000 distinct pieces: an ordered DOM would compare every key with every earlier one.
    std::string big = R"({"</s>": 0, "<unk>": 1, "<pad>": 2)";
    for (int i = 3; i < 300000; ++i) big += ", \"p" + std::to_string(i) + "\": " + std::to_string(i);
    write_file(tmp.path / "big.json", big + "}");
    CHECK(Vocab::load(tmp.path / "big.json").size() == 300000);
}

TEST_CASE("safetensors header: deep nesting anywhere, overflow, bad offsets are errors naming the file") {
    const std::string data(16, '\0');
    const std::string entry = R"("t": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]})";
    parse_header(safetensors_raw("{" + entry + "}", data));
    check_error([&] { parse_header(safetensors_raw(nested(100000), data)); }, {"h.safetensors", "nested deeper"});
    check_error([&] { parse_header(safetensors_raw("{\"__metadata__\": {\"a\": " + nested(100000) + "}}", data)); },
                {"h.safetensors", "nested deeper", "__metadata__"});
    check_error([&] {
        parse_header(safetensors_raw(R"({"t": {"dtype": "F32", "shape": )" + nested(100000) + "}}", data));
    }, {"h.safetensors", "nested deeper", "t.shape"});
    check_error([&] { parse_header(safetensors_raw(R"({"t": {"x": )" + nested(100000) + "}}", data)); },
                {"h.safetensors", "nested deeper"});
    check_error([&] {
        parse_header(safetensors_raw(R"({"t": {"dtype": "F32", "shape": [1e400], "data_offsets": [0, 16]}})", data));
    }, {"h.safetensors", "number overflow", "t.shape"});
    check_error([&] {
        parse_header(safetensors_raw(
            R"({"t": {"dtype": "F32", "shape": [4294967296, 4294967296, 4294967296], "data_offsets": [0, 16]}})", data));
    }, {"h.safetensors", "too large"});
    check_error([&] {
        parse_header(safetensors_raw(R"({"t": {"dtype": "F32", "shape": [2, 2], "data_offsets": [8, 24]}})", data));
    }, {"h.safetensors", "outside the data section"});
    std::string huge_len(8, '\xff');
    check_error([&] { parse_header(huge_len + "{}"); }, {"h.safetensors", "header length"});
    check_error([&] { parse_header("abc"); }, {"h.safetensors", "truncated"});
}

TEST_CASE("weights: a NaN or Inf anywhere is an error naming the tensor, not silent empty output") {
    const ModelCopy m;
    const fs::path st = m.dir / "model.safetensors";
    const std::string name = "model.encoder.layers.1.self_attn.q_proj.weight";
    size_t offset = 0;
    {
        const SafeTensorsFile file(st);
        uint64_t header_len = 0;
        const std::string bytes = read_file(st);
        std::memcpy(&header_len, bytes.data(), 8);
        offset = 8 + header_len + file.info(name).begin + 4 * 5;
        REQUIRE(file.info(name).dtype == DType::f32);
    }
    for (const float bad : {std::nanf(""), INFINITY, -INFINITY}) {
        std::fstream f(st, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(static_cast<std::streamoff>(offset));
        f.write(reinterpret_cast<const char*>(&bad), 4);
        f.close();
        const ModelConfig cfg = load_config(m.dir);
        check_error([&] { WeightStore::load(m.dir, cfg); },
                    {"model.safetensors", name, std::isnan(bad) ? "NaN" : "Inf", "element 5"});
    }
}

TEST_CASE("JSONL: an id nested 100,000 deep is a bad record, not a stack overflow") {
    const std::string line = "{\"id\": " + nested(100000) + ", \"text\": \"Hi.\"}";
    const InputRecord r = parse_jsonl_record(line, 7);
    CHECK(r.problem.find("nested deeper") != std::string::npos);
    CHECK(r.id_json == "7");
    CHECK(r.text.empty());
    const InputRecord ok = parse_jsonl_record("{\"id\": " + nested(50) + ", \"text\": \"Hi.\"}", 8);
    CHECK(ok.problem.empty());
    LineTranslation t;
    SegmentHypothesis h;
    h.text = "Hallo.";
    h.score = -0.5f;
    t.nbest.push_back(h);
    OutputOptions o;
    o.format = Format::jsonl;
    CHECK(format_output(o, 7, ok, "Hi.", t).find(nested(50)) != std::string::npos);
}

TEST_CASE("LineReader: lines longer than the limit are cut on a character boundary with a warning") {
    const TempDir tmp("tolk_test_hostile_reader");
    // "é" is two bytes: a cut at byte 11 would split the one at bytes 10-11.
    write_file(tmp.path / "in.txt", "short\n" + std::string(10, 'a') + "\xC3\xA9" + std::string(50, 'b') + "\nend");
    LineReader reader((tmp.path / "in.txt").string(), 11);
    std::vector<std::string> warnings;
    reader.set_warning_handler([&](const std::string& m) { warnings.push_back(m); });
    std::vector<std::string> lines;
    for (std::string line; reader.next(line);) lines.push_back(line);
    REQUIRE(lines.size() == 3);
    CHECK(lines[0] == "short");
    CHECK(lines[1] == std::string(10, 'a'));
    CHECK(lines[2] == "end");
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].find("in.txt:2: longer than 11 bytes") != std::string::npos);
    CHECK(reader.lines_cut() == 1);
}

TEST_CASE("AtomicFile: symlinks, devices, FIFOs, directories, kept mode") {
    const TempDir tmp("tolk_test_hostile_out");
    const fs::path& d = tmp.path;

    // An existing file keeps its mode (and owner).
    write_file(d / "kept.txt", "old\n");
    ::chmod((d / "kept.txt").c_str(), 0640);
    const bool root = ::geteuid() == 0;
    if (root) REQUIRE(::chown((d / "kept.txt").c_str(), 65534, 65534) == 0);
    {
        AtomicFile f(d / "kept.txt");
        f.stream() << "new\n";
        f.commit();
    }
    CHECK(read_file(d / "kept.txt") == "new\n");
    struct stat st {};
    ::stat((d / "kept.txt").c_str(), &st);
    CHECK((st.st_mode & 07777) == 0640);
    if (root) {
        CHECK(st.st_uid == 65534);
        CHECK(st.st_gid == 65534);
    }

    // A symlink: the target gets the content, the link stays a link.
    fs::create_directory(d / "real");
    write_file(d / "real" / "target.txt", "old\n");
    fs::create_symlink("real/target.txt", d / "link.txt");
    {
        AtomicFile f(d / "link.txt");
        f.stream() << "through the link\n";
        f.commit();
    }
    CHECK(fs::is_symlink(d / "link.txt"));
    CHECK(read_file(d / "real" / "target.txt") == "through the link\n");
    CHECK(stray_temp_files(d) == 0);
    CHECK(stray_temp_files(d / "real") == 0);

    // Devices are written through, never replaced.
    {
        AtomicFile f("/dev/null");
        CHECK(f.writes_through());
        f.stream() << "gone\n";
        f.commit();
    }
    struct stat null_st {};
    ::stat("/dev/null", &null_st);
    CHECK(S_ISCHR(null_st.st_mode));
    if (::geteuid() == 0) {
        // A copy of /dev/null made with mknod stays a device.
        REQUIRE(::mknod((d / "null").c_str(), S_IFCHR | 0666, null_st.st_rdev) == 0);
        {
            AtomicFile f(d / "null");
            f.stream() << "x\n";
            f.commit();
        }
        struct stat s2 {};
        ::lstat((d / "null").c_str(), &s2);
        CHECK(S_ISCHR(s2.st_mode));
    }

    // A FIFO: its reader gets the lines.
    REQUIRE(::mkfifo((d / "fifo").c_str(), 0600) == 0);
    std::string got;
    std::thread reader([&] { got = read_file(d / "fifo"); });
    {
        AtomicFile f(d / "fifo");
        f.stream() << "to the reader\n";
        f.commit();
    }
    reader.join();
    CHECK(got == "to the reader\n");
    struct stat fst {};
    ::lstat((d / "fifo").c_str(), &fst);
    CHECK(S_ISFIFO(fst.st_mode));

    check_error([&] { AtomicFile f(d / "real"); }, {"real", "directory"});
    fs::create_symlink("nowhere/x.txt", d / "dangling.txt");
    check_error([&] { AtomicFile f(d / "dangling.txt"); }, {"dangling.txt", "dangling"});
    fs::create_symlink("loop.txt", d / "loop.txt");
    check_error([&] { AtomicFile f(d / "loop.txt"); }, {"loop.txt", "symbolic links"});
    CHECK(stray_temp_files(d) == 0);
}

TEST_CASE("AtomicFile: SIGTERM, SIGHUP and a second SIGINT leave no temporary file") {
    const TempDir tmp("tolk_test_hostile_signal");
    for (const int sig : {SIGTERM, SIGHUP, SIGINT}) {
        const pid_t pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            install_interrupt_handler();
            AtomicFile f(tmp.path / "out.txt");
            f.stream() << "partial\n";
            f.stream().flush();
            ::raise(sig);
            if (sig == SIGINT) ::raise(sig);  // the first only asks to stop; the second ends the process
            ::_exit(0);
        }
        int status = 0;
        ::waitpid(pid, &status, 0);
        CHECK(WIFSIGNALED(status));
        if (WIFSIGNALED(status)) CHECK(WTERMSIG(status) == sig);
        CHECK(stray_temp_files(tmp.path) == 0);
        CHECK_FALSE(fs::exists(tmp.path / "out.txt"));
    }
}

TEST_CASE("cli: hostile options and inputs give one clear error line, exit 2, or a correct result") {
    const TempDir tmp("tolk_test_hostile_cli");
    const fs::path& d = tmp.path;
    const std::string m = "-m " + quote(kJoint.string()) + " --max-new-tokens 4";

    // Options that only cap a loop are clamped to what the model allows, not errors.
    const RunResult capped = run_shell("TOLK -m " + quote(kJoint.string()) + " --max-new-tokens 2147483647 --beam 1 Hello.", d);
    CHECK(capped.rc == 0);
    CHECK(count_lines(capped.out) == 1);

    for (const std::string bad : {"--beam 100000", "--beam 2147483647", "--workers 100000", "--threads 100000",
                                  "--nbest 100000", "--batch-size 2147483647"}) {
        const RunResult r = run_shell("TOLK " + m + " " + bad + " Hello.", d);
        CHECK_MESSAGE(r.rc == 2, bad);
        CHECK_MESSAGE(count_lines(r.err) == 1, r.err);
        CHECK_MESSAGE(r.err.find("limit") != std::string::npos, r.err);
        CHECK(r.out.empty());
    }

    write_file(d / "a.txt", "A man.\n");
    RunResult r = run_shell("TOLK " + m + " -i a.txt Hello.", d);
    CHECK(r.rc == 2);
    CHECK(r.err.find("TEXT arguments cannot be combined with -i") != std::string::npos);
    CHECK(count_lines(r.err) == 1);

    r = run_shell("TOLK " + m + " --from xx Hello.", d);
    CHECK(r.rc == 2);
    CHECK(r.err.find("--from xx") != std::string::npos);
    r = run_shell("TOLK " + m + " --from en --to de Hello.", d);
    CHECK(r.rc == 0);

    // stderr closed: warnings must not land in the output file.
    write_file(d / "bad.txt", "bad \xFF byte.\n");
    r = run_shell("TOLK " + m + " -i bad.txt -o out.txt 2>&-", d);
    CHECK(r.rc == 0);
    CHECK(read_file(d / "out.txt").find("warning") == std::string::npos);
    CHECK(count_lines(read_file(d / "out.txt")) == 1);

    // A JSONL line with an id nested 100,000 deep: a warning, an output line, no stray file, exit 0.
    write_file(d / "d.jsonl", "{\"id\": " + nested(100000) + ", \"text\": \"Hi.\"}\n{\"id\": 2, \"text\": \"Hi.\"}\n");
    r = run_shell("TOLK " + m + " -i d.jsonl -o d.out", d);
    CHECK(r.rc == 0);
    CHECK(count_lines(read_file(d / "d.out")) == 2);
    CHECK(r.err.find("d.jsonl:1") != std::string::npos);
    CHECK(stray_temp_files(d) == 0);

    // One line of 3 MB without a newline: cut with a warning naming it, memory bounded.
    r = run_shell("head -c 3000000 /dev/zero | TOLK " + m + " --beam 1", d);
    CHECK(r.rc == 0);
    CHECK(r.err.find("<stdin>:1: longer than") != std::string::npos);
    CHECK(count_lines(r.out) == 1);

    // -o onto a symlink writes its target.
    write_file(d / "target.txt", "");
    fs::create_symlink("target.txt", d / "link.txt");
    r = run_shell("TOLK " + m + " -i a.txt -o link.txt", d);
    CHECK(r.rc == 0);
    CHECK(fs::is_symlink(d / "link.txt"));
    CHECK(count_lines(read_file(d / "target.txt")) == 1);
    r = run_shell("TOLK " + m + " -i a.txt -o /dev/stdout", d);
    CHECK(r.rc == 0);
    CHECK(count_lines(r.out) == 1);
}

TEST_CASE("cli: broken model directories exit 2 with one line naming the file") {
    const ModelCopy m;
    const fs::path& d = m.dir;
    const auto expect = [&](const std::string& file) {
        const RunResult r = run_shell("TOLK -m " + quote(d.string()) + " --max-new-tokens 4 Hello.", m.tmp.path);
        CHECK_MESSAGE(r.rc == 2, r.err);
        CHECK_MESSAGE(count_lines(r.err) == 1, r.err);
        CHECK_MESSAGE(r.err.find(file) != std::string::npos, r.err);
        CHECK(r.err.find("internal error") == std::string::npos);
    };
    fs::rename(d / "model.safetensors", d / "weights.bak");
    fs::create_symlink("model.safetensors", d / "model.safetensors");
    expect("model.safetensors");
    fs::remove(d / "model.safetensors");
    fs::create_directory(d / "model.safetensors");
    expect("model.safetensors");
    fs::remove(d / "model.safetensors");
    fs::rename(d / "weights.bak", d / "model.safetensors");

    fs::rename(d / "source.spm", d / "spm.bak");
    fs::create_symlink("source.spm", d / "source.spm");
    expect("source.spm");
    fs::remove(d / "source.spm");
    fs::rename(d / "spm.bak", d / "source.spm");

    nlohmann::json c = m.config();
    const nlohmann::json good = c;
    c["max_position_embeddings"] = 50000000;
    m.set_config(c);
    expect("max_position_embeddings");
    m.set_config(good);
    write_file(d / "config.json", good.dump().insert(1, "\"dropout\": 1e400, "));
    expect("dropout");
}

TEST_CASE("cli: worker threads that cannot start are one error line and exit 2, not std::terminate") {
    // RLIMIT_NPROC binds only unprivileged users, so the run drops to nobody with setpriv; skipped where that is
    // not possible (not root, or no setpriv).
    if (::geteuid() != 0 || std::system("command -v setpriv > /dev/null 2>&1") != 0) {
        MESSAGE("skipped: needs root and setpriv to run tolk as an unprivileged user under ulimit -u");
        return;
    }
    const TempDir tmp("tolk_test_hostile_threads");
    const fs::path& d = tmp.path;
    fs::permissions(d, fs::perms::all);
    write_file(d / "in.txt", "Hello.\n");
    write_file(d / "run.sh", "ulimit -u 4\nexec " + quote(TOLK_BINARY) + " -m " + quote(kJoint.string()) +
                                 " --workers 16 -q -i in.txt -o out.txt\n");
    const RunResult r = run_shell("timeout 60 setpriv --reuid 65534 --regid 65534 --clear-groups bash run.sh", d);
    // Either the limit bites (exit 2 naming the cause) or this system let all threads start (exit 0).
    if (r.rc == 0) {
        MESSAGE("the process limit did not stop the threads here; nothing to check");
        return;
    }
    CHECK(r.rc == 2);
    CHECK(count_lines(r.err) == 1);
    CHECK(r.err.find("cannot start worker thread") != std::string::npos);
    CHECK_FALSE(fs::exists(d / "out.txt"));
    CHECK(stray_temp_files(d) == 0);
}
