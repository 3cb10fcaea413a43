// WeightStore: every tensor the Marian architecture needs, by its Hugging Face name, validated against the config
// and kept as f32; tied tensors (shared embeddings, lm_head) resolve to the one tensor they share.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/heap.h"
#include "core/tensor.h"
#include "model/config.h"

namespace tolk {

class WeightStore {
public:
    // Loads dir/model.safetensors: every tensor converted to f32 now.
    static WeightStore load(const std::filesystem::path& dir, const ModelConfig& cfg);
    // Validates dir/model.safetensors the same way but keeps it mapped and converts nothing yet: each tensor is
    // read and converted by load(name) when a layer packs it, so the f32 copies never exist all at once (the
    // model's peak memory is its packed weights plus one tensor, not plus all of them). get() is unavailable.
    static WeightStore open(const std::filesystem::path& dir, const ModelConfig& cfg);
    // Same validation and tie resolution over tensors already in memory (tests build random models this way);
    // `source` names the origin in error messages.
    static WeightStore from_tensors(std::map<std::string, Tensor> tensors, const ModelConfig& cfg,
                                    const std::string& source = "tensors");

    // f32 tensor by Hugging Face name, e.g. "model.encoder.layers.0.self_attn.q_proj.weight" ([out, in]),
    // "model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight", "lm_head.weight",
    // "final_logits_bias" ([1, decoder_vocab_size]). Throws naming the tensor when it is not an architecture tensor.
    const Tensor& get(const std::string& hf_name) const;
    // A new f32 tensor by Hugging Face name (read from the file now for a store made by open()).
    Tensor load(const std::string& hf_name) const;
    const Shape& shape(const std::string& hf_name) const;
    bool contains(const std::string& hf_name) const { return entries_.count(hf_name) != 0; }
    // The stored tensor a name resolves to (itself unless tied), e.g. "lm_head.weight" -> "model.shared.weight".
    const std::string& stored_name(const std::string& hf_name) const;

    // Where the layers built from this store keep their packed weights and tables: one arena per store, so per
    // model (the layers hold on to it; it outlives the store).
    const std::shared_ptr<PageArena>& arena() const { return arena_; }

    std::vector<std::string> names() const;  // every architecture name, sorted, tied names included
    int64_t parameter_count() const;         // elements of the unique tensors

    // The tensor names and shapes the architecture needs under `cfg`, tied names included.
    static std::vector<std::pair<std::string, Shape>> expected_tensors(const ModelConfig& cfg);

private:
    struct Source;  // where tensors come from: a safetensors file or an in-memory map
    static WeightStore resolve(const Source& source, const ModelConfig& cfg);

    struct Entry {
        std::shared_ptr<const Tensor> tensor;  // null in a store made by open(): read by load()
        std::string stored_name;
        Shape shape;
    };
    const Entry& entry(const std::string& hf_name) const;
    std::map<std::string, Entry> entries_;
    std::shared_ptr<const class SafeTensorsFile> file_;  // open(): the mapped file the tensors come from
    std::shared_ptr<PageArena> arena_ = std::make_shared<PageArena>();
};

}  // namespace tolk
