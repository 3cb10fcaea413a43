// Tests for lib/model: config loading and validation, the safetensors reader (every malformed-file case, F16/BF16
// conversion) and the WeightStore (shapes, missing tensors, ties). Bad files are generated in a temp dir.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "core/heap.h"
#include "core/tensor.h"
#include "model/config.h"
#include "model/safetensors.h"
#include "model/weights.h"
#include "test_support.h"

using namespace tolk;
namespace fs = std::filesystem;

namespace {

// Temporary directories named after this test program.
struct TempDir : testing::TempDir {
    TempDir() : testing::TempDir("tolk_test_model") {}
};
using testing::check_error;
using testing::write_file;

// safetensors layout: u64 little-endian header length, JSON header, data section.
std::string safetensors_raw(const std::string& header, const std::string& data) {
    std::string out(8, '\0');
    uint64_t n = header.size();
    std::memcpy(out.data(), &n, 8);
    return out + header + data;
}

std::string f32_bytes(const std::vector<float>& values) {
    std::string out(values.size() * 4, '\0');
    std::memcpy(out.data(), values.data(), out.size());
    return out;
}

std::string u16_bytes(const std::vector<uint16_t>& values) {
    std::string out(values.size() * 2, '\0');
    std::memcpy(out.data(), values.data(), out.size());
    return out;
}

std::string shape_json(const Shape& shape) {
    std::string s = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) {
        if (i) s += ',';
        s += std::to_string(shape[i]);
    }
    return s + "]";
}

struct Entry {
    std::string dtype;
    Shape shape;
    std::string bytes;
};

// A well-formed file: tensors packed back to back in name order.
std::string safetensors_file(const std::map<std::string, Entry>& tensors) {
    std::string header = "{\"__metadata__\":{\"format\":\"pt\"}", data;
    for (const auto& [name, e] : tensors) {
        header += ",\"" + name + "\":{\"dtype\":\"" + e.dtype + "\",\"shape\":" + shape_json(e.shape) +
                  ",\"data_offsets\":[" + std::to_string(data.size()) + "," +
                  std::to_string(data.size() + e.bytes.size()) + "]}";
        data += e.bytes;
    }
    return safetensors_raw(header + "}", data);
}

std::string open_error(const std::string& content) {
    TempDir dir;
    write_file(dir.path / "x.safetensors", content);
    try {
        SafeTensorsFile file(dir.path / "x.safetensors");
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

// A tiny Marian config: d_model 4, 2 heads, one layer per stack, d_ff 8, vocab 10.
const char* const kTinyConfig = R"({
  "model_type": "marian", "d_model": 4, "encoder_layers": 1, "decoder_layers": 1,
  "encoder_attention_heads": 2, "decoder_attention_heads": 2, "encoder_ffn_dim": 8, "decoder_ffn_dim": 8,
  "vocab_size": 10, "max_position_embeddings": 16, "activation_function": "swish", "scale_embedding": true,
  "pad_token_id": 9, "eos_token_id": 0, "decoder_start_token_id": 9, "forced_eos_token_id": 0,
  "bad_words_ids": [[9]], "num_beams": 4, "max_length": 64,
  "normalize_before": false, "normalize_embedding": false, "add_final_layer_norm": false,
  "static_position_embeddings": true, "add_bias_logits": false, "dropout": 0.1, "architectures": ["MarianMTModel"]
})";

// The Marian tensors for one layer of each stack, listed independently of WeightStore::expected_tensors.
std::map<std::string, Shape> tiny_layer_shapes(int d, int ff) {
    std::map<std::string, Shape> out;
    auto attention = [&](const std::string& p) {
        for (const char* proj : {"q_proj", "k_proj", "v_proj", "out_proj"}) {
            out[p + proj + ".weight"] = {d, d};
            out[p + proj + ".bias"] = {d};
        }
    };
    auto norm = [&](const std::string& p) { out[p + ".weight"] = {d}, out[p + ".bias"] = {d}; };
    for (const std::string stack : {"encoder", "decoder"}) {
        const std::string p = "model." + stack + ".layers.0.";
        attention(p + "self_attn.");
        norm(p + "self_attn_layer_norm");
        if (stack == "decoder") {
            attention(p + "encoder_attn.");
            norm(p + "encoder_attn_layer_norm");
        }
        out[p + "fc1.weight"] = {ff, d};
        out[p + "fc1.bias"] = {ff};
        out[p + "fc2.weight"] = {d, ff};
        out[p + "fc2.bias"] = {d};
        norm(p + "final_layer_norm");
    }
    return out;
}

// Distinct, recognisable values: tensor k holds k + i/1000.
std::map<std::string, Entry> f32_entries(const std::map<std::string, Shape>& shapes) {
    std::map<std::string, Entry> out;
    int k = 0;
    for (const auto& [name, shape] : shapes) {
        std::vector<float> v(shape_numel(shape));
        for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(k) + static_cast<float>(i) / 1000.f;
        out[name] = {"F32", shape, f32_bytes(v)};
        ++k;
    }
    return out;
}

}  // namespace

TEST_CASE("config: fields, MarianConfig defaults, legacy flags ignored, generation_config overrides") {
    TempDir dir;
    write_file(dir.path / "config.json", kTinyConfig);
    ModelConfig cfg = load_config(dir.path);
    CHECK(cfg.d_model == 4);
    CHECK(cfg.encoder_attention_heads == 2);
    CHECK(cfg.decoder_vocab_size == 10);  // absent -> vocab_size
    CHECK(cfg.activation_function == "swish");
    CHECK(cfg.uses_swish());
    CHECK(cfg.scale_embedding);
    CHECK(cfg.share_encoder_decoder_embeddings);  // MarianConfig default
    CHECK(cfg.tie_word_embeddings);               // PretrainedConfig default
    CHECK(cfg.pad_token_id == 9);
    CHECK(cfg.decoder_start_token_id == 9);
    CHECK(cfg.bad_words_ids == std::vector<std::vector<int32_t>>{{9}});
    CHECK(cfg.num_beams == 4);
    CHECK(cfg.max_length == 64);
    CHECK(cfg.max_new_tokens == 0);
    CHECK(cfg.length_penalty == 1.0);
    CHECK_FALSE(cfg.early_stopping);
    CHECK(cfg.source_lang.empty());

    write_file(dir.path / "generation_config.json",
               R"({"num_beams": 6, "max_length": 512, "max_new_tokens": 20, "length_penalty": 0.6,
                   "early_stopping": true, "bad_words_ids": [[9], [3, 4]], "forced_eos_token_id": null,
                   "eos_token_id": [0], "_from_model_config": true, "transformers_version": "4.40.0"})");
    write_file(dir.path / "tokenizer_config.json",
               R"({"source_lang": "en", "target_lang": "de", "separate_vocabs": true, "model_max_length": 512})");
    cfg = load_config(dir.path);
    CHECK(cfg.num_beams == 6);
    CHECK(cfg.max_length == 512);
    CHECK(cfg.max_new_tokens == 20);
    CHECK(cfg.length_penalty == doctest::Approx(0.6));
    CHECK(cfg.early_stopping);
    CHECK(cfg.bad_words_ids == std::vector<std::vector<int32_t>>{{9}, {3, 4}});
    CHECK(cfg.forced_eos_token_id == -1);
    CHECK(cfg.eos_token_id == 0);
    CHECK(cfg.source_lang == "en");
    CHECK(cfg.target_lang == "de");
    CHECK(cfg.separate_vocabs);
    const std::string info = cfg.to_json();
    CHECK(info.find("\"num_beams\": 6") != std::string::npos);
    CHECK(info.find("\"forced_eos_token_id\": null") != std::string::npos);
}

TEST_CASE("config: defaults when config.json names almost nothing") {
    TempDir dir;
    write_file(dir.path / "config.json", R"({"model_type": "marian"})");
    const ModelConfig cfg = load_config(dir.path);
    // transformers' MarianConfig.__init__ defaults; generation values from PretrainedConfig.
    CHECK(cfg.vocab_size == 58101);
    CHECK(cfg.decoder_vocab_size == 58101);
    CHECK(cfg.d_model == 1024);
    CHECK(cfg.encoder_layers == 12);
    CHECK(cfg.decoder_attention_heads == 16);
    CHECK(cfg.encoder_ffn_dim == 4096);
    CHECK(cfg.max_position_embeddings == 1024);
    CHECK(cfg.activation_function == "gelu");
    CHECK_FALSE(cfg.scale_embedding);
    CHECK(cfg.pad_token_id == 58100);
    CHECK(cfg.decoder_start_token_id == 58100);
    CHECK(cfg.eos_token_id == 0);
    CHECK(cfg.forced_eos_token_id == 0);
    CHECK(cfg.num_beams == 1);
    CHECK(cfg.max_length == 20);
}

TEST_CASE("config: decoder_vocab_size applies only to unshared embeddings") {
    TempDir dir;
    write_file(dir.path / "config.json",
               R"({"vocab_size": 10, "decoder_vocab_size": 12, "pad_token_id": 9, "decoder_start_token_id": 9})");
    CHECK(load_config(dir.path).decoder_vocab_size == 10);  // shared: lm_head is [vocab_size, d_model]
    write_file(dir.path / "config.json", R"({"vocab_size": 10, "decoder_vocab_size": 12, "pad_token_id": 9,
        "decoder_start_token_id": 9, "share_encoder_decoder_embeddings": false})");
    CHECK(load_config(dir.path).decoder_vocab_size == 12);
}

TEST_CASE("config: values tolk cannot run are errors naming the field and value") {
    TempDir dir;
    auto check_config = [&](const std::string& json, std::initializer_list<std::string> fragments) {
        write_file(dir.path / "config.json", json);
        check_error([&] { load_config(dir.path); }, fragments);
    };
    check_config(R"({"d_model": 4, "encoder_attention_heads": 2, "decoder_attention_heads": 2, "activation_function": "tanh"})", {"config.json", "activation_function", "'tanh'"});
    check_config(R"({"d_model": 6, "encoder_attention_heads": 4})",
                 {"config.json", "d_model 6", "encoder_attention_heads 4"});
    check_config(R"({"d_model": 8, "encoder_attention_heads": 4, "decoder_attention_heads": 3})",
                 {"decoder_attention_heads 3"});
    check_config(R"({"model_type": "bart"})", {"config.json", "model_type", "'bart'"});
    check_config(R"({"d_model": "512"})", {"config.json", "'d_model'", "integer", "\"512\""});
    check_config(R"({"scale_embedding": 1})", {"'scale_embedding'", "true or false"});
    check_config(R"({"encoder_layers": 0})", {"'encoder_layers'", "positive", "0"});
    check_config(R"({"vocab_size": 10, "pad_token_id": 10})", {"pad_token_id", "10"});
    check_config(R"({"d_model": 512,})", {"config.json", "invalid JSON", "line 1"});
    check_config(R"([1, 2])", {"config.json", "JSON object"});
    check_error([&] { load_config(dir.path / "nowhere"); }, {"config.json", "not found"});

    write_file(dir.path / "config.json", R"({"vocab_size": 10, "pad_token_id": 9, "decoder_start_token_id": 9})");
    write_file(dir.path / "generation_config.json", R"({"num_beams": "four"})");
    check_error([&] { load_config(dir.path); }, {"generation_config.json", "'num_beams'", "\"four\""});
    write_file(dir.path / "generation_config.json", R"({"eos_token_id": [0, 1]})");
    check_error([&] { load_config(dir.path); }, {"generation_config.json", "'eos_token_id'", "[0,1]"});
}

TEST_CASE("safetensors: F32, F16 and BF16 load as f32 (hand-computed values), metadata allowed") {
    TempDir dir;
    // F16: 1.0, -2.0, 65504 (largest normal), 2^-24 (smallest subnormal), 1/3 rounded, +inf.
    // BF16: 1.0, -3.140625, 2^-126 * 1.5 (normal), 0x7f80 = +inf.
    write_file(dir.path / "t.safetensors",
               safetensors_file({{"a", {"F32", {2, 2}, f32_bytes({1.5f, -2.25f, 0.f, 1e-3f})}},
                                 {"h", {"F16", {6}, u16_bytes({0x3c00, 0xc000, 0x7bff, 0x0001, 0x3555, 0x7c00})}},
                                 {"b", {"BF16", {4}, u16_bytes({0x3f80, 0xc049, 0x00c0, 0x7f80})}}}));
    const SafeTensorsFile file(dir.path / "t.safetensors");
    CHECK(file.names() == std::vector<std::string>{"a", "b", "h"});
    CHECK(file.metadata().at("format") == "pt");
    CHECK(file.info("h").dtype == DType::f16);
    CHECK(file.info("a").shape == Shape{2, 2});

    const Tensor a = file.load_f32("a");
    CHECK(a.shape() == Shape{2, 2});
    CHECK(a.f32()[0] == 1.5f);
    CHECK(a.f32()[1] == -2.25f);
    CHECK(a.f32()[3] == 1e-3f);

    const Tensor h = file.load_f32("h");
    CHECK(h.f32()[0] == 1.0f);
    CHECK(h.f32()[1] == -2.0f);
    CHECK(h.f32()[2] == 65504.0f);
    CHECK(h.f32()[3] == std::ldexp(1.0f, -24));
    CHECK(h.f32()[4] == 0.333251953125f);  // 0x3555 = (1 + 341/1024) / 4
    CHECK(std::isinf(h.f32()[5]));

    const Tensor b = file.load_f32("b");
    CHECK(b.f32()[0] == 1.0f);
    CHECK(b.f32()[1] == -3.140625f);
    CHECK(b.f32()[2] == std::ldexp(1.5f, -126));
    CHECK(std::isinf(b.f32()[3]));

    check_error([&] { file.info("nope"); }, {"t.safetensors", "'nope'"});
}

TEST_CASE("safetensors: every F16 and BF16 bit pattern loads as its exact value, across read chunks") {
    // All 65,536 patterns of each type in one tensor (several 64 KiB read chunks, a vector tail), at an odd data
    // offset, against the values computed from the IEEE definitions with ldexp.
    std::vector<uint16_t> all(65536);
    for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<uint16_t>(i);
    all.push_back(0x3c00);  // one more: the element count is not a multiple of the vector width
    TempDir dir;
    write_file(dir.path / "all.safetensors",
               safetensors_file({{"h", {"F16", {static_cast<int64_t>(all.size())}, u16_bytes(all)}},
                                 {"b", {"BF16", {static_cast<int64_t>(all.size())}, u16_bytes(all)}},
                                 {"odd", {"F16", {1}, u16_bytes({0x3c00})}}}));
    const SafeTensorsFile file(dir.path / "all.safetensors");
    const Tensor h = file.load_f32("h");
    const Tensor b = file.load_f32("b");
    const auto same = [](float got, double want) {
        if (std::isnan(want)) return std::isnan(got);
        return static_cast<double>(got) == want;
    };
    int bad_h = 0, bad_b = 0;
    for (std::size_t i = 0; i < all.size(); ++i) {
        const uint16_t v = all[i];
        const double sign = (v & 0x8000) ? -1.0 : 1.0;
        const int he = (v >> 10) & 0x1f, hm = v & 0x3ff;
        const double half = he == 0    ? sign * std::ldexp(hm, -24)
                            : he == 31 ? (hm ? std::nan("") : sign * HUGE_VAL)
                                       : sign * std::ldexp(1024 + hm, he - 25);
        const int be = (v >> 7) & 0xff, bm = v & 0x7f;
        const double bf = be == 0     ? sign * std::ldexp(bm, -133)
                          : be == 255 ? (bm ? std::nan("") : sign * HUGE_VAL)
                                      : sign * std::ldexp(128 + bm, be - 134);
        bad_h += !same(h.f32()[i], half);
        bad_b += !same(b.f32()[i], bf);
    }
    CHECK(bad_h == 0);
    CHECK(bad_b == 0);
}

TEST_CASE("safetensors: an unaligned data section still loads") {
    TempDir dir;
    // Header of odd length: the data section starts at an odd offset.
    write_file(dir.path / "u.safetensors",
               safetensors_raw(R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}} )",
                               f32_bytes({1.f, 2.f, 3.f})));
    const Tensor x = SafeTensorsFile(dir.path / "u.safetensors").load_f32("x");
    CHECK(x.f32()[0] == 1.f);
    CHECK(x.f32()[2] == 3.f);
}

TEST_CASE("safetensors: every malformed file is rejected with a message naming the problem") {
    const std::string data = f32_bytes({1, 2, 3, 4});  // 16 bytes
    auto file_with = [&](const std::string& entries) { return safetensors_raw("{" + entries + "}", data); };
    auto contains = [](const std::string& msg, const std::string& frag) {
        INFO(msg);
        CHECK(msg.find(frag) != std::string::npos);
    };

    contains(open_error("abc"), "truncated");
    contains(open_error(""), "truncated");
    {
        std::string past = safetensors_raw("{}", "");
        uint64_t huge = 1000;
        std::memcpy(past.data(), &huge, 8);
        const std::string msg = open_error(past);
        contains(msg, "header length 1000");
        contains(msg, "past the end");
    }
    contains(open_error(safetensors_raw("{\"a\":", "")), "invalid JSON header");
    contains(open_error(safetensors_raw("[1]", "")), "JSON object");
    contains(open_error(file_with(R"("a":{"dtype":"F32","shape":[4],"data_offsets":[8,24]})")), "outside the data section");
    contains(open_error(file_with(R"("a":{"dtype":"F32","shape":[4],"data_offsets":[8,24]})")), "'a'");
    contains(open_error(file_with(R"("a":{"dtype":"F32","shape":[0],"data_offsets":[12,8]})")), "end before they begin");
    contains(open_error(file_with(R"("a":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]})")), "non-negative");
    {
        const std::string msg = open_error(file_with(R"("a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},)"
                                                     R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]})"));
        contains(msg, "overlap");
        contains(msg, "'a'");
        contains(msg, "'b'");
    }
    {
        const std::string msg = open_error(file_with(R"("a":{"dtype":"I64","shape":[2],"data_offsets":[0,16]})"));
        contains(msg, "unsupported dtype I64");
        contains(msg, "'a'");
    }
    {
        const std::string msg = open_error(file_with(R"("w":{"dtype":"F32","shape":[3],"data_offsets":[0,16]})"));
        contains(msg, "16 bytes");
        contains(msg, "[3]");
        contains(msg, "12 bytes");
    }
    contains(open_error(file_with(R"("a":{"dtype":"F16","shape":[4],"data_offsets":[0,16]})")), "F16");
    contains(open_error(file_with(R"("a":{"dtype":"F32","shape":[4]})")), "missing 'data_offsets'");
    contains(open_error(file_with(R"("a":{"shape":[4],"data_offsets":[0,16]})")), "missing 'dtype'");
    contains(open_error(file_with(R"("a":{"dtype":"F32","shape":"4","data_offsets":[0,16]})")), "shape must be an array");
    contains(open_error(file_with(R"("a":{"dtype":"F32","shape":[4],"data_offsets":[0]})")), "[begin, end]");
    contains(open_error(file_with(R"("__metadata__":[1])")), "__metadata__");
    contains(open_error(file_with(R"("a":{"dtype":"F32","shape":[4611686018427387904,4611686018427387904],)"
                                  R"("data_offsets":[0,16]})")), "too large");
    CHECK(open_error(file_with(R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                               R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]})")) == "");
}

TEST_CASE("weights: a tied checkpoint resolves shared embeddings and lm_head, ignores stored positions") {
    TempDir dir;
    write_file(dir.path / "config.json", kTinyConfig);
    const ModelConfig cfg = load_config(dir.path);
    auto shapes = tiny_layer_shapes(4, 8);
    shapes["model.shared.weight"] = {10, 4};
    shapes["model.encoder.embed_positions.weight"] = {16, 4};  // ignored: tolk computes positions
    auto entries = f32_entries(shapes);
    write_file(dir.path / "model.safetensors", safetensors_file(entries));

    const WeightStore ws = WeightStore::load(dir.path, cfg);
    const Tensor& shared = ws.get("model.shared.weight");
    CHECK(&ws.get("model.encoder.embed_tokens.weight") == &shared);
    CHECK(&ws.get("model.decoder.embed_tokens.weight") == &shared);
    CHECK(&ws.get("lm_head.weight") == &shared);
    CHECK(ws.stored_name("lm_head.weight") == "model.shared.weight");
    CHECK(shared.shape() == Shape{10, 4});

    // Absent final_logits_bias is zeros, as transformers' registered buffer.
    const Tensor& bias = ws.get("final_logits_bias");
    CHECK(bias.shape() == Shape{1, 10});
    for (int i = 0; i < 10; ++i) CHECK(bias.f32()[i] == 0.f);

    // Values arrive unchanged: fc1.weight is the k-th tensor in name order, element i = k + i/1000.
    int k = 0;
    for (const auto& [name, shape] : shapes) {
        if (name == "model.encoder.layers.0.fc1.weight") break;
        ++k;
    }
    const Tensor& fc1 = ws.get("model.encoder.layers.0.fc1.weight");
    CHECK(fc1.shape() == Shape{8, 4});
    CHECK(fc1.f32()[5] == static_cast<float>(k) + 5 / 1000.f);

    CHECK_FALSE(ws.contains("model.encoder.embed_positions.weight"));
    // Unique tensors: shared 40 + bias 10 + encoder layer 172 + decoder layer 260.
    CHECK(ws.parameter_count() == 40 + 10 + 172 + 260);
    check_error([&] { ws.get("model.encoder.layers.1.fc1.weight"); }, {"'model.encoder.layers.1.fc1.weight'"});
}

TEST_CASE("weights: shared embeddings stored under an embed_tokens name, F16 checkpoint, stored bias") {
    TempDir dir;
    write_file(dir.path / "config.json", kTinyConfig);
    const ModelConfig cfg = load_config(dir.path);
    auto entries = f32_entries(tiny_layer_shapes(4, 8));
    entries["model.decoder.embed_tokens.weight"] = {"F16", {10, 4}, u16_bytes(std::vector<uint16_t>(40, 0x3800))};
    std::vector<float> bias(10);
    for (int i = 0; i < 10; ++i) bias[i] = -static_cast<float>(i);
    entries["final_logits_bias"] = {"F32", {1, 10}, f32_bytes(bias)};
    write_file(dir.path / "model.safetensors", safetensors_file(entries));

    const WeightStore ws = WeightStore::load(dir.path, cfg);
    CHECK(ws.stored_name("model.encoder.embed_tokens.weight") == "model.decoder.embed_tokens.weight");
    CHECK(&ws.get("model.encoder.embed_tokens.weight") == &ws.get("lm_head.weight"));
    CHECK(ws.get("model.shared.weight").f32()[39] == 0.5f);  // F16 0x3800
    CHECK(ws.get("final_logits_bias").f32()[7] == -7.f);
}

TEST_CASE("weights: separate vocabularies have their own embeddings; untied lm_head is required") {
    TempDir dir;
    write_file(dir.path / "config.json", R"({
      "d_model": 4, "encoder_layers": 1, "decoder_layers": 1, "encoder_attention_heads": 2,
      "decoder_attention_heads": 2, "encoder_ffn_dim": 8, "decoder_ffn_dim": 8, "vocab_size": 10,
      "decoder_vocab_size": 7, "share_encoder_decoder_embeddings": false, "tie_word_embeddings": false,
      "pad_token_id": 6, "decoder_start_token_id": 6, "activation_function": "relu"})");
    const ModelConfig cfg = load_config(dir.path);
    auto shapes = tiny_layer_shapes(4, 8);
    shapes["model.encoder.embed_tokens.weight"] = {10, 4};
    shapes["model.decoder.embed_tokens.weight"] = {7, 4};
    shapes["lm_head.weight"] = {7, 4};
    shapes["final_logits_bias"] = {1, 7};
    shapes["model.shared.weight"] = {10, 4};  // transformers drops `shared` when unshared; a stray one is ignored
    write_file(dir.path / "model.safetensors", safetensors_file(f32_entries(shapes)));

    const WeightStore ws = WeightStore::load(dir.path, cfg);
    CHECK(ws.get("model.encoder.embed_tokens.weight").shape() == Shape{10, 4});
    CHECK(ws.get("model.decoder.embed_tokens.weight").shape() == Shape{7, 4});
    CHECK(&ws.get("lm_head.weight") != &ws.get("model.decoder.embed_tokens.weight"));
    CHECK(ws.get("lm_head.weight").shape() == Shape{7, 4});
    CHECK_FALSE(ws.contains("model.shared.weight"));
    CHECK(ws.parameter_count() == 40 + 28 + 28 + 7 + 172 + 260);

    shapes.erase("lm_head.weight");
    write_file(dir.path / "model.safetensors", safetensors_file(f32_entries(shapes)));
    check_error([&] { WeightStore::load(dir.path, cfg); }, {"model.safetensors", "missing tensor 'lm_head.weight'", "[7,4]"});

    // With tie_word_embeddings the decoder embedding stands in for the absent lm_head.
    ModelConfig tied = cfg;
    tied.tie_word_embeddings = true;
    const WeightStore ws_tied = WeightStore::load(dir.path, tied);
    CHECK(&ws_tied.get("lm_head.weight") == &ws_tied.get("model.decoder.embed_tokens.weight"));
}

TEST_CASE("weights: missing tensors and wrong shapes name the file, the tensor and both shapes") {
    TempDir dir;
    write_file(dir.path / "config.json", kTinyConfig);
    const ModelConfig cfg = load_config(dir.path);

    auto shapes = tiny_layer_shapes(4, 8);
    shapes["model.shared.weight"] = {10, 4};
    shapes["model.decoder.layers.0.fc1.weight"] = {4, 8};  // transposed
    write_file(dir.path / "model.safetensors", safetensors_file(f32_entries(shapes)));
    check_error([&] { WeightStore::load(dir.path, cfg); },
                {"model.safetensors", "'model.decoder.layers.0.fc1.weight'", "[4,8]", "config expects [8,4]"});

    shapes["model.decoder.layers.0.fc1.weight"] = {8, 4};
    shapes.erase("model.decoder.layers.0.encoder_attn.k_proj.bias");
    write_file(dir.path / "model.safetensors", safetensors_file(f32_entries(shapes)));
    check_error([&] { WeightStore::load(dir.path, cfg); },
                {"model.safetensors", "missing tensor 'model.decoder.layers.0.encoder_attn.k_proj.bias'"});

    shapes["model.decoder.layers.0.encoder_attn.k_proj.bias"] = {4};
    shapes.erase("model.shared.weight");
    write_file(dir.path / "model.safetensors", safetensors_file(f32_entries(shapes)));
    check_error([&] { WeightStore::load(dir.path, cfg); }, {"missing tensor 'model.shared.weight'"});

    shapes["model.shared.weight"] = {11, 4};
    write_file(dir.path / "model.safetensors", safetensors_file(f32_entries(shapes)));
    check_error([&] { WeightStore::load(dir.path, cfg); }, {"'model.shared.weight' has shape [11,4]", "[10,4]"});

    shapes["model.shared.weight"] = {10, 4};
    shapes["final_logits_bias"] = {10};
    write_file(dir.path / "model.safetensors", safetensors_file(f32_entries(shapes)));
    check_error([&] { WeightStore::load(dir.path, cfg); }, {"'final_logits_bias' has shape [10]", "[1,10]"});

    fs::remove(dir.path / "model.safetensors");
    check_error([&] { WeightStore::load(dir.path, cfg); }, {"model.safetensors", "not found"});
}

TEST_CASE("weights: from_tensors validates in-memory tensors the same way") {
    TempDir dir;
    write_file(dir.path / "config.json", kTinyConfig);
    const ModelConfig cfg = load_config(dir.path);
    std::map<std::string, Tensor> tensors;
    for (const auto& [name, shape] : tiny_layer_shapes(4, 8)) tensors.emplace(name, Tensor(shape));
    tensors.emplace("model.shared.weight", Tensor(Shape{10, 4}));
    const WeightStore ws = WeightStore::from_tensors(std::move(tensors), cfg, "random");
    CHECK(ws.names().size() == WeightStore::expected_tensors(cfg).size());
    for (const auto& [name, shape] : WeightStore::expected_tensors(cfg)) CHECK(ws.get(name).shape() == shape);

    std::map<std::string, Tensor> missing;
    check_error([&] { WeightStore::from_tensors(std::move(missing), cfg, "random"); }, {"random", "missing tensor"});
}

TEST_CASE("fixtures: the reference's tiny models load with the ties their README describes") {
    int loaded = 0;
    for (const char* name : {"tiny-joint", "tiny-separate"}) {
        const fs::path dir = fs::path(TOLK_TEST_DATA) / name;
        if (!fs::exists(dir / "model.safetensors")) continue;
        CAPTURE(name);
        const ModelConfig cfg = load_config(dir);
        CHECK(cfg.encoder_layers == 2);
        CHECK(cfg.decoder_layers == 2);
        CHECK(cfg.uses_swish());
        CHECK(cfg.num_beams == 4);
        CHECK(cfg.max_length == 64);
        CHECK(cfg.pad_token_id == cfg.decoder_vocab_size - 1);
        CHECK(cfg.decoder_start_token_id == cfg.pad_token_id);
        CHECK(cfg.forced_eos_token_id == 0);
        const WeightStore ws = WeightStore::load(dir, cfg);
        CHECK(&ws.get("lm_head.weight") == &ws.get("model.decoder.embed_tokens.weight"));
        CHECK(ws.get("lm_head.weight").shape() == Shape{cfg.decoder_vocab_size, cfg.d_model});
        CHECK(ws.get("final_logits_bias").shape() == Shape{1, cfg.decoder_vocab_size});
        if (cfg.share_encoder_decoder_embeddings) {
            CHECK(&ws.get("model.encoder.embed_tokens.weight") == &ws.get("model.decoder.embed_tokens.weight"));
        } else {
            CHECK(cfg.vocab_size > cfg.decoder_vocab_size);
            CHECK(ws.get("model.encoder.embed_tokens.weight").shape() == Shape{cfg.vocab_size, cfg.d_model});
        }
        // Every stored tensor is used exactly once, so the count equals the file's element total.
        const SafeTensorsFile file(dir / "model.safetensors");
        int64_t stored = 0;
        for (const std::string& n : file.names()) stored += shape_numel(file.info(n).shape);
        CHECK(ws.parameter_count() == stored);
        ++loaded;
    }
    if (!loaded) MESSAGE("no fixtures under " TOLK_TEST_DATA " yet; skipped");
}

namespace {

bool all_zero(const unsigned char* p, std::size_t n) {
    return std::all_of(p, p + n, [](unsigned char c) { return c == 0; });
}

}  // namespace

TEST_CASE("heap: huge mappings are 2 MiB aligned, zero-filled and writable") {
    for (const std::size_t bytes : {std::size_t{1}, kHugePageBytes, kHugePageBytes + 1, 5 * kHugePageBytes + 4096}) {
        auto* p = static_cast<unsigned char*>(map_huge(bytes));
        CHECK(reinterpret_cast<std::uintptr_t>(p) % kHugePageBytes == 0);
        CHECK(all_zero(p, bytes));
        std::memset(p, 0xab, bytes);  // every byte asked for is writable
        CHECK(p[bytes - 1] == 0xab);
        unmap_huge(p, bytes);
    }
}

TEST_CASE("heap: prefaulted mappings are page aligned, zero-filled and writable") {
    for (const std::size_t bytes : {std::size_t{1}, kPrefaultBytes, kPrefaultBytes + 1, kHugePageBytes - 4096}) {
        auto* p = static_cast<unsigned char*>(map_prefaulted(bytes));
        CHECK(reinterpret_cast<std::uintptr_t>(p) % 4096 == 0);
        CHECK(all_zero(p, bytes));
        std::memset(p, 0xcd, bytes);
        CHECK(p[bytes - 1] == 0xcd);
        unmap_pages(p, bytes);
    }
}

TEST_CASE("heap: the arena hands out aligned, disjoint, zeroed blocks, across chunks") {
    PageArena arena;
    struct Block {
        unsigned char* p;
        std::size_t n;
    };
    std::vector<Block> blocks;
    // Small and large requests, one larger than a chunk, then small ones again (a new chunk after the large one).
    for (const std::size_t n : {std::size_t{1}, std::size_t{100}, std::size_t{3} << 20, std::size_t{80} << 20,
                                std::size_t{64}, std::size_t{1000}}) {
        auto* p = static_cast<unsigned char*>(arena.allocate(n));
        CHECK(reinterpret_cast<std::uintptr_t>(p) % 64 == 0);
        CHECK(all_zero(p, n));
        std::memset(p, static_cast<int>(blocks.size() + 1), n);
        blocks.push_back({p, n});
    }
    // Each block still holds its own fill: no block overlaps another.
    for (std::size_t i = 0; i < blocks.size(); ++i) {
        const auto fill = static_cast<unsigned char>(i + 1);
        CHECK(std::all_of(blocks[i].p, blocks[i].p + blocks[i].n, [&](unsigned char c) { return c == fill; }));
    }
    std::size_t asked = 0;
    for (const Block& b : blocks) asked += b.n;
    CHECK(arena.used() >= asked);
    CHECK(arena.used() < asked + blocks.size() * 64);
}

TEST_CASE("tensor: mid-size buffers start zeroed and grow with their contents' room, mapped or from the heap") {
    const int64_t n = static_cast<int64_t>(kPrefaultBytes / sizeof(float)) + 5;  // past the prefault threshold
    for (const bool in_reuse_scope : {false, true}) {
        std::optional<HeapReuseScope> scope;
        if (in_reuse_scope) scope.emplace();
        CHECK(HeapReuseScope::active() == in_reuse_scope);
        Tensor t({n});
        CHECK(all_zero(static_cast<const unsigned char*>(t.raw()), t.nbytes()));
        for (int64_t i = 0; i < n; ++i) t.f32()[i] = static_cast<float>(i);
        t.resize({n / 2});  // smaller: same buffer, contents kept
        CHECK(t.f32()[n / 2 - 1] == static_cast<float>(n / 2 - 1));
        t.resize({3 * n});  // grows into a new block, the old one released
        t.f32()[3 * n - 1] = 2.0f;
        CHECK(t.f32()[3 * n - 1] == 2.0f);
        Tensor copy = t.clone();
        CHECK(copy.f32()[3 * n - 1] == 2.0f);
    }
    CHECK(!HeapReuseScope::active());
}

TEST_CASE("heap: inside a reuse scope, freed mid-size blocks are handed out again, smallest fit first") {
    const std::size_t small = kPrefaultBytes, large = 4 * kPrefaultBytes;
    std::size_t cap_small = 0, cap_large = 0, cap = 0;
    {
        const HeapReuseScope scope;
        void* a = take_scoped_block(small, &cap_small);
        void* b = take_scoped_block(large, &cap_large);
        CHECK(cap_small == small);
        CHECK(cap_large == large);
        std::memset(a, 0x11, cap_small);
        std::memset(b, 0x22, cap_large);
        give_back_scoped_block(a, cap_small);
        give_back_scoped_block(b, cap_large);
        // A request between the two sizes gets the large block, one below the small size the small block, with
        // their old contents.
        void* c = take_scoped_block(small + 1, &cap);
        CHECK(c == b);
        CHECK(cap == cap_large);
        void* d = take_scoped_block(small - 4096, &cap);
        CHECK(d == a);
        CHECK(static_cast<unsigned char*>(d)[0] == 0x11);
        give_back_scoped_block(c, cap_large);
        give_back_scoped_block(d, cap_small);
        // A tensor built on a handed-back block still starts zeroed.
        const int64_t n = static_cast<int64_t>(large / sizeof(float));
        Tensor t({n});
        CHECK(t.raw() == b);
        CHECK(all_zero(static_cast<const unsigned char*>(t.raw()), t.nbytes()));
    }
    // Without a scope, a block is a mapping of its own, zero-filled.
    auto* e = static_cast<unsigned char*>(take_scoped_block(small, &cap));
    CHECK(cap == small);
    CHECK(all_zero(e, cap));
    give_back_scoped_block(e, cap);
}

TEST_CASE("tensor: large buffers (mapped) start zeroed, keep their memory when they fit, and free cleanly") {
    const int64_t n = static_cast<int64_t>(kHugePageBytes / sizeof(float)) + 3;  // just past the threshold
    Tensor t({n});
    CHECK(all_zero(static_cast<const unsigned char*>(t.raw()), t.nbytes()));
    for (int64_t i = 0; i < n; ++i) t.f32()[i] = static_cast<float>(i);
    const void* before = t.raw();
    CHECK(t.fits({2, n / 2}));
    t.resize({2, n / 2});  // smaller: same buffer, contents kept
    CHECK(t.raw() == before);
    CHECK(t.f32()[n / 2 + 1] == static_cast<float>(n / 2 + 1));
    Tensor copy = t.clone();
    CHECK(std::memcmp(copy.raw(), t.raw(), t.nbytes()) == 0);
    t.resize({4 * n});  // grows into a new mapping; the old one is released
    t.f32()[4 * n - 1] = 1.0f;
    CHECK(t.f32()[4 * n - 1] == 1.0f);
    Tensor small({3});
    CHECK(small.f32()[2] == 0.0f);
    Tensor moved = std::move(t);
    CHECK(moved.f32()[4 * n - 1] == 1.0f);
}

TEST_CASE("tensor: large buffers take 2 MiB pages, except a load's conversion buffers, which take 4 KiB ones") {
    const int64_t n = static_cast<int64_t>(kHugePageBytes / sizeof(float)) + 3;  // just past the threshold
    const int64_t page_floats = 4096 / sizeof(float);
    for (const bool in_reuse_scope : {false, true}) {
        std::optional<HeapReuseScope> scope;
        if (in_reuse_scope) scope.emplace();
        Tensor t({n});
        CHECK(all_zero(static_cast<const unsigned char*>(t.raw()), t.nbytes()));
        for (int64_t i = 0; i < n; ++i) t.f32()[i] = static_cast<float>(i);
        // The block's room: whole 2 MiB pages (4 MiB here) outside a load, whole 4 KiB pages inside one.
        CHECK(t.fits({n + page_floats}) == !in_reuse_scope);
        CHECK(t.fits({n + page_floats - 3 - 1}));
        if (!in_reuse_scope) {
            CHECK(reinterpret_cast<std::uintptr_t>(t.raw()) % kHugePageBytes == 0);
        }
        CHECK(t.f32()[n - 1] == static_cast<float>(n - 1));
    }
}
