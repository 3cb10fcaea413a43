// generate(): greedy search, beam search and n-best lists over a StepModel, with the semantics of Hugging Face
// transformers' generate() for Marian models (see generate.cpp for the rules followed, version by version).
#pragma once

#include <cstdint>
#include <vector>

#include "decode/options.h"
#include "decode/step_model.h"
#include "model/config.h"

namespace tolk {

// Resolves the search settings from the model's config and generation defaults and the caller's options:
// beam size (options, else num_beams), the generated-token limit (options.max_new_tokens, else options.max_length - 1,
// else the config's max_new_tokens, else its max_length - 1, in every case at most max_position_embeddings), length
// penalty, early stopping, start / end / forced end tokens and bad_words_ids. Throws tolk::Error naming a bad option.
SearchSettings resolve_settings(const ModelConfig& config, const DecodeOptions& options);

// Runs the search for every source sentence (each ends with </s>) in one batch and returns, per sentence, up to
// settings.nbest hypotheses, best first. Each sentence gets exactly the result it would get alone: sentences that
// finish leave the batch (StepModel::reorder drops their rows), so work shrinks as they finish.
std::vector<std::vector<Hypothesis>> search(StepModel& model, const SearchSettings& settings,
                                            const std::vector<std::vector<int32_t>>& src_ids);

// resolve_settings + search.
std::vector<std::vector<Hypothesis>> generate(StepModel& model, const ModelConfig& config,
                                              const std::vector<std::vector<int32_t>>& src_ids,
                                              const DecodeOptions& options);

}  // namespace tolk
