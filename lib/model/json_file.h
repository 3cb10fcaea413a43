// Bounded reading and parsing of every JSON document tolk reads (model files, the safetensors header, JSONL input
// lines): regular files only, a size limit, a nesting-depth limit, and errors that name the file and the field.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace tolk {

// Limits, far above real files: a MarianMT config.json, generation_config.json or tokenizer_config.json is under
// 10 KB and nests at most 3 levels (bad_words_ids, added_tokens_decoder); an OPUS-MT vocab.json of 58k pieces is
// about 1.5 MB and nests 1 level; a safetensors header of a 300-tensor model is about 40 KB and nests 3 levels.
// The depth limit keeps every recursive walk of a parsed value (dump, copy, compare) far from the stack's end.
inline constexpr int kMaxJsonDepth = 64;
inline constexpr std::size_t kMaxConfigJsonBytes = std::size_t{16} << 20;  // config, generation, tokenizer config
inline constexpr std::size_t kMaxVocabJsonBytes = std::size_t{256} << 20;  // vocab.json, target_vocab.json
inline constexpr std::size_t kMaxSafetensorsHeaderBytes = std::size_t{100} << 20;  // the safetensors spec's limit
inline constexpr std::size_t kMaxSpmBytes = std::size_t{256} << 20;  // source.spm / target.spm (real: ~800 KB)

// The whole content of a regular file of at most max_bytes. The file is opened without blocking, so a FIFO never
// hangs; FIFOs, devices (/dev/zero), sockets and directories are refused. Symlinks are followed (a loop is an
// error). Throws tolk::Error "<path>: ..." naming the reason.
std::string read_regular_file(const std::filesystem::path& path, std::size_t max_bytes);

// Opens `path` for reading as a regular file (same checks as above, O_CLOEXEC); returns the fd and its size.
struct RegularFile {
    int fd = -1;
    std::size_t size = 0;
};
RegularFile open_regular_file(const std::filesystem::path& path);

// Whether `path` names a regular file (symlinks followed); false for anything else, never throws.
bool is_regular_file_quiet(const std::filesystem::path& path);
// Whether anything (even a dangling symlink or a FIFO) is at `path`: an optional model file that is present must
// then be readable, so a directory or a symlink loop in its place is an error, not a silently missing file.
bool entry_exists(const std::filesystem::path& path);

// Parses JSON text with the depth limit. Throws tolk::Error "<where>: invalid JSON: <reason> (at field 'a.b[2]')":
// syntax errors with line and column, numbers out of double range (1e400), nesting deeper than max_depth.
// `what` names the document in the message ("JSON", "JSON header").
nlohmann::json parse_json(std::string_view text, const std::string& where, const char* what = "JSON",
                          int max_depth = kMaxJsonDepth);

// read_regular_file + parse_json.
nlohmann::json read_json_file(const std::filesystem::path& path, std::size_t max_bytes = kMaxConfigJsonBytes);

// nlohmann's parse error message without its "[json.exception.parse_error.101] " prefix (keeps line and column).
std::string parse_error_text(const nlohmann::json::exception& error);

// A JSON value shortened for error messages (long arrays and objects are cut).
std::string json_excerpt(const nlohmann::json& value);
std::string json_excerpt(const nlohmann::ordered_json& value);

}  // namespace tolk
