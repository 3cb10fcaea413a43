// MarianModel: builds the embeddings, the encoder and decoder stacks and the output projection from the weight
// store, once.
#include "layers/marian_model.h"

#include <bit>
#include <cmath>
#include <cstdint>
#include <string>

#include "layers/positions.h"

namespace tolk {

MarianModel::MarianModel(const ModelConfig& config, const WeightStore& weights, ComputeType compute)
    : config_(config), compute_(compute) {
    std::string unsupported;
    TOLK_CHECK(compute_type_supported(compute, &unsupported), "compute type ", compute_type_name(compute), ": ",
               unsupported);
    const MatmulType projections = projection_matmul_type(compute);
    TOLK_CHECK(config.d_model > 0 && config.max_position_embeddings > 0, config.dir.string(),
               ": d_model and max_position_embeddings must be positive");
    // Positions are not stored in Marian checkpoints: both stacks use the same fixed table.
    auto positions = std::make_shared<const Tensor>(
        sinusoidal_positions(config.max_position_embeddings, config.d_model));  // [max_positions, d_model]
    // transformers multiplies the float embeddings by math.sqrt(d_model), a scalar applied in float.
    const float scale = config.scale_embedding ? static_cast<float>(std::sqrt(static_cast<double>(config.d_model)))
                                               : 1.0f;
    const std::string encoder_name = "model.encoder.embed_tokens.weight";
    const std::string decoder_name = "model.decoder.embed_tokens.weight";
    // The output projection first: when it is tied to an embedding table (tie_word_embeddings), it is packed
    // from the same f32 tensor the table is then built from, instead of a second f32 copy of the vocabulary
    // converted while the first is still held (measured: the load's peak memory, 8 MB above what the model keeps
    // for models/en-de).
    const std::string lm_head_name = "lm_head.weight";
    // Marian always adds final_logits_bias (zeros in most checkpoints, but not all).
    const Tensor logits_bias = weights.load("final_logits_bias");  // [1, decoder_vocab_size]
    const auto make_lm_head = [&](const Tensor& weight) {  // [decoder_vocab_size, d_model]
        lm_head_ = Linear(weight, &logits_bias, Activation::none, "lm_head", vocabulary_matmul_type(compute),
                          weights.arena());
    };
    const auto load_table = [&](const std::string& name) {
        Tensor table = weights.load(name);  // [vocab_size, d_model]
        if (weights.stored_name(name) == weights.stored_name(lm_head_name)) {
            make_lm_head(table);
            // In f32 the table's rows are read from the packed projection (8 MB less for models/en-de), once
            // every element has been found there unchanged.
            if (projections == MatmulType::f32 && lm_head_.type() == MatmulType::f32) {
                Linear::PackedRows rows = lm_head_.packed_rows();
                const int64_t vocab_size = table.dim(0), d_model = table.dim(1);
                bool same = rows.data != nullptr && static_cast<int64_t>(rows.row_offset.size()) == vocab_size &&
                            static_cast<int64_t>(rows.column_offset.size()) == d_model;
                const float* plain = table.f32();
                const int64_t* columns = rows.column_offset.data();
                for (int64_t n = 0; same && n < vocab_size; ++n) {
                    const float* packed = rows.data + rows.row_offset[static_cast<std::size_t>(n)];
                    const float* row = plain + n * d_model;
                    uint32_t differ = 0;  // bitwise, so that -0.0 and NaN payloads count as changes
                    for (int64_t k = 0; k < d_model; ++k)
                        differ |= std::bit_cast<uint32_t>(packed[columns[k]]) ^ std::bit_cast<uint32_t>(row[k]);
                    same = differ == 0;
                }
                if (same) return std::make_shared<const EmbeddingTable>(std::move(rows), table.dim(0), table.dim(1));
            }
        }
        // The table in the compute precision of the projections (int8 models keep s8 rows).
        return std::make_shared<const EmbeddingTable>(std::move(table), projections);
    };
    auto encoder_table = load_table(encoder_name);
    // Tied tables (a joint vocabulary) are kept once.
    std::shared_ptr<const EmbeddingTable> decoder_table =
        weights.stored_name(encoder_name) == weights.stored_name(decoder_name) ? encoder_table
                                                                             : load_table(decoder_name);
    if (weights.stored_name(lm_head_name) != weights.stored_name(encoder_name) &&
        weights.stored_name(lm_head_name) != weights.stored_name(decoder_name))
        make_lm_head(weights.load(lm_head_name));
    encoder_embed_ = Embeddings(encoder_table, positions, scale, encoder_name);
    decoder_embed_ = Embeddings(decoder_table, positions, scale, decoder_name);

    encoder_layers_.reserve(static_cast<std::size_t>(config.encoder_layers));
    for (int i = 0; i < config.encoder_layers; ++i) encoder_layers_.emplace_back(weights, config, i, projections);
    decoder_layers_.reserve(static_cast<std::size_t>(config.decoder_layers));
    for (int i = 0; i < config.decoder_layers; ++i) decoder_layers_.emplace_back(weights, config, i, projections);
}

std::unique_ptr<MarianModel> MarianModel::load(const std::filesystem::path& dir, ComputeType compute) {
    const ModelConfig config = load_config(dir);
    const WeightStore weights = WeightStore::open(dir, config);
    return std::make_unique<MarianModel>(config, weights, compute);
}

std::size_t MarianModel::packed_bytes() const {
    std::size_t bytes = lm_head_.packed_bytes();
    const auto attention = [](const MultiHeadAttention& a) {
        return a.q_proj.packed_bytes() + a.k_proj.packed_bytes() + a.v_proj.packed_bytes() + a.out_proj.packed_bytes();
    };
    for (const EncoderLayer& l : encoder_layers_)
        bytes += attention(l.self_attn) + l.ffn.fc1.packed_bytes() + l.ffn.fc2.packed_bytes();
    for (const DecoderLayer& l : decoder_layers_)
        bytes += attention(l.self_attn) + attention(l.encoder_attn) + l.ffn.fc1.packed_bytes() + l.ffn.fc2.packed_bytes();
    return bytes;
}

}  // namespace tolk
