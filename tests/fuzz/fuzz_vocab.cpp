// libFuzzer target: vocab.json / target_vocab.json parsing (piece -> id object, duplicates, special tokens).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "text/vocab.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        const tolk::Vocab v = tolk::Vocab::parse(std::string_view(reinterpret_cast<const char*>(data), size), "vocab.json");
        // Every special id resolves to a piece, and ids stay inside the table.
        if (!v.piece(v.eos_id()) || !v.piece(v.unk_id()) || !v.piece(v.pad_id())) __builtin_trap();
        if (v.piece(v.max_id() + 1) != nullptr) __builtin_trap();
    } catch (const tolk::Error&) {
    }
    return 0;
}
