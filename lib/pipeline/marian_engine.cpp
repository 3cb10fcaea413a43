// MarianEngine: the real model behind the pipeline's TranslationEngine interface (see marian_engine.h).
#include "pipeline/marian_engine.h"

#include "core/heap.h"

#include <exception>
#include <future>
#include <optional>
#include <system_error>
#include <thread>

#include "decode/generate.h"
#include "dnnl/context.h"
#include "layers/marian_model.h"
#include "model/weights.h"

namespace tolk {

// One worker's state: a MarianSession (oneDNN stream, K/V caches, scratch) over the shared model.
class MarianEngine::Session : public TranslationSession {
public:
    explicit Session(const MarianEngine& engine) : engine_(engine), session_(*engine.model_) {
        session_.set_position_budget(engine.position_budget_);
    }

    std::vector<std::vector<SegmentHypothesis>> translate(const std::vector<std::vector<int32_t>>& src_ids) override {
        std::vector<std::vector<Hypothesis>> results;
        try {
            results = search(session_, engine_.settings_, src_ids);
        } catch (const DecoderBudgetExceeded& e) {
            throw BatchTooLarge(e.what());
        }
        std::vector<std::vector<SegmentHypothesis>> out(results.size());
        for (size_t i = 0; i < results.size(); ++i) {
            for (const Hypothesis& h : results[i]) {
                SegmentHypothesis s;
                s.text = engine_.tokenizer_.decode(h.ids);
                s.score = h.score;
                s.n_tokens = static_cast<int64_t>(h.ids.size());
                if (engine_.tokens_) {
                    for (const int32_t id : h.ids) {
                        const std::string* piece = engine_.target_vocab_->piece(id);
                        s.tokens.push_back(piece ? *piece : std::string("<").append(std::to_string(id)).append(">"));
                    }
                }
                out[i].push_back(std::move(s));
            }
        }
        return out;
    }

private:
    const MarianEngine& engine_;
    MarianSession session_;
};

MarianEngine::MarianEngine(ModelConfig config, Tokenizer tokenizer, std::optional<Vocab> target_vocab,
                           std::unique_ptr<MarianModel> model, SearchSettings settings, bool tokens,
                           int64_t position_budget)
    : config_(std::move(config)),
      tokenizer_(std::move(tokenizer)),
      target_vocab_(std::move(target_vocab)),
      model_(std::move(model)),
      settings_(std::move(settings)),
      tokens_(tokens),
      position_budget_(position_budget) {}

MarianEngine::~MarianEngine() = default;

std::unique_ptr<MarianEngine> MarianEngine::load(const std::filesystem::path& dir, const EngineOptions& options) {
    ModelConfig config = load_config(dir);
    SearchSettings settings = resolve_settings(config, options.decode);
    // The tokenizer and the vocabularies load beside the weights, on a second core where there is one: they
    // depend only on the config, and parsing them (the SentencePiece model builds its trie) took as long as
    // packing the weights of models/en-de. Their errors still come first, as when they loaded first.
    struct Text {
        Tokenizer tokenizer;
        std::optional<Vocab> target_vocab;
    };
    const auto load_text = [&] {
        Text text{Tokenizer::load(dir, config), std::nullopt};
        if (options.tokens)
            text.target_vocab = Vocab::load(dir / (config.separate_vocabs ? "target_vocab.json" : "vocab.json"));
        // Parsing left megabytes of freed memory in this thread's heap: returned now, while the weights are still
        // loading, rather than when they are done, so that it is not part of the load's peak.
        release_free_heap();
        return text;
    };
    std::future<Text> text_future;
    if (std::thread::hardware_concurrency() > 1) {
        try {
            text_future = std::async(std::launch::async, load_text);
        } catch (const std::system_error&) {
            // No thread to be had (a process or memory limit): the text loads after the weights instead.
        }
    }
    std::unique_ptr<MarianModel> model;
    std::exception_ptr model_error;
    // The same thread count as the workers: an OpenMP team larger than needed keeps spinning after the
    // prepacking and steals cores from the workers.
    if (options.threads > 0) set_num_threads(options.threads);
    try {
        // Each tensor is read from the mapped file and converted when its layer packs it; the mapping is dropped
        // once the model is built.
        const HeapReuseScope reuse;
        {
            const WeightStore weights = WeightStore::open(dir, config);
            model = std::make_unique<MarianModel>(config, weights, options.compute);
        }
    } catch (...) {
        model_error = std::current_exception();
    }
    Text text = text_future.valid() ? text_future.get() : load_text();
    if (model_error) std::rethrow_exception(model_error);
    TOLK_CHECK(options.decoder_positions_per_beam >= 0, "decoder position budget must not be negative");
    const int64_t budget = options.decoder_positions_per_beam * settings.beam_size;
    return std::unique_ptr<MarianEngine>(new MarianEngine(std::move(config), std::move(text.tokenizer),
                                                          std::move(text.target_vocab), std::move(model),
                                                          std::move(settings), options.tokens, budget));
}

std::vector<int32_t> MarianEngine::encode(std::string_view sentence) const { return tokenizer_.encode(sentence); }

int32_t MarianEngine::eos_id() const { return config_.eos_token_id; }

int MarianEngine::max_source_tokens() const { return config_.max_position_embeddings; }

std::unique_ptr<TranslationSession> MarianEngine::new_session(int threads) const {
    if (threads > 0) set_num_threads(threads);
    return std::make_unique<Session>(*this);
}

}  // namespace tolk
