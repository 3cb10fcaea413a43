// Loading and validating ModelConfig from config.json, generation_config.json and tokenizer_config.json.
#include "model/config.h"

#include <limits>
#include <optional>

#include "core/error.h"
#include "model/json_file.h"

namespace tolk {
namespace {

using nlohmann::json;

// Typed field access for one JSON file. An absent key or a JSON null leaves the default in place (transformers
// treats null as "not given"), except for optional token ids where null means "none" (-1).
class Fields {
public:
    Fields(const json& object, std::string file) : object_(object), file_(std::move(file)) {
        TOLK_CHECK(object_.is_object(), file_, ": expected a JSON object, got ", json_excerpt(object_));
    }

    const json* find(const char* key) const {
        auto it = object_.find(key);
        return it == object_.end() || it->is_null() ? nullptr : &*it;
    }
    bool has(const char* key) const { return object_.contains(key); }

    void integer(const char* key, int& out) const {
        if (const json* v = find(key)) out = to_int(key, *v);
    }
    void number(const char* key, double& out) const {
        if (const json* v = find(key)) {
            if (!v->is_number()) bad_type(key, "a number", *v);
            out = v->get<double>();
        }
    }
    void boolean(const char* key, bool& out) const {
        if (const json* v = find(key)) {
            if (!v->is_boolean()) bad_type(key, "true or false", *v);
            out = v->get<bool>();
        }
    }
    void string(const char* key, std::string& out) const {
        if (const json* v = find(key)) {
            if (!v->is_string()) bad_type(key, "a string", *v);
            out = v->get<std::string>();
        }
    }
    // GenerationConfig allows a list of ids for eos; tolk supports exactly one.
    void token_id(const char* key, int32_t& out) const {
        if (!has(key)) return;
        const json* v = find(key);
        if (!v) {
            out = -1;
        } else if (v->is_array()) {
            if (v->size() != 1) bad_type(key, "one token id", *v);
            out = to_int(key, v->front());
        } else {
            out = to_int(key, *v);
        }
    }
    void id_lists(const char* key, std::vector<std::vector<int32_t>>& out) const {
        if (!has(key)) return;
        out.clear();
        const json* v = find(key);
        if (!v) return;
        if (!v->is_array()) bad_type(key, "a list of token id lists", *v);
        std::size_t total = 0;
        for (const json& seq : *v) {
            if (!seq.is_array() || seq.empty()) bad_type(key, "a list of non-empty token id lists", *v);
            total += seq.size();
            TOLK_CHECK(total <= static_cast<std::size_t>(kMaxBadWords), file_, ": field '", key, "' holds more than ",
                       kMaxBadWords, " token ids");
            std::vector<int32_t> ids;
            for (const json& id : seq) ids.push_back(to_int(key, id));
            out.push_back(std::move(ids));
        }
    }

private:
    int to_int(const char* key, const json& v) const {
        if (!v.is_number_integer()) bad_type(key, "an integer", v);
        if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int>::max()))
            bad_type(key, "a 32-bit integer", v);
        int64_t x = v.get<int64_t>();
        if (x < std::numeric_limits<int>::min() || x > std::numeric_limits<int>::max())
            bad_type(key, "a 32-bit integer", v);
        return static_cast<int>(x);
    }
    [[noreturn]] void bad_type(const char* key, const char* want, const json& v) const {
        TOLK_FAIL(file_, ": field '", key, "' must be ", want, ", got ", json_excerpt(v));
    }

    const json& object_;
    std::string file_;
};

void check_at_most(const std::string& file, const char* key, int value, int limit);
void check_positive(const std::string& file, const char* key, int value);

// The generation defaults config.json carries and generation_config.json overrides; the values that size the
// search are checked here, so that the error names the file that set them.
void read_generation(const Fields& f, const std::string& file, ModelConfig& cfg) {
    f.integer("num_beams", cfg.num_beams);
    f.integer("max_length", cfg.max_length);
    f.integer("max_new_tokens", cfg.max_new_tokens);
    f.number("length_penalty", cfg.length_penalty);
    f.boolean("early_stopping", cfg.early_stopping);
    f.id_lists("bad_words_ids", cfg.bad_words_ids);
    f.token_id("pad_token_id", cfg.pad_token_id);
    f.token_id("eos_token_id", cfg.eos_token_id);
    f.token_id("bos_token_id", cfg.bos_token_id);
    f.token_id("decoder_start_token_id", cfg.decoder_start_token_id);
    f.token_id("forced_eos_token_id", cfg.forced_eos_token_id);
    check_positive(file, "num_beams", cfg.num_beams);
    check_at_most(file, "num_beams", cfg.num_beams, kMaxBeam);
    check_positive(file, "max_length", cfg.max_length);
    TOLK_CHECK(cfg.max_new_tokens >= 0, file, ": field 'max_new_tokens' must not be negative, got ",
               cfg.max_new_tokens);
}

void check_positive(const std::string& file, const char* key, int value) {
    TOLK_CHECK(value > 0, file, ": field '", key, "' must be positive, got ", value);
}

void check_at_most(const std::string& file, const char* key, int value, int limit) {
    TOLK_CHECK(value <= limit, file, ": field '", key, "' = ", value, " is larger than tolk's limit of ", limit);
}

void check_token(const std::string& file, const char* key, int32_t id, int vocab_size, bool optional) {
    if (optional && id == -1) return;
    TOLK_CHECK(id >= 0 && id < vocab_size, file, ": field '", key, "' = ", id, " is not a token id of a ",
               vocab_size, "-entry vocabulary");
}

void validate(const ModelConfig& cfg, const std::string& file) {
    check_positive(file, "d_model", cfg.d_model);
    check_positive(file, "encoder_layers", cfg.encoder_layers);
    check_positive(file, "decoder_layers", cfg.decoder_layers);
    check_positive(file, "encoder_attention_heads", cfg.encoder_attention_heads);
    check_positive(file, "decoder_attention_heads", cfg.decoder_attention_heads);
    check_positive(file, "encoder_ffn_dim", cfg.encoder_ffn_dim);
    check_positive(file, "decoder_ffn_dim", cfg.decoder_ffn_dim);
    check_positive(file, "vocab_size", cfg.vocab_size);
    check_positive(file, "decoder_vocab_size", cfg.decoder_vocab_size);
    check_positive(file, "max_position_embeddings", cfg.max_position_embeddings);
    check_at_most(file, "d_model", cfg.d_model, kMaxDModel);
    check_at_most(file, "encoder_layers", cfg.encoder_layers, kMaxLayers);
    check_at_most(file, "decoder_layers", cfg.decoder_layers, kMaxLayers);
    check_at_most(file, "encoder_ffn_dim", cfg.encoder_ffn_dim, kMaxFfnDim);
    check_at_most(file, "decoder_ffn_dim", cfg.decoder_ffn_dim, kMaxFfnDim);
    check_at_most(file, "vocab_size", cfg.vocab_size, kMaxVocabSize);
    check_at_most(file, "decoder_vocab_size", cfg.decoder_vocab_size, kMaxVocabSize);
    check_at_most(file, "max_position_embeddings", cfg.max_position_embeddings, kMaxPositions);
    TOLK_CHECK(int64_t{cfg.max_position_embeddings} * cfg.d_model <= kMaxPositionTable, file,
               ": max_position_embeddings ", cfg.max_position_embeddings, " x d_model ", cfg.d_model,
               " is a position table larger than tolk's limit of ", kMaxPositionTable, " values");
    TOLK_CHECK(cfg.d_model % cfg.encoder_attention_heads == 0, file, ": d_model ", cfg.d_model,
               " is not divisible by encoder_attention_heads ", cfg.encoder_attention_heads);
    TOLK_CHECK(cfg.d_model % cfg.decoder_attention_heads == 0, file, ": d_model ", cfg.d_model,
               " is not divisible by decoder_attention_heads ", cfg.decoder_attention_heads);
    const std::string& act = cfg.activation_function;
    TOLK_CHECK(act == "swish" || act == "silu" || act == "gelu" || act == "relu", file,
               ": unsupported activation_function '", act, "' (tolk runs swish, silu, gelu and relu)");

    check_positive(file, "num_beams", cfg.num_beams);
    check_at_most(file, "num_beams", cfg.num_beams, kMaxBeam);
    check_positive(file, "max_length", cfg.max_length);
    TOLK_CHECK(cfg.max_new_tokens >= 0, file, ": field 'max_new_tokens' must not be negative, got ",
               cfg.max_new_tokens);
    check_token(file, "pad_token_id", cfg.pad_token_id, cfg.decoder_vocab_size, false);
    check_token(file, "eos_token_id", cfg.eos_token_id, cfg.decoder_vocab_size, false);
    check_token(file, "decoder_start_token_id", cfg.decoder_start_token_id, cfg.decoder_vocab_size, false);
    check_token(file, "forced_eos_token_id", cfg.forced_eos_token_id, cfg.decoder_vocab_size, true);
    for (const auto& seq : cfg.bad_words_ids)
        for (int32_t id : seq) check_token(file, "bad_words_ids", id, cfg.decoder_vocab_size, false);
}

}  // namespace

ModelConfig load_config(const std::filesystem::path& model_dir) {
    const std::filesystem::path config_path = model_dir / "config.json";
    TOLK_CHECK(entry_exists(config_path), config_path.string(),
               ": not found (is this a Hugging Face MarianMT model directory?)");
    const std::string config_text = read_regular_file(config_path, kMaxConfigJsonBytes);
    // Optional files: absent is fine, but anything at their name (a directory, a FIFO, a symlink loop) must read.
    std::optional<std::string> gen_text, tok_text;
    if (const auto p = model_dir / "generation_config.json"; entry_exists(p)) gen_text = read_regular_file(p, kMaxConfigJsonBytes);
    if (const auto p = model_dir / "tokenizer_config.json"; entry_exists(p)) tok_text = read_regular_file(p, kMaxConfigJsonBytes);
    return parse_config(model_dir, config_text, gen_text, tok_text);
}

ModelConfig parse_config(const std::filesystem::path& model_dir, std::string_view config_text,
                         const std::optional<std::string>& generation_text,
                         const std::optional<std::string>& tokenizer_text) {
    ModelConfig cfg;
    cfg.dir = model_dir;
    const std::string file = (model_dir / "config.json").string();
    const json config = parse_json(config_text, file);
    const Fields f(config, file);

    std::string model_type = "marian";
    f.string("model_type", model_type);
    TOLK_CHECK(model_type == "marian", file, ": model_type '", model_type, "' is not supported (tolk runs marian)");

    // Every other key is ignored, as MarianConfig stores unknown keys without reading them. That includes the
    // legacy flags of early OPUS-MT conversions, none of which transformers' modeling_marian.py consults:
    //   normalize_before           - MarianEncoderLayer/MarianDecoderLayer are always post-norm
    //   normalize_embedding        - MarianEncoder/MarianDecoder have no embedding LayerNorm
    //   add_final_layer_norm       - neither stack ends with a LayerNorm
    //   static_position_embeddings - positions are always MarianSinusoidalPositionalEmbedding
    //   add_bias_logits            - MarianMTModel always adds final_logits_bias to the logits
    // as well as dropout rates, init_std, use_cache, architectures, id2label and the like.
    f.integer("d_model", cfg.d_model);
    f.integer("encoder_layers", cfg.encoder_layers);
    f.integer("decoder_layers", cfg.decoder_layers);
    f.integer("encoder_attention_heads", cfg.encoder_attention_heads);
    f.integer("decoder_attention_heads", cfg.decoder_attention_heads);
    f.integer("encoder_ffn_dim", cfg.encoder_ffn_dim);
    f.integer("decoder_ffn_dim", cfg.decoder_ffn_dim);
    f.integer("vocab_size", cfg.vocab_size);
    cfg.decoder_vocab_size = 0;
    f.integer("decoder_vocab_size", cfg.decoder_vocab_size);
    f.integer("max_position_embeddings", cfg.max_position_embeddings);
    f.string("activation_function", cfg.activation_function);
    f.boolean("scale_embedding", cfg.scale_embedding);
    f.boolean("share_encoder_decoder_embeddings", cfg.share_encoder_decoder_embeddings);
    f.boolean("tie_word_embeddings", cfg.tie_word_embeddings);
    // MarianConfig: decoder_vocab_size = decoder_vocab_size or vocab_size. With shared embeddings MarianMTModel
    // sizes lm_head and final_logits_bias by vocab_size whatever decoder_vocab_size says.
    if (cfg.decoder_vocab_size == 0 || cfg.share_encoder_decoder_embeddings) cfg.decoder_vocab_size = cfg.vocab_size;
    read_generation(f, file, cfg);

    // generation_config.json is what generate() reads; the fields it sets win over config.json's.
    if (generation_text) {
        const std::string gen_file = (model_dir / "generation_config.json").string();
        const json gen = parse_json(*generation_text, gen_file);
        read_generation(Fields(gen, gen_file), gen_file, cfg);
    }

    if (tokenizer_text) {
        const std::string tok_file = (model_dir / "tokenizer_config.json").string();
        const json tok = parse_json(*tokenizer_text, tok_file);
        const Fields t(tok, tok_file);
        t.string("source_lang", cfg.source_lang);
        t.string("target_lang", cfg.target_lang);
        t.boolean("separate_vocabs", cfg.separate_vocabs);
    }

    validate(cfg, file);
    return cfg;
}

std::string ModelConfig::to_json() const {
    nlohmann::ordered_json j;
    j["dir"] = dir.string();
    j["d_model"] = d_model;
    j["encoder_layers"] = encoder_layers;
    j["decoder_layers"] = decoder_layers;
    j["encoder_attention_heads"] = encoder_attention_heads;
    j["decoder_attention_heads"] = decoder_attention_heads;
    j["encoder_ffn_dim"] = encoder_ffn_dim;
    j["decoder_ffn_dim"] = decoder_ffn_dim;
    j["vocab_size"] = vocab_size;
    j["decoder_vocab_size"] = decoder_vocab_size;
    j["max_position_embeddings"] = max_position_embeddings;
    j["activation_function"] = activation_function;
    j["scale_embedding"] = scale_embedding;
    j["share_encoder_decoder_embeddings"] = share_encoder_decoder_embeddings;
    j["tie_word_embeddings"] = tie_word_embeddings;
    j["pad_token_id"] = pad_token_id;
    j["eos_token_id"] = eos_token_id;
    j["bos_token_id"] = bos_token_id < 0 ? nlohmann::ordered_json() : nlohmann::ordered_json(bos_token_id);
    j["decoder_start_token_id"] = decoder_start_token_id;
    j["forced_eos_token_id"] =
        forced_eos_token_id < 0 ? nlohmann::ordered_json() : nlohmann::ordered_json(forced_eos_token_id);
    j["bad_words_ids"] = bad_words_ids;
    j["num_beams"] = num_beams;
    j["max_length"] = max_length;
    j["max_new_tokens"] = max_new_tokens > 0 ? nlohmann::ordered_json(max_new_tokens) : nlohmann::ordered_json();
    j["length_penalty"] = length_penalty;
    j["early_stopping"] = early_stopping;
    j["source_lang"] = source_lang;
    j["target_lang"] = target_lang;
    j["separate_vocabs"] = separate_vocabs;
    return j.dump(2);
}

}  // namespace tolk
