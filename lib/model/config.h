// ModelConfig: the MarianConfig fields of a Hugging Face MarianMT directory (config.json), the generation
// defaults (generation_config.json overrides config.json) and the tokenizer flags tolk needs.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tolk {

// Bounds on every config value that sizes an allocation or a loop, checked before anything is allocated. Real
// MarianMT models are far inside them (OPUS-MT: d_model 512, 6+6 layers, ffn 2048, vocab 58k, 512 positions,
// beams 4-6); the tensors in model.safetensors are then checked against the config as well.
inline constexpr int kMaxLayers = 256;              // per stack
inline constexpr int kMaxDModel = 1 << 16;
inline constexpr int kMaxFfnDim = 1 << 20;
inline constexpr int kMaxVocabSize = 1 << 24;       // = vocab.json's id limit
inline constexpr int kMaxPositions = 1 << 16;       // max_position_embeddings
inline constexpr int64_t kMaxPositionTable = int64_t{1} << 27;  // max_position_embeddings * d_model floats (512 MiB)
inline constexpr int kMaxBeam = 64;                 // num_beams and --beam: one batch's logits stay under ~0.5 GB
inline constexpr int kMaxBadWords = 1 << 16;        // bad_words_ids entries, all lists together

struct ModelConfig {
    std::filesystem::path dir;  // the model directory it was loaded from

    // Architecture (config.json). Defaults are transformers' MarianConfig defaults.
    int d_model = 1024;
    int encoder_layers = 12;
    int decoder_layers = 12;
    int encoder_attention_heads = 16;
    int decoder_attention_heads = 16;
    int encoder_ffn_dim = 4096;
    int decoder_ffn_dim = 4096;
    int vocab_size = 58101;
    int decoder_vocab_size = 58101;  // = vocab_size when absent or null
    int max_position_embeddings = 1024;
    std::string activation_function = "gelu";  // validated: "swish", "silu", "gelu" or "relu"
    bool scale_embedding = false;  // multiply token embeddings by sqrt(d_model)
    bool share_encoder_decoder_embeddings = true;
    bool tie_word_embeddings = true;  // lm_head.weight is the decoder embedding

    // Special tokens.
    int32_t pad_token_id = 58100;
    int32_t eos_token_id = 0;
    int32_t bos_token_id = -1;  // -1: none; Marian never feeds a BOS, kept for `tolk info`
    int32_t decoder_start_token_id = 58100;
    int32_t forced_eos_token_id = 0;  // -1: none
    std::vector<std::vector<int32_t>> bad_words_ids;  // token sequences generate() must never produce

    // Generation defaults (generation_config.json wins over config.json; PretrainedConfig defaults otherwise).
    int num_beams = 1;
    int max_length = 20;       // counts the decoder start token, as in transformers
    int max_new_tokens = 0;    // 0: not given
    double length_penalty = 1.0;
    bool early_stopping = false;

    // Tokenizer (tokenizer_config.json, when present).
    std::string source_lang;  // e.g. "en"; empty when not given
    std::string target_lang;
    bool separate_vocabs = false;  // target side uses target_vocab.json

    int d_head_encoder() const { return d_model / encoder_attention_heads; }
    int d_head_decoder() const { return d_model / decoder_attention_heads; }
    bool uses_swish() const { return activation_function == "swish" || activation_function == "silu"; }

    // Pretty-printed JSON of every field above, for `tolk info`.
    std::string to_json() const;
};

// Reads config.json (required), generation_config.json and tokenizer_config.json (optional) from model_dir and
// validates what tolk cannot run. Throws tolk::Error naming the file, the field and the value.
ModelConfig load_config(const std::filesystem::path& model_dir);

// The same on the files' contents (nullopt: the optional file is absent); `model_dir` names the files in errors.
// load_config reads the files (regular files within kMaxConfigJsonBytes) and calls this; the fuzzer calls it too.
ModelConfig parse_config(const std::filesystem::path& model_dir, std::string_view config_json,
                         const std::optional<std::string>& generation_json,
                         const std::optional<std::string>& tokenizer_json);

}  // namespace tolk
