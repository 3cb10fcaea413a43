// Vocab: loading and validating vocab.json / target_vocab.json.
#include "text/vocab.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/json_file.h"

namespace tolk {

namespace {

// Ids index tables below, so a single absurd id must not allocate gigabytes.
constexpr int64_t kMaxId = int64_t{1} << 24;

// A SAX reader for a flat {"piece": id, ...} object, linear in the file size (a DOM with ordered keys would look
// up each key by a linear scan). Pieces are kept in order of first appearance with their last id, which is what
// Python's json.load followed by MarianTokenizer's {v: k for k, v in encoder.items()} sees.
class VocabSax {
public:
    explicit VocabSax(const std::string& file) : file_(file) {}

    std::vector<std::string> order;                      // pieces by first appearance
    std::unordered_map<std::string, int32_t> ids;        // piece -> last id

    bool start_object(std::size_t) {
        TOLK_CHECK(depth_ == 0, file_, ": id of piece '", key_, "' must be an integer, got an object");
        ++depth_;
        return true;
    }
    bool end_object() {
        --depth_;
        return true;
    }
    bool key(std::string& k) {
        key_ = k;
        return true;
    }
    bool number_integer(int64_t v) { return id(v); }
    bool number_unsigned(uint64_t v) {
        TOLK_CHECK(v < static_cast<uint64_t>(kMaxId), file_, ": id of piece '", key_, "' is out of range: ", v);
        return id(static_cast<int64_t>(v));
    }
    bool number_float(double, const std::string& text) { return bad(text); }
    bool null() { return bad("null"); }
    bool boolean(bool v) { return bad(v ? "true" : "false"); }
    bool string(std::string& v) { return bad(std::string(1, '"').append(v, 0, 40).append(1, '"')); }
    bool binary(nlohmann::json::binary_t&) { return bad("binary data"); }
    bool start_array(std::size_t) { return bad("an array"); }
    bool end_array() { return true; }
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) {
        std::string where;
        if (depth_ > 0 && !key_.empty()) where.append(" (at piece '").append(key_, 0, 60).append("')");
        TOLK_FAIL(file_, ": invalid JSON: ", parse_error_text(e), where);
    }

private:
    bool id(int64_t v) {
        TOLK_CHECK(depth_ == 1, file_, ": expected a JSON object of piece -> id, got ", v);
        TOLK_CHECK(v >= 0 && v < kMaxId, file_, ": id of piece '", key_, "' is out of range: ", v);
        auto [it, fresh] = ids.try_emplace(key_, static_cast<int32_t>(v));
        if (fresh) order.push_back(key_);
        else it->second = static_cast<int32_t>(v);
        return true;
    }
    bool bad(const std::string& what) {
        if (depth_ == 0) TOLK_FAIL(file_, ": expected a JSON object of piece -> id, got ", what);
        TOLK_FAIL(file_, ": id of piece '", key_, "' must be an integer, got ", what);
    }

    const std::string& file_;
    int depth_ = 0;
    std::string key_;
};

}  // namespace

Vocab Vocab::load(const std::filesystem::path& path) {
    TOLK_CHECK(entry_exists(path), path.string(), ": not found");
    return parse(read_regular_file(path, kMaxVocabJsonBytes), path);
}

Vocab Vocab::parse(std::string_view text, const std::filesystem::path& path) {
    const std::string file = path.string();
    VocabSax sax(file);
    try {
        nlohmann::json::sax_parse(text.begin(), text.end(), &sax, nlohmann::detail::input_format_t::json,
                                  /*strict=*/true);
    } catch (const nlohmann::json::exception& e) {
        TOLK_FAIL(file, ": invalid JSON: ", parse_error_text(e));
    }

    Vocab v;
    v.path_ = path;
    int32_t max_id = -1;
    for (const auto& [piece, id] : sax.ids) max_id = std::max(max_id, id);
    v.pieces_.resize(static_cast<std::size_t>(max_id + 1));
    v.has_piece_.resize(static_cast<std::size_t>(max_id + 1), false);
    for (const std::string& piece : sax.order) {
        const int32_t id = sax.ids.at(piece);
        v.pieces_[id] = piece;  // with duplicate ids the later piece wins
        v.has_piece_[id] = true;
    }
    v.ids_ = std::move(sax.ids);
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
