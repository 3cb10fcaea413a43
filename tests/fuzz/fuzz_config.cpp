// libFuzzer target: config.json, generation_config.json and tokenizer_config.json (the input holds up to three
// documents separated by NUL bytes) through parse_config and parse_tokenizer_config.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"
#include "model/config.h"
#include "text/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view all(reinterpret_cast<const char*>(data), size);
    std::string_view parts[3];
    std::size_t n = 0, start = 0;
    while (n < 3) {
        const std::size_t end = n < 2 ? all.find('\0', start) : std::string_view::npos;
        parts[n++] = all.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
        if (end == std::string_view::npos) break;
        start = end + 1;
    }
    const std::optional<std::string> gen = n > 1 ? std::optional<std::string>(std::string(parts[1])) : std::nullopt;
    const std::optional<std::string> tok = n > 2 ? std::optional<std::string>(std::string(parts[2])) : std::nullopt;
    try {
        const tolk::ModelConfig cfg = tolk::parse_config("fuzz", parts[0], gen, tok);
        // Accepted configs are inside the documented bounds.
        if (cfg.encoder_layers > tolk::kMaxLayers || cfg.decoder_layers > tolk::kMaxLayers ||
            cfg.max_position_embeddings > tolk::kMaxPositions || cfg.num_beams > tolk::kMaxBeam || cfg.d_model <= 0)
            __builtin_trap();
        (void)cfg.to_json();
    } catch (const tolk::Error&) {
    }
    try {
        (void)tolk::parse_tokenizer_config(n > 2 ? parts[2] : parts[0], "tokenizer_config.json");
    } catch (const tolk::Error&) {
    }
    return 0;
}
