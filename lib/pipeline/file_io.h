// Input and output files for the pipeline: a line reader on a file descriptor (any line length, stops on
// SIGINT), atomic output files (temporary file + rename), and a fast line count for progress totals.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

namespace tolk {

// Reads lines ("\n" or "\r\n" terminated; a last line without a terminator counts) from a file or stdin.
class LineReader {
public:
    // path "-" reads stdin. Throws tolk::Error naming the file when it cannot be opened or is a directory.
    explicit LineReader(const std::string& path);
    ~LineReader();
    LineReader(const LineReader&) = delete;
    LineReader& operator=(const LineReader&) = delete;

    // The next line without its terminator; false at end of input or once interrupted() is set.
    bool next(std::string& line);
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

    int fd_ = -1;
    bool owns_fd_ = false;
    std::string name_;
    std::vector<char> buffer_;
    size_t begin_ = 0, end_ = 0;
    bool eof_ = false;
    int64_t line_number_ = 0;
};

// An output file that only appears, complete, under its final name on commit(): data goes to a temporary file
// in the same directory, renamed over the target on commit(). Destroyed without commit(), the temporary file is
// removed, so an error or Ctrl-C never leaves a truncated file that looks complete.
class AtomicFile {
public:
    // Throws tolk::Error naming `path` when the directory is not writable.
    explicit AtomicFile(std::filesystem::path path);
    ~AtomicFile();
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;

    std::ostream& stream() { return stream_; }
    // Flushes, checks for write errors, sets the usual permissions (0666 minus umask) and renames into place.
    void commit();
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
    std::filesystem::path temp_path_;
    std::ofstream stream_;
    bool committed_ = false;
};

}  // namespace tolk
