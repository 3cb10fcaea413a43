// Vocab: loading and validating vocab.json / target_vocab.json.
#include "text/vocab.h"

#include "core/error.h"
#include "model/json_file.h"

namespace tolk {

Vocab Vocab::load(const std::filesystem::path& path) {
    const std::string file = path.string();
    // ordered_json keeps the file order, so duplicate ids resolve like Python's {v: k for k, v in items()}.
    const nlohmann::ordered_json j = read_ordered_json_file(path);
    TOLK_CHECK(j.is_object(), file, ": expected a JSON object of piece -> id, got ", json_excerpt(j));

    // Ids index tables below, so a single absurd id must not allocate gigabytes.
    constexpr int64_t kMaxId = 1 << 24;
    Vocab v;
    v.path_ = path;
    for (const auto& [piece, value] : j.items()) {
        TOLK_CHECK(value.is_number_integer(), file, ": id of piece '", piece, "' must be an integer, got ",
                   json_excerpt(value));
        const int64_t id = value.get<int64_t>();
        TOLK_CHECK(id >= 0 && id < kMaxId, file, ": id of piece '", piece, "' is out of range: ", id);
        v.ids_[piece] = static_cast<int32_t>(id);
        if (id >= static_cast<int64_t>(v.pieces_.size())) {
            v.pieces_.resize(id + 1);
            v.has_piece_.resize(id + 1, false);
        }
        v.pieces_[id] = piece;
        v.has_piece_[id] = true;
    }
    auto special = [&](const char* piece) {
        auto id = v.find(piece);
        TOLK_CHECK(id, file, ": missing the special token ", piece);
        return *id;
    };
    v.eos_id_ = special("</s>");
    v.unk_id_ = special("<unk>");
    v.pad_id_ = special("<pad>");
    return v;
}

std::optional<int32_t> Vocab::find(std::string_view piece) const {
    auto it = ids_.find(std::string(piece));
    if (it == ids_.end()) return std::nullopt;
    return it->second;
}

const std::string* Vocab::piece(int32_t id) const {
    if (id < 0 || id >= static_cast<int32_t>(pieces_.size()) || !has_piece_[id]) return nullptr;
    return &pieces_[id];
}

}  // namespace tolk
