// Line reading on raw file descriptors and atomic output files (see file_io.h).
#include "pipeline/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/error.h"
#include "pipeline/interrupt.h"

namespace tolk {

namespace {
constexpr size_t kReadChunk = 1 << 16;
}

LineReader::LineReader(const std::string& path, std::size_t max_line_bytes)
    : name_(path == "-" ? "<stdin>" : path), max_line_bytes_(std::max<std::size_t>(max_line_bytes, 4)) {
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

// Drops input up to and including the next "\n" (or to the end of input), without keeping it in memory.
void LineReader::skip_rest_of_line() {
    for (;;) {
        const auto* newline = static_cast<const char*>(std::memchr(buffer_.data() + begin_, '\n', end_ - begin_));
        if (newline) {
            begin_ = static_cast<size_t>(newline - buffer_.data()) + 1;
            return;
        }
        begin_ = end_;
        if (eof_ || !fill()) return;
    }
}

bool LineReader::next(std::string& line) {
    if (interrupted()) return false;
    size_t searched = 0;  // bytes after begin_ known to hold no "\n" (fill() keeps offsets from begin_)
    bool cut = false;
    for (;;) {
        const char* start = buffer_.data() + begin_ + searched;
        const auto* newline = static_cast<const char*>(std::memchr(start, '\n', end_ - begin_ - searched));
        if (newline && static_cast<size_t>(newline - (buffer_.data() + begin_)) <= max_line_bytes_) {
            const size_t end = static_cast<size_t>(newline - buffer_.data());
            line.assign(buffer_.data() + begin_, end - begin_);
            begin_ = end + 1;
            break;
        }
        searched = end_ - begin_;
        if (searched > max_line_bytes_) {
            // Too long: keep the first max_line_bytes_, backed off to the start of a UTF-8 character.
            size_t keep = max_line_bytes_;
            for (int k = 0; k < 3 && keep > 0 && (static_cast<unsigned char>(buffer_[begin_ + keep]) & 0xc0) == 0x80; ++k)
                --keep;
            line.assign(buffer_.data() + begin_, keep);
            begin_ += max_line_bytes_;
            skip_rest_of_line();
            cut = true;
            break;
        }
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
    if (cut) {
        ++lines_cut_;
        const std::string message = name_ + ":" + std::to_string(line_number_) + ": longer than " +
                                    std::to_string(max_line_bytes_) + " bytes; only the first " +
                                    std::to_string(max_line_bytes_) + " are translated";
        if (warn_) warn_(message);
        else std::fprintf(stderr, "tolk: warning: %s\n", message.c_str());
    }
    return true;
}

FdStreamBuf::int_type FdStreamBuf::overflow(int_type ch) {
    if (sync() != 0) return traits_type::eof();
    if (!traits_type::eq_int_type(ch, traits_type::eof())) {
        *pptr() = traits_type::to_char_type(ch);
        pbump(1);
    }
    return traits_type::not_eof(ch);
}

int FdStreamBuf::sync() {
    const std::size_t n = static_cast<std::size_t>(pptr() - pbase());
    setp(buffer_.data(), buffer_.data() + buffer_.size());
    if (n && !write_all(buffer_.data(), n)) return -1;
    return failed_ ? -1 : 0;
}

std::streamsize FdStreamBuf::xsputn(const char* s, std::streamsize n) {
    if (n >= static_cast<std::streamsize>(buffer_.size())) {
        if (sync() != 0) return 0;
        return write_all(s, static_cast<std::size_t>(n)) ? n : 0;
    }
    return std::streambuf::xsputn(s, n);
}

bool FdStreamBuf::write_all(const char* data, std::size_t n) {
    while (n > 0 && !failed_) {
        const ssize_t w = ::write(fd_, data, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            failed_ = true;
            errno_ = w < 0 ? errno : EIO;
            break;
        }
        data += w;
        n -= static_cast<std::size_t>(w);
    }
    return !failed_;
}

namespace {

// "/dev/stdout" and friends name a descriptor of this process: write to it, whatever it is.
int descriptor_path(const std::string& path) {
    if (path == "/dev/stdout") return STDOUT_FILENO;
    if (path == "/dev/stderr") return STDERR_FILENO;
    for (const char* prefix : {"/dev/fd/", "/proc/self/fd/"}) {
        const std::string p = prefix;
        if (path.rfind(p, 0) == 0 && path.size() > p.size() && path.size() < p.size() + 8 &&
            path.find_first_not_of("0123456789", p.size()) == std::string::npos)
            return std::atoi(path.c_str() + p.size());
    }
    return -1;
}

const char* kind_of(mode_t mode) {
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISSOCK(mode)) return "a socket";
    return "a special file";
}

}  // namespace

AtomicFile::AtomicFile(std::filesystem::path path) : path_(std::move(path)) {
    const std::string name = path_.string();
    if (const int fd = descriptor_path(name); fd >= 0) {
        fd_ = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
        TOLK_CHECK(fd_ >= 0, name, ": cannot write output: ", std::strerror(errno));
        through_ = true;
        buf_.set_fd(fd_);
        return;
    }
    struct stat lst {}, st {};
    const bool present = ::lstat(name.c_str(), &lst) == 0;
    const bool is_link = present && S_ISLNK(lst.st_mode);
    if (present && ::stat(name.c_str(), &st) != 0) {
        TOLK_FAIL(name, ": cannot write output: ",
                  errno == ENOENT ? std::string("it is a dangling symbolic link") : std::strerror(errno));
    }
    target_ = path_;
    if (present) {
        if (S_ISDIR(st.st_mode)) TOLK_FAIL(name, ": cannot write output: it is a directory");
        if (S_ISBLK(st.st_mode)) TOLK_FAIL(name, ": cannot write output: it is a block device");
        if (!S_ISREG(st.st_mode)) {
            // A device, FIFO or socket: written through (a FIFO's reader gets the lines), never replaced.
            fd_ = ::open(name.c_str(), O_WRONLY | O_NOCTTY | O_CLOEXEC);
            TOLK_CHECK(fd_ >= 0, name, ": cannot write output (", kind_of(st.st_mode), "): ", std::strerror(errno));
            through_ = true;
            buf_.set_fd(fd_);
            return;
        }
        if (is_link) {
            // Replace the file the link points to, in its own directory; the link stays.
            char* real = ::realpath(name.c_str(), nullptr);
            TOLK_CHECK(real, name, ": cannot write output: ", std::strerror(errno));
            target_ = real;
            std::free(real);
        }
        keep_mode_ = true;
        mode_ = st.st_mode & 07777;
        uid_ = st.st_uid;
        gid_ = st.st_gid;
    }
    const std::filesystem::path dir = target_.has_parent_path() ? target_.parent_path() : std::filesystem::path(".");
    std::string pattern = (dir / std::string(".").append(target_.filename().string()).append(".tolk-XXXXXX")).string();
    fd_ = ::mkostemp(pattern.data(), O_CLOEXEC);
    TOLK_CHECK(fd_ >= 0, name, ": cannot write output: ", std::strerror(errno));
    temp_path_ = pattern;
    temp_slot_ = register_temp_file(pattern);
    buf_.set_fd(fd_);
}

AtomicFile::~AtomicFile() {
    if (!committed_) discard();
}

void AtomicFile::discard() {
    if (fd_ >= 0) {
        if (through_) stream_.flush();  // lines written through are already out; keep the rest too
        ::close(fd_);
        fd_ = -1;
    }
    if (!temp_path_.empty()) {
        ::unlink(temp_path_.c_str());
        unregister_temp_file(temp_slot_);
        temp_slot_ = -1;
        temp_path_.clear();
    }
}

void AtomicFile::commit() {
    stream_.flush();
    TOLK_CHECK(!buf_.failed() && stream_.good(), path_.string(), ": write error: ",
               std::strerror(buf_.error() ? buf_.error() : EIO));
    if (through_) {
        const int rc = ::close(fd_);
        fd_ = -1;
        committed_ = true;
        TOLK_CHECK(rc == 0 || errno == EINTR, path_.string(), ": write error: ", std::strerror(errno));
        return;
    }
    if (keep_mode_) {
        // The replacement keeps the old file's owner (possible as root or when it was ours) and mode.
        if (::fchown(fd_, uid_, gid_) != 0) {
            // Not permitted: the file becomes ours, as any rewrite by this user would.
        }
        ::fchmod(fd_, mode_);
    } else {
        // mkstemp creates 0600; give the file the permissions any new file would get.
        const mode_t mask = ::umask(0);
        ::umask(mask);
        ::fchmod(fd_, 0666 & ~mask);
    }
    const int rc = ::close(fd_);
    fd_ = -1;
    TOLK_CHECK(rc == 0, path_.string(), ": write error: ", std::strerror(errno));
    TOLK_CHECK(::rename(temp_path_.c_str(), target_.c_str()) == 0, path_.string(), ": cannot rename ",
               temp_path_.string(), " into place: ", std::strerror(errno));
    unregister_temp_file(temp_slot_);
    temp_slot_ = -1;
    temp_path_.clear();
    committed_ = true;
}

}  // namespace tolk
