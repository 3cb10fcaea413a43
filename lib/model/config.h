// ModelConfig: the MarianConfig fields of a Hugging Face MarianMT directory (config.json), the generation
// defaults (generation_config.json overrides config.json) and the tokenizer flags tolk needs.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace tolk {

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

}  // namespace tolk
