// WeightStore: validates the Marian tensors against the config and resolves Hugging Face's weight ties.
#include "model/weights.h"

#include <cmath>
#include <functional>
#include <set>

#include "core/error.h"
#include "model/json_file.h"
#include "model/safetensors.h"

namespace tolk {
namespace {

using TensorList = std::vector<std::pair<std::string, Shape>>;

void add_attention(TensorList& out, const std::string& prefix, int64_t d_model) {
    for (const char* proj : {"q_proj", "k_proj", "v_proj", "out_proj"}) {
        out.push_back({prefix + "." + proj + ".weight", {d_model, d_model}});  // [out, in]
        out.push_back({prefix + "." + proj + ".bias", {d_model}});
    }
}

void add_layer_norm(TensorList& out, const std::string& prefix, int64_t d_model) {
    out.push_back({prefix + ".weight", {d_model}});
    out.push_back({prefix + ".bias", {d_model}});
}

void add_ffn(TensorList& out, const std::string& prefix, int64_t d_model, int64_t d_ff) {
    out.push_back({prefix + "fc1.weight", {d_ff, d_model}});
    out.push_back({prefix + "fc1.bias", {d_ff}});
    out.push_back({prefix + "fc2.weight", {d_model, d_ff}});
    out.push_back({prefix + "fc2.bias", {d_model}});
}

// Every per-layer tensor of both stacks; none of them is ever tied.
TensorList layer_tensors(const ModelConfig& cfg) {
    const int64_t d = cfg.d_model;
    TensorList out;
    for (int i = 0; i < cfg.encoder_layers; ++i) {
        const std::string p = "model.encoder.layers." + std::to_string(i) + ".";
        add_attention(out, p + "self_attn", d);
        add_layer_norm(out, p + "self_attn_layer_norm", d);
        add_ffn(out, p, d, cfg.encoder_ffn_dim);
        add_layer_norm(out, p + "final_layer_norm", d);
    }
    for (int i = 0; i < cfg.decoder_layers; ++i) {
        const std::string p = "model.decoder.layers." + std::to_string(i) + ".";
        add_attention(out, p + "self_attn", d);
        add_layer_norm(out, p + "self_attn_layer_norm", d);
        add_attention(out, p + "encoder_attn", d);
        add_layer_norm(out, p + "encoder_attn_layer_norm", d);
        add_ffn(out, p, d, cfg.decoder_ffn_dim);
        add_layer_norm(out, p + "final_layer_norm", d);
    }
    return out;
}

const char* const kShared = "model.shared.weight";
const char* const kEncoderEmbed = "model.encoder.embed_tokens.weight";
const char* const kDecoderEmbed = "model.decoder.embed_tokens.weight";
const char* const kLmHead = "lm_head.weight";
const char* const kLogitsBias = "final_logits_bias";

}  // namespace

struct WeightStore::Source {
    std::string name;                                          // for error messages
    std::function<const Shape*(const std::string&)> shape_of;  // nullptr when absent
    std::function<Tensor(const std::string&)> load;            // nullptr: record shapes only (open())
};

std::vector<std::pair<std::string, Shape>> WeightStore::expected_tensors(const ModelConfig& cfg) {
    const int64_t d = cfg.d_model;
    TensorList out;
    if (cfg.share_encoder_decoder_embeddings) out.push_back({kShared, {cfg.vocab_size, d}});
    out.push_back({kEncoderEmbed, {cfg.vocab_size, d}});
    out.push_back({kDecoderEmbed, {cfg.decoder_vocab_size, d}});
    out.push_back({kLmHead, {cfg.decoder_vocab_size, d}});
    out.push_back({kLogitsBias, {1, cfg.decoder_vocab_size}});
    TensorList layers = layer_tensors(cfg);
    out.insert(out.end(), layers.begin(), layers.end());
    return out;
}

namespace {

// The first non-finite element of a loaded tensor, as an error naming it: a NaN or Inf weight would otherwise
// turn every translation into an empty line without a word.
void check_finite(const Tensor& t, const std::string& source, const std::string& name) {
    const float* p = t.f32();
    const int64_t n = t.numel();
    for (int64_t i = 0; i < n; ++i) {
        if (!std::isfinite(p[i]))
            TOLK_FAIL(source, ": tensor '", name, "' holds ", std::isnan(p[i]) ? "NaN" : "Inf", " at element ", i,
                      " (of ", n, "); the weights are damaged");
    }
}

}  // namespace

WeightStore WeightStore::resolve(const Source& src, const ModelConfig& cfg) {
    // First every name and shape is checked, then the tensors are loaded: a config that promises more (layers,
    // widths) than the file holds fails before any memory is spent on it.
    struct Wanted {
        std::string name;
        Shape shape;
        std::vector<const char*> aliases;
    };
    std::vector<Wanted> wanted;
    const auto want = [&](const std::string& name, const Shape& shape, std::initializer_list<const char*> aliases = {}) {
        const Shape* have = src.shape_of(name);
        TOLK_CHECK(have, src.name, ": missing tensor '", name, "' (config expects ", shape_str(shape), ")");
        TOLK_CHECK(*have == shape, src.name, ": tensor '", name, "' has shape ", shape_str(*have),
                   ", config expects ", shape_str(shape));
        wanted.push_back({name, shape, aliases});
    };
    const int64_t d = cfg.d_model;

    // Token embeddings. MarianModel always builds `shared`; with share_encoder_decoder_embeddings both stacks use
    // it, and checkpoints may store it under any of the three names (save_pretrained keeps one of a tied group).
    if (cfg.share_encoder_decoder_embeddings) {
        const char* stored = kShared;
        for (const char* name : {kShared, kEncoderEmbed, kDecoderEmbed}) {
            if (src.shape_of(name)) {
                stored = name;
                break;
            }
        }
        want(stored, {cfg.vocab_size, d}, {kShared, kEncoderEmbed, kDecoderEmbed});
    } else {
        want(kEncoderEmbed, {cfg.vocab_size, d});
        want(kDecoderEmbed, {cfg.decoder_vocab_size, d});
    }
    // MarianMTModel.tie_weights makes lm_head the decoder embedding whenever tie_word_embeddings is set, so a stored
    // lm_head.weight is then overridden, as in transformers.
    if (!cfg.tie_word_embeddings) want(kLmHead, {cfg.decoder_vocab_size, d});
    // final_logits_bias is a buffer that transformers lets a checkpoint omit (_keys_to_ignore_on_load_missing);
    // it is then zeros.
    const bool has_logits_bias = src.shape_of(kLogitsBias) != nullptr;
    if (has_logits_bias) want(kLogitsBias, {1, cfg.decoder_vocab_size});
    // Stored sinusoidal tables (model.{encoder,decoder}.embed_positions.weight) and any other extra tensor are
    // ignored: tolk computes the positions.
    for (const auto& [name, shape] : layer_tensors(cfg)) want(name, shape);

    WeightStore ws;
    for (const Wanted& w : wanted) {
        // open() loads nothing here: load() reads (and checks) each tensor when its layer is built.
        std::shared_ptr<const Tensor> tensor;
        if (src.load) {
            tensor = std::make_shared<const Tensor>(src.load(w.name));
            check_finite(*tensor, src.name, w.name);
        }
        ws.entries_[w.name] = {tensor, w.name, w.shape};
        for (const char* alias : w.aliases) ws.entries_[alias] = {tensor, w.name, w.shape};
    }
    if (cfg.tie_word_embeddings) ws.entries_[kLmHead] = ws.entries_.at(kDecoderEmbed);
    if (!has_logits_bias) {
        const Shape shape{1, cfg.decoder_vocab_size};
        ws.entries_[kLogitsBias] = {std::make_shared<const Tensor>(shape), kLogitsBias, shape};
    }
    return ws;
}

WeightStore WeightStore::load(const std::filesystem::path& dir, const ModelConfig& cfg) {
    const std::filesystem::path path = dir / "model.safetensors";
    TOLK_CHECK(entry_exists(path), path.string(), ": not found (tolk reads the safetensors format only)");
    const SafeTensorsFile file(path);
    Source src{path.string(),
               [&](const std::string& name) { return file.contains(name) ? &file.info(name).shape : nullptr; },
               [&](const std::string& name) { return file.load_f32(name); }};
    return resolve(src, cfg);
}

WeightStore WeightStore::open(const std::filesystem::path& dir, const ModelConfig& cfg) {
    const std::filesystem::path path = dir / "model.safetensors";
    TOLK_CHECK(entry_exists(path), path.string(), ": not found (tolk reads the safetensors format only)");
    auto file = std::make_shared<const SafeTensorsFile>(path);
    Source src{path.string(),
               [&](const std::string& name) { return file->contains(name) ? &file->info(name).shape : nullptr; },
               nullptr};
    WeightStore ws = resolve(src, cfg);
    ws.file_ = std::move(file);
    return ws;
}

WeightStore WeightStore::from_tensors(std::map<std::string, Tensor> tensors, const ModelConfig& cfg,
                                      const std::string& source) {
    for (const auto& [name, t] : tensors)
        TOLK_CHECK(t.dtype() == DType::f32, source, ": tensor '", name, "' must be f32, got ", dtype_name(t.dtype()));
    Source src{source,
               [&](const std::string& name) {
                   auto it = tensors.find(name);
                   return it == tensors.end() ? nullptr : &it->second.shape();
               },
               [&](const std::string& name) { return std::move(tensors.at(name)); }};
    return resolve(src, cfg);
}

const WeightStore::Entry& WeightStore::entry(const std::string& hf_name) const {
    auto it = entries_.find(hf_name);
    TOLK_CHECK(it != entries_.end(), "no model tensor '", hf_name, "'");
    return it->second;
}

const Tensor& WeightStore::get(const std::string& hf_name) const {
    const Entry& e = entry(hf_name);
    TOLK_CHECK(e.tensor != nullptr, "model tensor '", hf_name, "' is read on demand: use load()");
    return *e.tensor;
}

Tensor WeightStore::load(const std::string& hf_name) const {
    const Entry& e = entry(hf_name);
    if (e.tensor) return e.tensor->clone();
    Tensor tensor = file_->load_f32(e.stored_name);
    check_finite(tensor, file_->path().string(), e.stored_name);
    return tensor;
}

const Shape& WeightStore::shape(const std::string& hf_name) const { return entry(hf_name).shape; }

const std::string& WeightStore::stored_name(const std::string& hf_name) const {
    auto it = entries_.find(hf_name);
    TOLK_CHECK(it != entries_.end(), "no model tensor '", hf_name, "'");
    return it->second.stored_name;
}

std::vector<std::string> WeightStore::names() const {
    std::vector<std::string> out;
    for (const auto& [name, entry] : entries_) out.push_back(name);
    return out;
}

int64_t WeightStore::parameter_count() const {
    std::set<std::string> seen;
    int64_t count = 0;
    for (const auto& [name, e] : entries_) {
        if (!seen.insert(e.stored_name).second) continue;
        int64_t n = 1;
        for (int64_t d : e.shape) n *= d;
        count += n;
    }
    return count;
}

}  // namespace tolk
