// Line reading on raw file descriptors and atomic output files (see file_io.h).
#include "pipeline/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "core/error.h"
#include "pipeline/interrupt.h"

namespace tolk {

namespace {
constexpr size_t kReadChunk = 1 << 16;
}

LineReader::LineReader(const std::string& path) : name_(path == "-" ? "<stdin>" : path) {
    if (path == "-") {
        fd_ = STDIN_FILENO;
    } else {
        fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        TOLK_CHECK(fd_ >= 0, path, ": cannot open input: ", std::strerror(errno));
        owns_fd_ = true;
        struct stat st {};
        if (::fstat(fd_, &st) == 0 && S_ISDIR(st.st_mode)) {
            ::close(fd_);
            fd_ = -1;
            TOLK_FAIL(path, ": cannot read input: it is a directory");
        }
    }
    buffer_.resize(kReadChunk);
}

LineReader::~LineReader() {
    if (owns_fd_ && fd_ >= 0) ::close(fd_);
}

bool LineReader::is_terminal() const { return ::isatty(fd_) == 1; }

std::optional<int64_t> LineReader::count_lines() const {
    struct stat st {};
    if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
    std::vector<char> chunk(1 << 20);
    int64_t lines = 0;
    off_t offset = 0;
    char last = '\n';
    for (;;) {
        const ssize_t n = ::pread(fd_, chunk.data(), chunk.size(), offset);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return std::nullopt;
        if (n == 0) break;
        lines += std::count(chunk.data(), chunk.data() + n, '\n');
        last = chunk[static_cast<size_t>(n) - 1];
        offset += n;
    }
    if (last != '\n') ++lines;
    return lines;
}

// Reads more bytes after the unconsumed ones; false at end of input or when interrupted.
bool LineReader::fill() {
    if (begin_ > 0) {
        std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
        end_ -= begin_;
        begin_ = 0;
    }
    if (buffer_.size() - end_ < kReadChunk / 2) buffer_.resize(buffer_.size() * 2);  // a long line: grow
    for (;;) {
        if (interrupted()) return false;
        const ssize_t n = ::read(fd_, buffer_.data() + end_, buffer_.size() - end_);
        if (n < 0 && errno == EINTR) continue;
        TOLK_CHECK(n >= 0, name_, ": read error: ", std::strerror(errno));
        if (n == 0) {
            eof_ = true;
            return false;
        }
        end_ += static_cast<size_t>(n);
        return true;
    }
}

bool LineReader::next(std::string& line) {
    if (interrupted()) return false;
    size_t searched = 0;  // bytes after begin_ known to hold no "\n" (fill() keeps offsets from begin_)
    for (;;) {
        const char* start = buffer_.data() + begin_ + searched;
        const auto* newline = static_cast<const char*>(std::memchr(start, '\n', end_ - begin_ - searched));
        if (newline) {
            const size_t end = static_cast<size_t>(newline - buffer_.data());
            line.assign(buffer_.data() + begin_, end - begin_);
            begin_ = end + 1;
            break;
        }
        searched = end_ - begin_;
        if (eof_ || !fill()) {
            if (interrupted() || begin_ == end_) return false;
            line.assign(buffer_.data() + begin_, end_ - begin_);  // last line without "\n"
            begin_ = end_;
            break;
        }
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line_number_ == 0 && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);  // UTF-8 byte order mark
    ++line_number_;
    return true;
}

AtomicFile::AtomicFile(std::filesystem::path path) : path_(std::move(path)) {
    std::error_code ec;
    TOLK_CHECK(!std::filesystem::is_directory(path_, ec), path_.string(), ": cannot write output: it is a directory");
    const std::filesystem::path dir = path_.has_parent_path() ? path_.parent_path() : std::filesystem::path(".");
    std::string pattern = (dir / std::string(".").append(path_.filename().string()).append(".tolk-XXXXXX")).string();
    const int fd = ::mkstemp(pattern.data());
    TOLK_CHECK(fd >= 0, path_.string(), ": cannot write output: ", std::strerror(errno));
    ::close(fd);
    temp_path_ = pattern;
    stream_.open(temp_path_, std::ios::binary | std::ios::trunc);
    if (!stream_) {
        std::filesystem::remove(temp_path_, ec);
        TOLK_FAIL(path_.string(), ": cannot write output");
    }
}

AtomicFile::~AtomicFile() {
    if (committed_) return;
    stream_.close();
    std::error_code ec;
    std::filesystem::remove(temp_path_, ec);
}

void AtomicFile::commit() {
    stream_.flush();
    TOLK_CHECK(stream_.good(), path_.string(), ": write error (disk full?)");
    stream_.close();
    TOLK_CHECK(!stream_.fail(), path_.string(), ": write error (disk full?)");
    // mkstemp creates 0600; give the file the permissions any new file would get.
    const mode_t mask = ::umask(0);
    ::umask(mask);
    ::chmod(temp_path_.c_str(), 0666 & ~mask);
    TOLK_CHECK(::rename(temp_path_.c_str(), path_.c_str()) == 0, path_.string(), ": cannot rename ",
               temp_path_.string(), " into place: ", std::strerror(errno));
    committed_ = true;
}

}  // namespace tolk
