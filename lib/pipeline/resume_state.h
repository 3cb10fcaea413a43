// Resumable output for long corpus jobs: the finished prefix of the output (a hidden "partial" file next to the
// output) plus a small state file that records what job it belongs to (input identity, model, the options that
// change the output) and how far it got. Progress is committed in whole windows, each made durable (fdatasync)
// before the state that counts it, so a kill or a power loss loses at most the window in flight.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <ostream>
#include <streambuf>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tolk {

// What identifies a regular file's content, and its line count (as LineReader counts lines), in one pass.
struct FileScan {
    uint64_t size = 0;
    uint64_t hash = 0;  // 64-bit hash of every byte (not cryptographic: it detects changes, not tampering)
    int64_t lines = 0;
};
// Throws tolk::Error naming the file when it cannot be read.
FileScan scan_file(const std::filesystem::path& path);

// The model's identity: its directory and a hash over the files tolk reads from it (config, generation config,
// weights, tokenizer files). Throws tolk::Error when a file cannot be read.
nlohmann::json model_identity(const std::filesystem::path& dir);

// "0123456789abcdef".
std::string hash_hex(uint64_t hash);

// The output file of a resumable job. Output written to stream() goes to the partial file; checkpoint() makes it
// durable and records it. commit() renames the partial file to the output path (the output still appears only
// when complete) and removes the state. Destroyed without commit(), partial and state stay for the next run.
class ResumableOutput {
public:
    // `job`: a JSON object describing the job ({"input": ..., "model": ..., "options": {...}}). When a state
    // file for `path` exists, its job must equal `job` (else tolk::Error listing what differs and how to start
    // over); the partial file is cut back to the last checkpoint and lines_done() says how far it got.
    // Without a state file a new job starts. Throws tolk::Error when another run holds the same output.
    ResumableOutput(std::filesystem::path path, nlohmann::json job);
    ~ResumableOutput();
    ResumableOutput(const ResumableOutput&) = delete;
    ResumableOutput& operator=(const ResumableOutput&) = delete;

    // Lines of the job finished by earlier runs (0 for a new job).
    int64_t lines_done() const { return lines_done_; }
    bool resumed() const { return resumed_; }
    std::ostream& stream() { return stream_; }
    // Records that the first `lines_done` lines of the job are complete in the partial file: flush, fdatasync,
    // then the state file is replaced atomically (write, fsync, rename, fsync of the directory).
    void checkpoint(int64_t lines_done);
    // Flushes, syncs and renames the partial file into place, then removes the state file.
    void commit();

    const std::filesystem::path& path() const { return path_; }
    const std::filesystem::path& partial_path() const { return partial_path_; }
    const std::filesystem::path& state_path() const { return state_path_; }

private:
    class FdBuf;
    void write_state(int64_t lines_done, uint64_t bytes);

    std::filesystem::path path_, partial_path_, state_path_;
    nlohmann::json job_;
    int fd_ = -1;
    std::unique_ptr<FdBuf> buf_;
    std::ostream stream_;
    int64_t lines_done_ = 0;
    bool resumed_ = false;
    bool committed_ = false;
};

}  // namespace tolk
