// Tokenizer: MarianTokenizer's encode (language tag, SentencePiece pieces, vocab.json ids, </s>) and
// decode (special tokens dropped, SentencePiece DecodePieces, "▁" -> space, strip, clean-up).
#include "text/tokenizer.h"

#include <sentencepiece_processor.h>

#include <set>

#include "core/error.h"
#include "model/json_file.h"
#include "text/vocab.h"

namespace tolk {
namespace {

const std::string kSpaceSymbol = "\xe2\x96\x81";  // U+2581, SentencePiece's word-boundary marker

// The serialized model, read here (regular file, size limit) rather than by SentencePiece, which would block on
// a FIFO.
std::string read_spm(const std::filesystem::path& path) {
    TOLK_CHECK(entry_exists(path), path.string(), ": not found");
    return read_regular_file(path, kMaxSpmBytes);
}

std::shared_ptr<sentencepiece::SentencePieceProcessor> parse_spm(const std::string& proto,
                                                                 const std::filesystem::path& path) {
    auto spm = std::make_shared<sentencepiece::SentencePieceProcessor>();
    const auto status = spm->LoadFromSerializedProto(proto);
    TOLK_CHECK(status.ok(), path.string(), ": cannot load the SentencePiece model: ", status.ToString());
    return spm;
}

// A special token in tokenizer_config.json is a string or an AddedToken object {"content": ...}.
std::optional<std::string> token_content(const nlohmann::json& v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
    return std::nullopt;
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
    // Left to right over the original text, like Python's str.replace: replaced text is not rescanned.
    std::string out;
    std::size_t start = 0, pos;
    while ((pos = s.find(from, start)) != std::string::npos) {
        out.append(s, start, pos - start).append(to);
        start = pos + from.size();
    }
    out.append(s, start);
    s = std::move(out);
}

// Length of the Python-whitespace character (str.isspace) at s[i] in UTF-8, or 0.
std::size_t space_len_at(std::string_view s, std::size_t i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f)) return 1;
    auto code_point = [&](std::size_t n) -> uint32_t {
        if (i + n > s.size()) return 0;
        uint32_t cp = c & (n == 2 ? 0x1f : 0x0f);
        for (std::size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3f);
        return cp;
    };
    if ((c & 0xe0) == 0xc0) {
        const uint32_t cp = code_point(2);
        return cp == 0x85 || cp == 0xa0 ? 2 : 0;
    }
    if ((c & 0xf0) == 0xe0) {
        const uint32_t cp = code_point(3);
        const bool space = cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 ||
                           cp == 0x202f || cp == 0x205f || cp == 0x3000;
        return space ? 3 : 0;
    }
    return 0;
}

// Python's str.strip() on UTF-8 text.
std::string strip(std::string_view s) {
    std::size_t begin = 0;
    while (begin < s.size()) {
        const std::size_t n = space_len_at(s, begin);
        if (!n) break;
        begin += n;
    }
    std::size_t end = s.size();
    while (end > begin) {
        // Step back to the start of the last UTF-8 character.
        std::size_t last = end - 1;
        while (last > begin && (static_cast<unsigned char>(s[last]) & 0xc0) == 0x80) --last;
        const std::size_t n = space_len_at(s, last);
        if (!n || last + n != end) break;
        end = last;
    }
    return std::string(s.substr(begin, end - begin));
}

}  // namespace

struct Tokenizer::Impl {
    std::shared_ptr<sentencepiece::SentencePieceProcessor> source_spm;
    std::shared_ptr<sentencepiece::SentencePieceProcessor> target_spm;  // the same object when both files hold one model
    Vocab source_vocab;
    std::optional<Vocab> target_vocab;  // only with separate_vocabs
    std::set<std::string> special_tokens;  // dropped when decoding
    bool clean_up = true;

    const Vocab& target() const { return target_vocab ? *target_vocab : source_vocab; }
};

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

Tokenizer Tokenizer::load(const std::filesystem::path& dir, const ModelConfig& cfg) {
    auto impl = std::make_unique<Impl>();
    const std::string source_proto = read_spm(dir / "source.spm");
    const std::string target_proto = read_spm(dir / "target.spm");
    impl->source_spm = parse_spm(source_proto, dir / "source.spm");
    // A joint vocabulary usually ships one SentencePiece model under both names: it is parsed once (each parse
    // builds the pieces' trie, part of every cold start).
    impl->target_spm = target_proto == source_proto ? impl->source_spm : parse_spm(target_proto, dir / "target.spm");
    impl->source_vocab = Vocab::load(dir / "vocab.json");
    if (cfg.separate_vocabs) impl->target_vocab = Vocab::load(dir / "target_vocab.json");

    // Ids index the embedding tables, so every vocab id must be a row of them.
    auto check_fits = [](const Vocab& v, int rows, const char* field) {
        TOLK_CHECK(v.max_id() < rows, v.path().string(), ": id ", v.max_id(), " (piece '", *v.piece(v.max_id()),
                   "') is outside the model's ", field, " ", rows);
    };
    check_fits(impl->source_vocab, cfg.vocab_size, "vocab_size");
    check_fits(impl->target(), cfg.decoder_vocab_size, "decoder_vocab_size");

    impl->special_tokens = {"</s>", "<unk>", "<pad>"};
    const std::filesystem::path tok_path = dir / "tokenizer_config.json";
    if (entry_exists(tok_path)) {
        const TokenizerConfigFlags flags =
            parse_tokenizer_config(read_regular_file(tok_path, kMaxConfigJsonBytes), tok_path.string());
        impl->clean_up = flags.clean_up;
        impl->special_tokens.insert(flags.special_tokens.begin(), flags.special_tokens.end());
    }
    return Tokenizer(std::move(impl));
}

TokenizerConfigFlags parse_tokenizer_config(std::string_view json_text, const std::string& file) {
    TokenizerConfigFlags flags;
    const nlohmann::json tok = parse_json(json_text, file);
    if (!tok.is_object()) return flags;
    // PreTrainedTokenizer defaults clean_up_tokenization_spaces to true; a config may turn it off.
    if (auto it = tok.find("clean_up_tokenization_spaces"); it != tok.end() && it->is_boolean())
        flags.clean_up = it->get<bool>();
    for (const char* key : {"eos_token", "unk_token", "pad_token"})
        if (auto it = tok.find(key); it != tok.end())
            if (auto content = token_content(*it)) flags.special_tokens.push_back(*content);
    if (auto it = tok.find("additional_special_tokens"); it != tok.end() && it->is_array())
        for (const auto& t : *it)
            if (auto content = token_content(t)) flags.special_tokens.push_back(*content);
    return flags;
}

std::vector<std::string> Tokenizer::encode_pieces(std::string_view text) const {
    std::vector<std::string> pieces;
    // Multilingual models take a leading target-language tag such as ">>deu<<"; MarianTokenizer splits it off
    // before SentencePiece and looks it up as one token.
    if (text.starts_with(">>")) {
        const auto end = text.find("<<", 2);
        if (end != std::string_view::npos) {
            pieces.emplace_back(text.substr(0, end + 2));
            text.remove_prefix(end + 2);
        }
    }
    std::vector<std::string> spm_pieces;
    const auto status = impl_->source_spm->Encode(text, &spm_pieces);
    TOLK_CHECK(status.ok(), "source.spm: cannot segment the input: ", status.ToString());
    pieces.insert(pieces.end(), std::make_move_iterator(spm_pieces.begin()), std::make_move_iterator(spm_pieces.end()));
    return pieces;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
    const Vocab& vocab = impl_->source_vocab;
    std::vector<int32_t> ids;
    for (const std::string& piece : encode_pieces(text)) ids.push_back(vocab.find(piece).value_or(vocab.unk_id()));
    ids.push_back(vocab.eos_id());
    return ids;
}

std::string Tokenizer::decode(std::span<const int32_t> target_ids) const {
    const Vocab& vocab = impl_->target();
    std::vector<std::string> pieces;
    for (int32_t id : target_ids) {
        // batch_decode(skip_special_tokens=True) drops the special tokens; an id without a vocab entry is dropped
        // as the <unk> it would map to.
        const std::string* piece = vocab.piece(id);
        if (piece && !impl_->special_tokens.count(*piece)) pieces.push_back(*piece);
    }
    // MarianTokenizer.convert_tokens_to_string: SentencePiece's DecodePieces (which also turns byte-fallback pieces
    // into bytes and passes pieces it does not know through), then "▁" -> " " and strip. transformers decodes with
    // target.spm for separate vocabularies and with source.spm for a joint one.
    const auto& spm = impl_->target_vocab ? impl_->target_spm : impl_->source_spm;
    std::string text;
    const auto status = spm->Decode(pieces, &text);
    TOLK_CHECK(status.ok(), "cannot decode target pieces with SentencePiece: ", status.ToString());
    replace_all(text, kSpaceSymbol, " ");
    text = strip(text);
    return impl_->clean_up ? clean_up_tokenization(std::move(text)) : text;
}

int Tokenizer::source_vocab_size() const { return impl_->source_vocab.size(); }
int Tokenizer::target_vocab_size() const { return impl_->target().size(); }
int32_t Tokenizer::eos_id() const { return impl_->source_vocab.eos_id(); }
int32_t Tokenizer::pad_id() const { return impl_->source_vocab.pad_id(); }
int32_t Tokenizer::unk_id() const { return impl_->source_vocab.unk_id(); }

std::string clean_up_tokenization(std::string text) {
    // transformers' PreTrainedTokenizerBase.clean_up_tokenization, the same replacements in the same order.
    static const std::pair<std::string_view, std::string_view> kRules[] = {
        {" .", "."},    {" ?", "?"},     {" !", "!"},     {" ,", ","},     {" ' ", "'"},
        {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
    };
    for (const auto& [from, to] : kRules) replace_all(text, from, to);
    return text;
}

}  // namespace tolk
