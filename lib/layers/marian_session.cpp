// MarianSession: encoder pass, cross-attention memory per source sentence, cached step-by-step decoding with
// row reordering for beams, and the teacher-forced passes used by tests.
#include <algorithm>
#include <cstring>

#include "core/attention_ops.h"
#include "layers/marian_model.h"

namespace tolk {

namespace {

// The self-attention caches grow in blocks of this many positions.
constexpr int64_t position_block = 16;

int64_t round_up(int64_t x, int64_t multiple) { return (x + multiple - 1) / multiple * multiple; }

void copy_floats(float* dst, const float* src, int64_t n) {
    std::memcpy(dst, src, static_cast<std::size_t>(n) * sizeof(float));
}

// Element i of a vector or span indexed with the signed sizes used everywhere else.
template <typename Seq>
auto at(const Seq& seq, int64_t i) {
    return seq[static_cast<std::size_t>(i)];
}

}  // namespace

MarianSession::MarianSession(const MarianModel& model)
    : model_(model), layers_(model.decoder_layers().size()), spare_(model.decoder_layers().size()) {}

void MarianSession::run_encoder(const std::vector<std::vector<int32_t>>& src_ids) {
    rows_ = 0;  // the encoder's buffers are the decoder's: any decoding in progress ends here
    TOLK_CHECK(!src_ids.empty(), "encoder: empty batch of source sentences");
    const int64_t batch = static_cast<int64_t>(src_ids.size());
    int64_t src_len = 0;
    for (std::size_t b = 0; b < src_ids.size(); ++b) {
        const int64_t len = static_cast<int64_t>(src_ids[b].size());
        TOLK_CHECK(len > 0, "encoder: source sentence ", b, " has no tokens (it should at least hold </s>)");
        TOLK_CHECK(len <= model_.max_positions(), "encoder: source sentence ", b, " has ", len,
                   " tokens, more than max_position_embeddings (", model_.max_positions(), ")");
        src_len = std::max(src_len, len);
    }
    const int64_t d_model = model_.d_model();
    const Embeddings& embed = model_.encoder_embeddings();
    // Padding positions never reach a real token (their keys are masked), so any valid id serves for them.
    const int32_t pad_id = model_.config().pad_token_id;
    const int32_t filler = pad_id >= 0 && pad_id < embed.vocab_size() ? pad_id : 0;
    x_.resize({batch * src_len, d_model});  // [batch, src_len, d_model]
    src_mask_.resize({batch, src_len});     // [batch, src_len]
    for (int64_t b = 0; b < batch; ++b) {
        const std::vector<int32_t>& ids = src_ids[static_cast<std::size_t>(b)];
        const int64_t len = static_cast<int64_t>(ids.size());
        for (int64_t t = 0; t < src_len; ++t) {
            const bool token = t < len;
            embed.embed(token ? ids[static_cast<std::size_t>(t)] : filler, t, x_.f32() + (b * src_len + t) * d_model);
            src_mask_.f32()[b * src_len + t] = token ? 0.0f : mask_value;
        }
    }
    for (const EncoderLayer& layer : model_.encoder_layers())
        layer.forward(ctx_, x_.f32(), batch, src_len, src_mask_.f32(), ws_);
    src_len_ = src_len;
}

void MarianSession::project_cross(int64_t batch) {
    const int64_t d_model = model_.d_model();
    const auto& decoder = model_.decoder_layers();
    for (std::size_t l = 0; l < decoder.size(); ++l) {
        LayerState& state = layers_[l];
        state.cross_k.resize({batch, src_len_, d_model});  // [batch, src_len, d_model]
        state.cross_v.resize({batch, src_len_, d_model});
        decoder[l].project_memory(ctx_, x_.f32(), batch * src_len_, state.cross_k.f32(), state.cross_v.f32());
    }
    groups_ = batch;
}

CrossAttentionMemory MarianSession::cross_memory(const LayerState& layer) const {
    return {layer.cross_k.f32(), layer.cross_v.f32(), groups_, src_len_, src_mask_.f32()};
}

void MarianSession::start(const std::vector<std::vector<int32_t>>& src_ids, int beam) {
    TOLK_CHECK(beam >= 1, "decoder: beam must be at least 1, got ", beam);
    run_encoder(src_ids);
    const int64_t batch = static_cast<int64_t>(src_ids.size());
    project_cross(batch);
    // Room for the source length and a little more to start with (translations are about as long as their
    // source); a longer output grows it by half (reserve_positions). The caches are the largest buffers of a
    // session ([rows, capacity, d_model] twice per layer), so twice the source length, as before, doubled a
    // worker's memory on long news sentences for positions most rows never reach.
    capacity_ = std::min(round_up(std::max<int64_t>(src_len_ + 8, 32), position_block),
                         round_up(model_.max_positions(), position_block));
    const int64_t d_model = model_.d_model();
    rows_ = batch * beam;
    for (LayerState& state : layers_) {
        state.self_k.resize({rows_, capacity_, d_model});  // [cache rows, capacity, d_model]
        state.self_v.resize({rows_, capacity_, d_model});
    }
    slots_.resize(static_cast<std::size_t>(rows_ * capacity_));  // [rows, capacity]
    position_ = 0;
}

void MarianSession::reserve_positions(int64_t needed) {
    if (needed <= capacity_) return;
    const int64_t capacity = std::min(round_up(std::max(needed, capacity_ + capacity_ / 2), position_block),
                                      std::max(round_up(model_.max_positions(), position_block), needed));
    if (position_budget_ > 0 && groups_ > 1 && rows_ * capacity > position_budget_)
        throw DecoderBudgetExceeded("decoder: " + std::to_string(rows_) + " rows x " + std::to_string(capacity) +
                                    " positions would exceed the budget of " + std::to_string(position_budget_) +
                                    "; split the batch");
    const int64_t d_model = model_.d_model();
    const int64_t cache_rows = layers_.empty() ? 0 : layers_.front().self_k.dim(0);
    // Inside the buffer an earlier, wider batch left, every cache row moves to its wider place, the last row
    // first (each moves to a higher offset); the slots keep naming the same cache rows. Fresh memory costs a page
    // fault per 4 KiB on first touch (~12 us on a virtual machine, measured); reused memory costs nothing.
    bool in_place = true;
    for (const LayerState& state : layers_)
        in_place = in_place && state.self_k.fits({cache_rows, capacity, d_model}) &&
                   state.self_v.fits({cache_rows, capacity, d_model});
    for (LayerState& state : layers_) {
        for (Tensor* cache : {&state.self_k, &state.self_v}) {
            if (in_place) {
                float* base = cache->f32();
                for (int64_t r = cache_rows - 1; r > 0; --r)
                    std::memmove(base + r * capacity * d_model, base + r * capacity_ * d_model,
                                 static_cast<std::size_t>(position_ * d_model) * sizeof(float));
                cache->resize({cache_rows, capacity, d_model});  // [cache rows, capacity, d_model]
                continue;
            }
            // A new buffer holds only the live rows, each with its whole past gathered from wherever its slots
            // point (runs of positions that share a cache row are copied at once).
            Tensor grown;
            grown.resize({rows_, capacity, d_model});  // not zero-filled: a step reads only written positions
            for (int64_t r = 0; r < rows_; ++r) {
                const int32_t* slot = slots_.data() + r * capacity_;
                for (int64_t p = 0; p < position_;) {
                    int64_t end = p + 1;
                    while (end < position_ && slot[end] == slot[p]) ++end;
                    copy_floats(grown.f32() + (r * capacity + p) * d_model,
                                cache->f32() + (slot[p] * capacity_ + p) * d_model, (end - p) * d_model);
                    p = end;
                }
            }
            *cache = std::move(grown);
        }
    }
    // The slots at the new width: unchanged in place, each row its own cache row after gathering.
    slots_spare_.resize(static_cast<std::size_t>(rows_ * capacity));  // [rows, capacity]
    for (int64_t r = 0; r < rows_; ++r) {
        int32_t* to = slots_spare_.data() + r * capacity;
        if (in_place) {
            std::copy_n(slots_.data() + r * capacity_, position_, to);
        } else {
            std::fill_n(to, position_, static_cast<int32_t>(r));
        }
    }
    std::swap(slots_, slots_spare_);
    capacity_ = capacity;
}

const float* MarianSession::step(std::span<const int32_t> tokens) {
    TOLK_CHECK(rows_ > 0, "decoder: step() needs start() first (or every row was dropped)");
    TOLK_CHECK(static_cast<int64_t>(tokens.size()) == rows_, "decoder: step() got ", tokens.size(),
               " tokens for ", rows_, " live rows");
    TOLK_CHECK(position_ < model_.max_positions(), "decoder: position ", position_,
               " is past max_position_embeddings (", model_.max_positions(), ")");
    const int64_t d_model = model_.d_model();
    reserve_positions(position_ + 1);

    x_.resize({rows_, d_model});  // [rows, d_model]
    const Embeddings& embed = model_.decoder_embeddings();
    for (int64_t r = 0; r < rows_; ++r) embed.embed(at(tokens, r), position_, x_.f32() + r * d_model);

    // Each row writes this position's keys and values into its own cache row.
    for (int64_t r = 0; r < rows_; ++r)
        slots_[static_cast<std::size_t>(r * capacity_ + position_)] = static_cast<int32_t>(r);

    const auto& decoder = model_.decoder_layers();
    for (std::size_t l = 0; l < decoder.size(); ++l) {
        LayerState& state = layers_[l];
        const SelfAttentionCache cache{state.self_k.f32(), state.self_v.f32(), capacity_, position_, slots_.data()};
        decoder[l].forward_step(ctx_, x_.f32(), rows_, cache, cross_memory(state), ws_);
    }
    logits_.resize({rows_, model_.target_vocab_size()});  // [rows, vocab_size]
    model_.lm_head().forward(ctx_, x_.f32(), logits_.f32(), rows_);
    ++position_;
    return logits_.f32();
}

void MarianSession::continue_rows(std::span<const int32_t> src_rows) {
    const int64_t n = static_cast<int64_t>(src_rows.size());
    const int64_t d_model = model_.d_model();
    // Row i writes its next positions into cache row i, so there must be n cache rows. The old ones keep their
    // contents (any of them may be a slot of a new row's past).
    const int64_t cache_rows = layers_.empty() ? n : layers_.front().self_k.dim(0);
    if (n > cache_rows) {
        const Shape shape{n, capacity_, d_model};  // [cache rows, capacity, d_model]
        for (LayerState& state : layers_) {
            for (Tensor* cache : {&state.self_k, &state.self_v}) {
                if (cache->fits(shape)) {  // same row stride: the new rows simply follow
                    cache->resize(shape);
                    continue;
                }
                Tensor grown;
                grown.resize(shape);
                for (int64_t r = 0; r < cache_rows; ++r)
                    copy_floats(grown.f32() + r * capacity_ * d_model, cache->f32() + r * capacity_ * d_model,
                                position_ * d_model);
                *cache = std::move(grown);
            }
        }
    }
    // New row i has the past of old row src_rows[i]: the same cache rows, named by its slots. Only these indices
    // move; the keys and values stay where they were written (beam search used to copy every moved row's whole
    // past, each step: memory copies were 11% of a one-worker profile of int8 beam 4 over newstest2014).
    slots_spare_.resize(static_cast<std::size_t>(n * capacity_));  // [rows, capacity]
    for (int64_t i = 0; i < n; ++i)
        std::copy_n(slots_.data() + at(src_rows, i) * capacity_, position_, slots_spare_.data() + i * capacity_);
    std::swap(slots_, slots_spare_);
}

void MarianSession::reorder(std::span<const int32_t> src_rows) {
    TOLK_CHECK(rows_ > 0, "decoder: reorder() needs start() first (or every row was dropped)");
    const int64_t n = static_cast<int64_t>(src_rows.size());
    bool identity = n <= rows_;
    for (int64_t i = 0; i < n; ++i) {
        const int32_t r = at(src_rows, i);
        TOLK_CHECK(r >= 0 && r < rows_, "decoder: reorder() names row ", r, ", but there are ", rows_, " live rows");
        identity = identity && r == i;
    }
    if (n == 0) {
        rows_ = 0;
        return;
    }
    const int64_t d_model = model_.d_model();

    if (!identity) continue_rows(src_rows);

    // Cross-attention: keep one entry per group of consecutive rows that read the same sentence (the usual case:
    // a sentence's beams stay together, finished sentences drop out whole); when the rows do not form equal
    // groups, every row gets its own entry.
    const int64_t per_group = rows_ / groups_;
    row_group_.resize(static_cast<std::size_t>(n));
    for (int64_t i = 0; i < n; ++i)
        row_group_[static_cast<std::size_t>(i)] = static_cast<int32_t>(at(src_rows, i) / per_group);
    group_order_.clear();
    int64_t run_length = 0;
    bool equal_runs = true;
    for (int64_t i = 0; i < n;) {
        int64_t j = i;
        while (j < n && at(row_group_, j) == at(row_group_, i)) ++j;
        if (run_length == 0) run_length = j - i;
        equal_runs = equal_runs && j - i == run_length;
        group_order_.push_back(at(row_group_, i));
        i = j;
    }
    if (!equal_runs) group_order_.assign(row_group_.begin(), row_group_.end());
    const int64_t groups = static_cast<int64_t>(group_order_.size());
    bool same_groups = groups == groups_;
    for (int64_t g = 0; same_groups && g < groups; ++g) same_groups = at(group_order_, g) == g;
    if (!same_groups) {
        // Entry g becomes old entry group_order_[g]. Finished sentences leave the batch and the rest keep their
        // order (greedy and beam search both): then every entry moves to a lower or the same index and the move
        // is done in place; any other order goes through the spare buffers.
        bool ascending = true;
        for (int64_t g = 1; ascending && g < groups; ++g) ascending = at(group_order_, g) > at(group_order_, g - 1);
        const auto gather = [&](Tensor& from, Tensor& spare, int64_t block, const Shape& shape) {
            Tensor& to = ascending ? from : spare;
            if (!ascending) to.resize(shape);
            for (int64_t g = 0; g < groups; ++g)
                if (&to != &from || at(group_order_, g) != g)
                    copy_floats(to.f32() + g * block, from.f32() + at(group_order_, g) * block, block);
            if (ascending) {
                from.resize(shape);
            } else {
                std::swap(from, spare);
            }
        };
        for (std::size_t l = 0; l < layers_.size(); ++l) {
            LayerState& state = layers_[l];
            LayerState& spare = spare_[l];
            const Shape shape{groups, src_len_, d_model};  // [groups, src_len, d_model]
            gather(state.cross_k, spare.cross_k, src_len_ * d_model, shape);
            gather(state.cross_v, spare.cross_v, src_len_ * d_model, shape);
        }
        gather(src_mask_, src_mask_spare_, src_len_, Shape{groups, src_len_});  // [groups, src_len]
    }
    groups_ = groups;
    rows_ = n;
}

Tensor MarianSession::encode(const std::vector<std::vector<int32_t>>& src_ids) {
    run_encoder(src_ids);
    const int64_t batch = static_cast<int64_t>(src_ids.size()), d_model = model_.d_model();
    Tensor out({batch, src_len_, d_model});  // [batch, longest, d_model]
    copy_floats(out.f32(), x_.f32(), batch * src_len_ * d_model);
    return out;
}

Tensor MarianSession::forward_logits(const std::vector<std::vector<int32_t>>& src_ids,
                                     const std::vector<std::vector<int32_t>>& tgt_input_ids) {
    TOLK_CHECK(tgt_input_ids.size() == src_ids.size(), "forward_logits: ", src_ids.size(), " source sentences but ",
               tgt_input_ids.size(), " target sequences");
    run_encoder(src_ids);
    const int64_t batch = static_cast<int64_t>(src_ids.size());
    project_cross(batch);
    int64_t tgt_len = 0;
    for (std::size_t b = 0; b < tgt_input_ids.size(); ++b) {
        TOLK_CHECK(!tgt_input_ids[b].empty(), "forward_logits: target sequence ", b, " is empty");
        tgt_len = std::max(tgt_len, static_cast<int64_t>(tgt_input_ids[b].size()));
    }
    const int64_t d_model = model_.d_model();
    const Embeddings& embed = model_.decoder_embeddings();
    const int32_t pad_id = model_.config().pad_token_id;
    x_.resize({batch * tgt_len, d_model});  // [batch, tgt_len, d_model]
    for (int64_t b = 0; b < batch; ++b) {
        const std::vector<int32_t>& ids = tgt_input_ids[static_cast<std::size_t>(b)];
        for (int64_t t = 0; t < tgt_len; ++t)
            embed.embed(t < static_cast<int64_t>(ids.size()) ? ids[static_cast<std::size_t>(t)] : pad_id, t,
                        x_.f32() + (b * tgt_len + t) * d_model);
    }
    self_mask_.resize({batch, tgt_len, tgt_len});  // [batch, tgt_len, tgt_len]: causal
    for (int64_t b = 0; b < batch; ++b)
        for (int64_t t = 0; t < tgt_len; ++t)
            for (int64_t s = 0; s < tgt_len; ++s)
                self_mask_.f32()[(b * tgt_len + t) * tgt_len + s] = s <= t ? 0.0f : mask_value;
    const auto& decoder = model_.decoder_layers();
    for (std::size_t l = 0; l < decoder.size(); ++l)
        decoder[l].forward_full(ctx_, x_.f32(), batch, tgt_len, self_mask_.f32(), cross_memory(layers_[l]), ws_);
    Tensor logits({batch, tgt_len, model_.target_vocab_size()});  // [batch, tgt_len, vocab_size]
    model_.lm_head().forward(ctx_, x_.f32(), logits.f32(), batch * tgt_len);
    rows_ = 0;
    return logits;
}

}  // namespace tolk
