// Decoding options as the user gives them (DecodeOptions), the resolved per-run search settings (SearchSettings),
// and the result type (Hypothesis).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace tolk {

// What the caller asks for; zero / unset fields fall back to the model's generation config.
struct DecodeOptions {
    int beam_size = 0;                            // 0: the model's num_beams
    int max_new_tokens = 0;                       // 0: limited only by max_length (or the config's max_new_tokens)
    int max_length = 0;                           // 0: the model's max_length (counts the start token)
    int nbest = 1;                                // hypotheses returned per sentence (<= beam size)
    std::optional<double> length_penalty;         // unset: the model's generation config value (1.0 by default)
    std::optional<bool> early_stopping;           // unset: the model's generation config value (false by default)
};

// A generated target sequence: tokens without the decoder start token, ending with </s> when it ended.
// score: the sum of the tokens' log-probabilities / (ids.size())^length_penalty, for greedy and beam search alike.
struct Hypothesis {
    std::vector<int32_t> ids;
    float score = 0.0f;
};

// Everything a search needs, resolved from ModelConfig + DecodeOptions (see resolve_settings in generate.h).
// Tests with fake models fill it directly.
struct SearchSettings {
    int32_t decoder_start_token_id = 0;           // the first decoder input (Marian: the pad id)
    int32_t eos_token_id = 0;                     // </s>: ends a hypothesis
    int32_t forced_eos_token_id = -1;             // forced at the last allowed step; -1: none
    std::vector<int32_t> banned_token_ids;        // one-token bad_words_ids (Marian: the pad id): banned at every step
    std::vector<std::vector<int32_t>> banned_sequences;  // longer bad_words_ids: last token banned after the rest
    int beam_size = 1;                            // 1: greedy search
    int nbest = 1;                                // hypotheses returned per sentence (<= beam_size)
    int max_new_tokens = 0;                       // most generated tokens per sentence (> 0)
    double length_penalty = 1.0;                  // exponent on the hypothesis length in the score
    bool early_stopping = false;                  // true: a sentence is done once beam_size hypotheses finished
    // false: BeamSearchScorer's rule (beam_search.py, what scripts/tolkpy's reference follows): the best of the
    // 2*beam candidates, finished or not, bounds what the running beams can still reach. true: the rule of the
    // vectorised _beam_search that replaced the scorer (transformers PR #35802): the best running beam after the step.
    bool stop_on_best_running = false;
};

}  // namespace tolk
