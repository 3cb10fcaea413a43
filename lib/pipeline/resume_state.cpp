// Resumable output: partial file + state file, fsync ordering, identity checks (see resume_state.h).
#include "pipeline/resume_state.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace tolk {

namespace fs = std::filesystem;

namespace {

// A streaming 64-bit hash over bytes: 8-byte words multiplied, rotated and mixed into the state, then a final
// avalanche with the length. Fast (about one multiply per 8 bytes) and independent of how reads are chunked.
class Hasher {
public:
    void update(const char* data, size_t n) {
        while (n > 0 && carried_ > 0 && carried_ < 8) {
            carry_[carried_++] = static_cast<unsigned char>(*data++);
            --n;
            if (carried_ == 8) {
                mix(load(carry_));
                carried_ = 0;
            }
        }
        for (; n >= 8; data += 8, n -= 8) mix(load(reinterpret_cast<const unsigned char*>(data)));
        for (; n > 0; --n) carry_[carried_++] = static_cast<unsigned char>(*data++);
    }
    uint64_t finish(uint64_t length) const {
        uint64_t h = state_;
        uint64_t tail = 0;
        for (size_t i = 0; i < carried_; ++i) tail |= static_cast<uint64_t>(carry_[i]) << (8 * i);
        h ^= tail * kMul1;
        h ^= length * kMul2;
        h ^= h >> 33;
        h *= kMul1;
        h ^= h >> 29;
        h *= kMul2;
        h ^= h >> 32;
        return h;
    }

private:
    static constexpr uint64_t kMul1 = 0x9e3779b97f4a7c15ULL;  // odd constants with well-spread bits
    static constexpr uint64_t kMul2 = 0xc2b2ae3d27d4eb4fULL;
    static uint64_t load(const unsigned char* p) {
        uint64_t w = 0;
        for (int i = 7; i >= 0; --i) w = (w << 8) | p[i];  // little-endian whatever the host
        return w;
    }
    void mix(uint64_t w) {
        state_ ^= w * kMul1;
        state_ = (state_ << 31) | (state_ >> 33);
        state_ *= kMul2;
    }
    uint64_t state_ = 0x243f6a8885a308d3ULL;
    unsigned char carry_[8] = {};
    size_t carried_ = 0;
};

// Hashes a whole file into `hasher`; returns its size and line count.
std::pair<uint64_t, int64_t> hash_into(const fs::path& path, Hasher& hasher) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    TOLK_CHECK(fd >= 0, path.string(), ": cannot open: ", std::strerror(errno));
    std::vector<char> chunk(1 << 20);
    uint64_t size = 0;
    int64_t lines = 0;
    char last = '\n';
    for (;;) {
        const ssize_t n = ::read(fd, chunk.data(), chunk.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            const int error = errno;
            ::close(fd);
            TOLK_FAIL(path.string(), ": read error: ", std::strerror(error));
        }
        if (n == 0) break;
        hasher.update(chunk.data(), static_cast<size_t>(n));
        lines += std::count(chunk.data(), chunk.data() + n, '\n');
        last = chunk[static_cast<size_t>(n) - 1];
        size += static_cast<uint64_t>(n);
    }
    ::close(fd);
    if (last != '\n') ++lines;  // a last line without a terminator counts
    return {size, lines};
}

// fsync of a directory, so that a rename or a new file in it survives a power loss.
void sync_directory(const fs::path& dir) {
    const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    ::fsync(fd);
    ::close(fd);
}

fs::path sibling(const fs::path& path, const std::string& suffix) {
    const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
    return dir / ("." + path.filename().string() + suffix);
}

std::string read_text(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// What differs between the recorded job and this one, in words, for the refusal message.
std::string differences(const nlohmann::json& was, const nlohmann::json& now) {
    std::vector<std::string> parts;
    if (was.value("input", nlohmann::json()) != now.value("input", nlohmann::json())) {
        const auto& a = was["input"];
        const auto& b = now["input"];
        if (a.value("path", "") != b.value("path", ""))
            parts.push_back("the input was " + a.value("path", "?") + ", now " + b.value("path", "?"));
        else
            parts.push_back("the input " + b.value("path", "?") + " changed since (" + std::to_string(a.value("size", 0)) +
                            " bytes then, " + std::to_string(b.value("size", 0)) + " now, or other content)");
    }
    if (was.value("model", nlohmann::json()) != now.value("model", nlohmann::json())) {
        const auto& a = was["model"];
        const auto& b = now["model"];
        if (a.value("dir", "") != b.value("dir", ""))
            parts.push_back("the model was " + a.value("dir", "?") + ", now " + b.value("dir", "?"));
        else
            parts.push_back("the model in " + b.value("dir", "?") + " changed since");
    }
    const auto opts_was = was.value("options", nlohmann::json::object());
    const auto opts_now = now.value("options", nlohmann::json::object());
    for (const auto& [key, value] : opts_now.items()) {
        const auto old = opts_was.find(key);
        const std::string before = old == opts_was.end() ? "(not given)" : old->dump();
        if (old == opts_was.end() || *old != value) parts.push_back(key + " was " + before + ", now " + value.dump());
    }
    for (const auto& [key, value] : opts_was.items())
        if (!opts_now.contains(key)) parts.push_back(key + " was " + value.dump() + ", now not given");
    for (const auto& [key, value] : now.items())
        if (key != "input" && key != "model" && key != "options" && was.value(key, nlohmann::json()) != value)
            parts.push_back(key + " differs");
    std::string out;
    for (size_t i = 0; i < parts.size(); ++i) out += (i ? "; " : "") + parts[i];
    return out.empty() ? "the recorded job differs" : out;
}

}  // namespace

FileScan scan_file(const fs::path& path) {
    Hasher hasher;
    const auto [size, lines] = hash_into(path, hasher);
    return {size, hasher.finish(size), lines};
}

std::string hash_hex(uint64_t hash) {
    char buffer[17];
    std::snprintf(buffer, sizeof buffer, "%016llx", static_cast<unsigned long long>(hash));
    return buffer;
}

nlohmann::json model_identity(const fs::path& dir) {
    // The files MarianEngine reads; a retrained or re-exported model changes at least one of them.
    static const char* const kFiles[] = {"config.json",      "generation_config.json", "tokenizer_config.json",
                                         "model.safetensors", "source.spm",             "target.spm",
                                         "vocab.json",        "target_vocab.json"};
    Hasher hasher;
    uint64_t total = 0;
    for (const char* name : kFiles) {
        const fs::path file = dir / name;
        std::error_code ec;
        if (!fs::is_regular_file(file, ec)) continue;
        hasher.update(name, std::strlen(name) + 1);  // the name too: the same bytes under another role differ
        total += hash_into(file, hasher).first;
    }
    std::error_code ec;
    const fs::path canonical = fs::weakly_canonical(dir, ec);
    return {{"dir", (ec ? dir : canonical).string()}, {"hash", hash_hex(hasher.finish(total))}};
}

// A streambuf on a file descriptor: buffered writes, retried on EINTR (SIGINT interrupts without SA_RESTART).
class ResumableOutput::FdBuf : public std::streambuf {
public:
    explicit FdBuf(int fd) : fd_(fd), buffer_(1 << 16) { setp(buffer_.data(), buffer_.data() + buffer_.size()); }
    uint64_t written() const { return written_; }
    void set_written(uint64_t bytes) { written_ = bytes; }

protected:
    int_type overflow(int_type c) override {
        if (!drain()) return traits_type::eof();
        if (!traits_type::eq_int_type(c, traits_type::eof())) {
            *pptr() = traits_type::to_char_type(c);
            pbump(1);
        }
        return traits_type::not_eof(c);
    }
    int sync() override { return drain() ? 0 : -1; }

private:
    bool drain() {
        const char* p = pbase();
        size_t left = static_cast<size_t>(pptr() - pbase());
        while (left > 0) {
            const ssize_t n = ::write(fd_, p, left);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return false;
            p += n;
            left -= static_cast<size_t>(n);
            written_ += static_cast<uint64_t>(n);
        }
        setp(buffer_.data(), buffer_.data() + buffer_.size());
        return true;
    }

    int fd_;
    std::vector<char> buffer_;
    uint64_t written_ = 0;
};

ResumableOutput::ResumableOutput(fs::path path, nlohmann::json job)
    : path_(std::move(path)),
      partial_path_(sibling(path_, ".tolk-partial")),
      state_path_(sibling(path_, ".tolk-resume")),
      job_(std::move(job)),
      stream_(nullptr) {
    std::error_code ec;
    TOLK_CHECK(!fs::is_directory(path_, ec), path_.string(), ": cannot write output: it is a directory");
    // The output is renamed into place at the end: a device, FIFO or socket there would be replaced, not written.
    TOLK_CHECK(!fs::exists(path_, ec) || fs::is_regular_file(path_, ec), path_.string(),
               ": --resume writes a regular file and renames it into place; this path is not a regular file");
    const std::string state_name = state_path_.filename().string();
    const std::string partial_name = partial_path_.filename().string();
    const std::string start_over = "; rerun with the same input, model and options, or remove " + state_name +
                                   " and " + partial_name + " to start over";

    nlohmann::json recorded;
    const bool has_state = fs::exists(state_path_, ec);
    if (has_state) {
        recorded = nlohmann::json::parse(read_text(state_path_), nullptr, /*allow_exceptions=*/false);
        TOLK_CHECK(!recorded.is_discarded() && recorded.is_object() && recorded.contains("job"), path_.string(),
                   ": cannot resume: ", state_name, " is not a tolk resume state", start_over);
        TOLK_CHECK(recorded["job"] == job_, path_.string(), ": cannot resume: ", differences(recorded["job"], job_),
                   start_over);
    }
    fd_ = ::open(partial_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    TOLK_CHECK(fd_ >= 0, path_.string(), ": cannot write output: ", partial_name, ": ", std::strerror(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
        ::close(fd_);
        fd_ = -1;
        TOLK_FAIL(path_.string(), ": another tolk run is writing this output (", partial_name, " is locked)");
    }
    buf_ = std::make_unique<FdBuf>(fd_);
    stream_.rdbuf(buf_.get());

    uint64_t bytes = 0;
    if (has_state) {
        const int64_t lines = recorded.value("lines_done", int64_t{-1});
        const int64_t recorded_bytes = recorded.value("output_bytes", int64_t{-1});
        struct stat st {};
        TOLK_CHECK(lines >= 0 && recorded_bytes >= 0 && ::fstat(fd_, &st) == 0 && st.st_size >= recorded_bytes,
                   path_.string(), ": cannot resume: ", partial_name, " is shorter than ", state_name, " records",
                   start_over);
        lines_done_ = lines;
        bytes = static_cast<uint64_t>(recorded_bytes);
        resumed_ = true;
    }
    // Output past the last checkpoint belongs to the window that was in flight: cut it, it is written again.
    TOLK_CHECK(::ftruncate(fd_, static_cast<off_t>(bytes)) == 0 &&
                   ::lseek(fd_, static_cast<off_t>(bytes), SEEK_SET) == static_cast<off_t>(bytes),
               path_.string(), ": cannot write output: ", partial_name, ": ", std::strerror(errno));
    buf_->set_written(bytes);
    if (!has_state) write_state(0, 0);
}

ResumableOutput::~ResumableOutput() {
    if (fd_ < 0) return;
    stream_.flush();  // harmless: the state decides what counts
    ::close(fd_);
}

void ResumableOutput::write_state(int64_t lines_done, uint64_t bytes) {
    const nlohmann::json state = {{"tolk_resume_state", 1},
                                  {"output", path_.filename().string()},
                                  {"lines_done", lines_done},
                                  {"output_bytes", bytes},
                                  {"job", job_}};
    const std::string text = state.dump(2) + "\n";
    const fs::path temp = sibling(path_, ".tolk-resume.new");
    const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    TOLK_CHECK(fd >= 0, path_.string(), ": cannot write ", temp.filename().string(), ": ", std::strerror(errno));
    size_t done = 0;
    while (done < text.size()) {
        const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            const int error = errno;
            ::close(fd);
            TOLK_FAIL(path_.string(), ": cannot write ", temp.filename().string(), ": ", std::strerror(error));
        }
        done += static_cast<size_t>(n);
    }
    const bool synced = ::fsync(fd) == 0;
    ::close(fd);
    TOLK_CHECK(synced, path_.string(), ": cannot sync ", temp.filename().string(), ": ", std::strerror(errno));
    TOLK_CHECK(::rename(temp.c_str(), state_path_.c_str()) == 0, path_.string(), ": cannot rename ",
               temp.filename().string(), ": ", std::strerror(errno));
    sync_directory(path_.parent_path());
}

void ResumableOutput::checkpoint(int64_t lines_done) {
    stream_.flush();
    TOLK_CHECK(stream_.good(), path_.string(), ": write error (disk full?)");
    // The data first, then the state that counts it: a state never points past durable output.
    TOLK_CHECK(::fdatasync(fd_) == 0, path_.string(), ": cannot sync output: ", std::strerror(errno));
    write_state(lines_done, buf_->written());
}

void ResumableOutput::commit() {
    stream_.flush();
    TOLK_CHECK(stream_.good(), path_.string(), ": write error (disk full?)");
    TOLK_CHECK(::fsync(fd_) == 0, path_.string(), ": cannot sync output: ", std::strerror(errno));
    TOLK_CHECK(::rename(partial_path_.c_str(), path_.c_str()) == 0, path_.string(), ": cannot rename ",
               partial_path_.string(), " into place: ", std::strerror(errno));
    sync_directory(path_.parent_path());
    std::error_code ec;
    fs::remove(state_path_, ec);
    sync_directory(path_.parent_path());
    ::close(fd_);
    fd_ = -1;
    committed_ = true;
}

}  // namespace tolk
