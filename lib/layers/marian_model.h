// MarianModel: the MarianMT encoder-decoder, built once from a config and its weights (prepacked for oneDNN,
// immutable, shared by all threads). MarianSession: one thread's decoding state over a model (oneDNN stream,
// K/V caches, scratch); it is the StepModel the searches drive.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <vector>

#include "core/tensor.h"
#include "decode/step_model.h"
#include "dnnl/context.h"
#include "dnnl/linear.h"
#include "layers/decoder_layer.h"
#include "layers/embeddings.h"
#include "layers/encoder_layer.h"
#include "layers/workspace.h"
#include "model/config.h"
#include "model/weights.h"

namespace tolk {

class MarianModel {
public:
    // `compute`: the precision of the projections and the vocabulary projection (see ComputeType); the weights
    // are converted and packed here, once.
    MarianModel(const ModelConfig& config, const WeightStore& weights, ComputeType compute = ComputeType::float32);
    // Reads config.json (+ generation_config.json) and model.safetensors from a Hugging Face MarianMT directory.
    static std::unique_ptr<MarianModel> load(const std::filesystem::path& dir,
                                             ComputeType compute = ComputeType::float32);

    MarianModel(const MarianModel&) = delete;
    MarianModel& operator=(const MarianModel&) = delete;

    const ModelConfig& config() const { return config_; }
    ComputeType compute_type() const { return compute_; }
    // Bytes of weights held in their compute layout (packed matrices, embedding tables, norms excluded).
    std::size_t packed_bytes() const;
    int64_t d_model() const { return config_.d_model; }
    int64_t source_vocab_size() const { return encoder_embed_.vocab_size(); }
    int64_t target_vocab_size() const { return lm_head_.out_features(); }
    int64_t max_positions() const { return config_.max_position_embeddings; }

    const Embeddings& encoder_embeddings() const { return encoder_embed_; }
    const Embeddings& decoder_embeddings() const { return decoder_embed_; }
    const std::vector<EncoderLayer>& encoder_layers() const { return encoder_layers_; }
    const std::vector<DecoderLayer>& decoder_layers() const { return decoder_layers_; }
    // logits = h * lm_head.weight^T + final_logits_bias; lm_head.weight is the decoder embedding when tied.
    const Linear& lm_head() const { return lm_head_; }

private:
    ModelConfig config_;
    ComputeType compute_ = ComputeType::float32;
    Embeddings encoder_embed_;  // model.encoder.embed_tokens (= model.shared when shared)
    Embeddings decoder_embed_;  // model.decoder.embed_tokens
    std::vector<EncoderLayer> encoder_layers_;
    std::vector<DecoderLayer> decoder_layers_;
    Linear lm_head_;
};

// Thrown by MarianSession::step when its self-attention caches would outgrow the position budget while more than
// one sentence is decoding: the caller splits the batch and runs the halves (see set_position_budget).
class DecoderBudgetExceeded : public Error {
public:
    using Error::Error;
};

// Not thread-safe: one session per thread; many sessions may share one model.
class MarianSession : public StepModel {
public:
    explicit MarianSession(const MarianModel& model);

    // StepModel. Source ids must be in [0, source vocab) and at most max_position_embeddings long; shorter
    // sentences are right-padded with the pad id and masked.
    void start(const std::vector<std::vector<int32_t>>& src_ids, int beam) override;
    const float* step(std::span<const int32_t> tokens) override;  // logits [rows, vocab_size]
    void reorder(std::span<const int32_t> src_rows) override;
    int vocab_size() const override { return static_cast<int>(model_.target_vocab_size()); }

    // Teacher-forced passes for tests and scoring. Both end any decoding in progress (start() again to step).
    // [batch, src_len, d_model] (src_len: the longest sentence; padded rows are unspecified).
    Tensor encode(const std::vector<std::vector<int32_t>>& src_ids);
    // [batch, tgt_len, vocab_size] with a causal mask; a shorter target is right-padded with the pad id (its
    // logits past its length are unspecified; causality keeps the earlier ones exact).
    Tensor forward_logits(const std::vector<std::vector<int32_t>>& src_ids,
                          const std::vector<std::vector<int32_t>>& tgt_input_ids);

    // The most rows x positions the self-attention caches may hold while several sentences decode (0: no limit).
    // Source length bounds a batch's encoder, not its output: junk input makes short batches whose every row
    // runs to the length limit, and 128 rows x 512 positions x 4 caches of d_model floats are 268 MB per worker
    // (en-de). Past the budget step() throws DecoderBudgetExceeded instead of growing; one sentence (its beams)
    // always gets the room it needs.
    void set_position_budget(int64_t rows_x_positions) { position_budget_ = rows_x_positions; }

    int64_t rows() const { return rows_; }          // live decoder rows
    int64_t position() const { return position_; }  // the position the next step() decodes
    const MarianModel& model() const { return model_; }
    DnnlContext& dnnl_context() { return ctx_; }

private:
    // Per decoder layer: self-attention cache [cache rows, capacity_, d_model] (read through slots_) and
    // cross-attention keys and values [groups_, src_len_, d_model].
    struct LayerState {
        Tensor self_k, self_v;
        Tensor cross_k, cross_v;
    };

    // x_ <- [batch, src_len_, d_model] (src_len_: the longest sentence's length).
    void run_encoder(const std::vector<std::vector<int32_t>>& src_ids);
    void project_cross(int64_t batch);  // cross K/V of every decoder layer from the encoder output in x_
    void continue_rows(std::span<const int32_t> src_rows);  // row i continues old row src_rows[i]
    void reserve_positions(int64_t needed);
    CrossAttentionMemory cross_memory(const LayerState& layer) const;

    const MarianModel& model_;
    DnnlContext ctx_;
    Workspace ws_;
    Tensor x_;          // [rows, d_model] hidden states of the stack being run
    Tensor logits_;     // [rows, vocab_size]
    Tensor self_mask_;  // [batch, tgt_len, tgt_len] causal, for forward_logits
    Tensor src_mask_;   // [groups, src_len]: 0 on tokens, mask_value on padding
    Tensor src_mask_spare_;
    std::vector<LayerState> layers_;
    std::vector<LayerState> spare_;  // reorder's scratch: gathered cross-attention entries

    int64_t rows_ = 0;       // live decoder rows (0: not decoding)
    int64_t groups_ = 0;     // cross-attention groups; row r reads group r / (rows_ / groups_)
    int64_t src_len_ = 0;    // padded source length
    int64_t position_ = 0;   // next decoder position: positions [0, position_) of every cache row are written
    int64_t capacity_ = 0;   // positions the self-attention caches hold per row
    int64_t position_budget_ = 0;  // see set_position_budget
    std::vector<int32_t> row_group_;    // reorder scratch: old group of each new row
    std::vector<int32_t> group_order_;  // reorder scratch: old group of each new group
    // [rows, capacity_]: row r's keys and values at position p (< position_) are in cache row
    // slots_[r * capacity_ + p]. Beams that share a past share its cache rows; a step writes row r's position into
    // cache row r, which no row has written at that position before.
    std::vector<int32_t> slots_;
    std::vector<int32_t> slots_spare_;
};

}  // namespace tolk
