// Tokenizer: MarianTokenizer semantics. source.spm only segments text into pieces; ids come from vocab.json
// (target side: target_vocab.json with separate_vocabs); decoding maps ids back to text with transformers' clean-up.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "model/config.h"

namespace tolk {

// Immutable after load: encode() and decode() may run concurrently from several threads.
class Tokenizer {
public:
    static Tokenizer load(const std::filesystem::path& dir, const ModelConfig& cfg);
    ~Tokenizer();
    Tokenizer(Tokenizer&&) noexcept;
    Tokenizer& operator=(Tokenizer&&) noexcept;

    // Source ids: pieces looked up in the source vocab (unknown -> <unk>), then </s>. No BOS.
    std::vector<int32_t> encode(std::string_view text) const;
    // The pieces encode() looks up, without </s>; a leading ">>xx<<" language tag is one piece.
    std::vector<std::string> encode_pieces(std::string_view text) const;
    // Target ids -> text: special tokens dropped, pieces joined, "▁" -> space, stripped, clean-up applied.
    std::string decode(std::span<const int32_t> target_ids) const;

    int source_vocab_size() const;  // entries of vocab.json
    int target_vocab_size() const;  // entries of target_vocab.json (separate_vocabs) or vocab.json
    // Special ids of the source vocab (the target vocab of OPUS-MT models puts </s> and <unk> at the same ids).
    int32_t eos_id() const;
    int32_t pad_id() const;
    int32_t unk_id() const;

private:
    struct Impl;
    explicit Tokenizer(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// What tokenizer_config.json adds to decoding: more special tokens to drop, and clean_up_tokenization_spaces.
// Throws tolk::Error naming `file` on invalid or too deeply nested JSON; unknown or mistyped keys are ignored.
struct TokenizerConfigFlags {
    std::vector<std::string> special_tokens;
    bool clean_up = true;
};
TokenizerConfigFlags parse_tokenizer_config(std::string_view json_text, const std::string& file);

// transformers' clean_up_tokenization: removes the space before punctuation and English contractions.
std::string clean_up_tokenization(std::string text);

}  // namespace tolk
