// libFuzzer target: the safetensors header checks (length, JSON, dtypes, shapes, offsets, overlaps) on any bytes.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "core/error.h"
#include "model/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::map<std::string, tolk::TensorInfo> infos;
    std::map<std::string, std::string> metadata;
    try {
        const std::size_t data_start = tolk::parse_safetensors_header(data, size, "fuzz.safetensors", infos, metadata);
        // What the header promises must lie inside the input.
        for (const auto& [name, info] : infos)
            if (info.end > size - data_start || info.begin > info.end) __builtin_trap();
    } catch (const tolk::Error&) {
    }
    return 0;
}
