// MarianEngine: the TranslationEngine on a real MarianMT directory: Tokenizer (encode / decode), one immutable
// MarianModel shared by every worker, one MarianSession per worker, and generate()'s search settings.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>

#include "dnnl/compute_type.h"
#include "decode/options.h"
#include "model/config.h"
#include "pipeline/engine.h"
#include "text/tokenizer.h"
#include "text/vocab.h"

namespace tolk {

class MarianModel;

struct EngineOptions {
    DecodeOptions decode;  // beam, max new tokens, n-best, ...
    bool tokens = false;   // fill SegmentHypothesis::tokens with the target pieces
    int threads = 0;       // oneDNN threads of the loading thread (prepacking); 0: the library default
    ComputeType compute = ComputeType::float32;  // precision of the matmuls (float32: the reference's numbers)
    // A batch whose decoder caches would hold more than beam x this many positions is split (BatchTooLarge);
    // 0: never. The app passes twice the batch token budget: outputs twice as long as their sources fit.
    int64_t decoder_positions_per_beam = 0;
};

class MarianEngine : public TranslationEngine {
public:
    // Loads config.json (+ generation_config.json, tokenizer_config.json), model.safetensors and the tokenizer,
    // and resolves the search settings. Throws tolk::Error naming the file, field or option at fault.
    static std::unique_ptr<MarianEngine> load(const std::filesystem::path& dir, const EngineOptions& options);
    ~MarianEngine() override;

    std::vector<int32_t> encode(std::string_view sentence) const override;
    int32_t eos_id() const override;
    int max_source_tokens() const override;
    std::unique_ptr<TranslationSession> new_session(int threads) const override;

    const ModelConfig& config() const { return config_; }
    const SearchSettings& settings() const { return settings_; }
    const Tokenizer& tokenizer() const { return tokenizer_; }

private:
    MarianEngine(ModelConfig config, Tokenizer tokenizer, std::optional<Vocab> target_vocab,
                 std::unique_ptr<MarianModel> model, SearchSettings settings, bool tokens, int64_t position_budget);

    class Session;
    ModelConfig config_;
    Tokenizer tokenizer_;
    std::optional<Vocab> target_vocab_;  // id -> piece for --tokens
    std::unique_ptr<MarianModel> model_;
    SearchSettings settings_;
    bool tokens_ = false;
    int64_t position_budget_ = 0;  // rows x positions per session (MarianSession::set_position_budget)
};

}  // namespace tolk
