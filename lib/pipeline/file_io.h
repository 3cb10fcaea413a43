// Input and output files for the pipeline: a line reader on a file descriptor (lines cut at kMaxLineBytes, stops
// on SIGINT), atomic output files (temporary file + rename, or written through for devices and FIFOs), and a fast
// line count for progress totals.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <ostream>
#include <streambuf>
#include <string>
#include <vector>

namespace tolk {

// The longest input line tolk translates: 1 MiB, about 150,000 words. The rest of a longer line is skipped
// (its output is the translation of the first 1 MiB, with a warning naming the line), so that one line without a
// newline (-i /dev/zero) cannot take unbounded memory.
inline constexpr std::size_t kMaxLineBytes = std::size_t{1} << 20;

// Reads lines ("\n" or "\r\n" terminated; a last line without a terminator counts) from a file or stdin.
class LineReader {
public:
    // path "-" reads stdin. Throws tolk::Error naming the file when it cannot be opened or is a directory.
    explicit LineReader(const std::string& path, std::size_t max_line_bytes = kMaxLineBytes);
    ~LineReader();
    LineReader(const LineReader&) = delete;
    LineReader& operator=(const LineReader&) = delete;

    // The next line without its terminator; false at end of input or once interrupted() is set. A line longer than
    // max_line_bytes is cut there (on a UTF-8 character boundary) and the warning handler is called.
    bool next(std::string& line);
    // Receives "<name>:<line>: ..." warnings (cut lines); the default prints "tolk: warning: ..." on stderr.
    void set_warning_handler(std::function<void(const std::string&)> handler) { warn_ = std::move(handler); }
    // Lines cut so far.
    int64_t lines_cut() const { return lines_cut_; }
    // Lines returned so far.
    int64_t line_number() const { return line_number_; }
    const std::string& name() const { return name_; }
    // True when reading a terminal (interactive use).
    bool is_terminal() const;
    // Number of lines of a regular file, counted without moving the read position; nullopt for pipes and
    // terminals.
    std::optional<int64_t> count_lines() const;

private:
    bool fill();
    void skip_rest_of_line();

    int fd_ = -1;
    bool owns_fd_ = false;
    std::string name_;
    std::vector<char> buffer_;
    size_t begin_ = 0, end_ = 0;
    bool eof_ = false;
    int64_t line_number_ = 0;
    std::size_t max_line_bytes_ = kMaxLineBytes;
    int64_t lines_cut_ = 0;
    std::function<void(const std::string&)> warn_;
};

// An output stream buffer over a file descriptor (the descriptor is not owned).
class FdStreamBuf : public std::streambuf {
public:
    explicit FdStreamBuf(int fd = -1) : fd_(fd), buffer_(1 << 16) { setp(buffer_.data(), buffer_.data() + buffer_.size()); }
    void set_fd(int fd) { fd_ = fd; }
    bool failed() const { return failed_; }
    int error() const { return errno_; }

protected:
    int_type overflow(int_type ch) override;
    int sync() override;
    std::streamsize xsputn(const char* s, std::streamsize n) override;

private:
    bool write_all(const char* data, std::size_t n);
    int fd_;
    std::vector<char> buffer_;
    bool failed_ = false;
    int errno_ = 0;
};

// An output file that only appears, complete, under its final name on commit(): data goes to a temporary file
// in the same directory, renamed over the target on commit(). Destroyed without commit(), the temporary file is
// removed, so an error or Ctrl-C never leaves a truncated file that looks complete; SIGTERM, SIGHUP and a second
// Ctrl-C remove it too (see interrupt.h). What is at `path` is never replaced by something else:
// - an existing regular file is replaced by the new content with its mode and (as far as allowed) owner kept;
// - a symlink is followed: the file it points to gets the content, the link stays;
// - /dev/stdout, /dev/stderr, /dev/fd/N: written to that descriptor;
// - a character device (/dev/null, a terminal), FIFO or socket: written through, as a shell redirection would;
// - a directory, block device or dangling symlink: refused.
class AtomicFile {
public:
    // Throws tolk::Error naming `path` when it cannot be written as described above.
    explicit AtomicFile(std::filesystem::path path);
    ~AtomicFile();
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;

    std::ostream& stream() { return stream_; }
    // Flushes, checks for write errors, sets the permissions (an existing file's, else 0666 minus umask) and
    // renames into place.
    void commit();
    const std::filesystem::path& path() const { return path_; }
    // True when writing straight to a device, FIFO or descriptor (no temporary file).
    bool writes_through() const { return through_; }

private:
    void discard();

    std::filesystem::path path_;      // as given
    std::filesystem::path target_;    // the file renamed over (path_ with symlinks resolved)
    std::filesystem::path temp_path_;
    int fd_ = -1;
    bool through_ = false;
    int temp_slot_ = -1;              // registration for removal on fatal signals
    bool keep_mode_ = false;          // replace an existing file: give the new one its mode and owner
    unsigned mode_ = 0;
    unsigned uid_ = 0, gid_ = 0;
    FdStreamBuf buf_;
    std::ostream stream_{&buf_};
    bool committed_ = false;
};

}  // namespace tolk
