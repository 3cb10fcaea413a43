// Vocab: an OPUS-MT vocab.json (piece -> id), the only source of token ids; SentencePiece's own ids are never used.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tolk {

class Vocab {
public:
    // Reads a JSON object of piece -> non-negative integer id. Throws naming the file on invalid JSON, a
    // non-integer id, or a missing </s>, <unk> or <pad> entry.
    static Vocab load(const std::filesystem::path& path);
    // The same on the file's content; `path` names it in errors (the fuzzer calls this).
    static Vocab parse(std::string_view json_text, const std::filesystem::path& path);

    std::optional<int32_t> find(std::string_view piece) const;
    // The piece of an id; nullptr when no entry has that id. With duplicate ids the last entry in the file wins,
    // as in MarianTokenizer's reversed dict.
    const std::string* piece(int32_t id) const;

    int size() const { return static_cast<int>(ids_.size()); }  // entries, as len(vocab.json)
    int32_t max_id() const { return static_cast<int32_t>(pieces_.size()) - 1; }
    int32_t eos_id() const { return eos_id_; }
    int32_t unk_id() const { return unk_id_; }
    int32_t pad_id() const { return pad_id_; }
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
    std::unordered_map<std::string, int32_t> ids_;
    std::vector<std::string> pieces_;  // by id
    std::vector<bool> has_piece_;      // by id: pieces_[id] is an entry (ids may have holes)
    int32_t eos_id_ = 0, unk_id_ = 0, pad_id_ = 0;
};

}  // namespace tolk
