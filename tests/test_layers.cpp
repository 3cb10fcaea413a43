// Tests for lib/layers: sinusoidal positions against the formula, the whole model against the PyTorch reference
// fixtures (tests/data/tiny-*), and the invariants that catch mask, padding and cache bugs on a random model:
// a sentence alone equals the same sentence in a padded batch, cached step-by-step decoding equals the
// teacher-forced pass, and reorder() makes every row continue the history it was given.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "layers/marian_model.h"
#include "layers/positions.h"
#include "model/config.h"
#include "model/weights.h"
#include "test_support.h"

using namespace tolk;
using tolk::testing::linear_kernel_name;
using tolk::testing::linear_kernels;
using tolk::testing::LinearKernelScope;

namespace {

// One thread: these shapes are tiny, and OpenMP's spinning threads slow to a crawl when the test runner or
// other jobs already occupy the cores. Set before any test runs, on the thread that runs them.
const bool single_threaded = (set_num_threads(1), true);

// A small random Marian model (joint vocabulary, tied embeddings) built in memory.
ModelConfig random_config() {
    ModelConfig c;
    c.d_model = 32;
    c.encoder_layers = 2;
    c.decoder_layers = 2;
    c.encoder_attention_heads = 4;
    c.decoder_attention_heads = 4;
    c.encoder_ffn_dim = 64;
    c.decoder_ffn_dim = 64;
    c.vocab_size = 60;
    c.decoder_vocab_size = 60;
    c.max_position_embeddings = 80;
    c.activation_function = "swish";
    c.scale_embedding = true;
    c.pad_token_id = 59;
    c.decoder_start_token_id = 59;
    c.eos_token_id = 0;
    return c;
}

WeightStore random_weights(const ModelConfig& config, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(-1.f, 1.f);
    std::map<std::string, Tensor> tensors;
    for (const auto& [name, shape] : WeightStore::expected_tensors(config)) {
        Tensor t(shape);
        const bool norm_weight = name.find("layer_norm.weight") != std::string::npos;
        // Weights of the size a trained model has (std ~ 1/sqrt(fan_in)); norm scales around 1.
        const float scale = shape.size() == 2 ? 1.5f / std::sqrt(static_cast<float>(shape[1])) : 0.3f;
        for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = (norm_weight ? 1.0f : 0.0f) + scale * dist(rng);
        tensors.emplace(name, std::move(t));
    }
    return WeightStore::from_tensors(std::move(tensors), config, "random model");
}

const MarianModel& random_model() {
    static const ModelConfig config = random_config();
    static const MarianModel model(config, random_weights(config, 11));
    return model;
}

double max_abs_diff(const float* a, const float* b, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; ++i) m = std::max(m, static_cast<double>(std::fabs(a[i] - b[i])));
    return m;
}

bool is_reference_kernel(const std::string& impl) { return impl.rfind("ref", 0) == 0; }

}  // namespace

TEST_CASE("sinusoidal positions: sines in the first half, cosines in the second, from position 0") {
    // d_model 6: angle(pos, j) = pos / 10000^(2 * floor(j / 2) / 6).
    const Tensor table = sinusoidal_positions(5, 6);
    REQUIRE(table.shape() == Shape{5, 6});
    for (int64_t pos = 0; pos < 5; ++pos) {
        const double p = static_cast<double>(pos);
        const double want[6] = {std::sin(p),
                                std::sin(p / std::pow(10000.0, 2.0 / 6.0)),
                                std::sin(p / std::pow(10000.0, 4.0 / 6.0)),
                                std::cos(p),
                                std::cos(p / std::pow(10000.0, 2.0 / 6.0)),
                                std::cos(p / std::pow(10000.0, 4.0 / 6.0))};
        for (int j = 0; j < 6; ++j) CHECK(table.f32()[pos * 6 + j] == static_cast<float>(want[j]));
    }
    // Position 0 is (0, ..., 0, 1, ..., 1): the first position is 0, not 1 or 2 as in some other models.
    for (int j = 0; j < 3; ++j) CHECK(table.f32()[j] == 0.0f);
    for (int j = 3; j < 6; ++j) CHECK(table.f32()[j] == 1.0f);

    // Odd width 5: three sine columns (j = 0, 2, 4), two cosine columns (j = 1, 3).
    const Tensor odd = sinusoidal_positions(3, 5);
    const double p = 2.0;
    const double want_odd[5] = {std::sin(p), std::sin(p / std::pow(10000.0, 2.0 / 5.0)),
                                std::sin(p / std::pow(10000.0, 4.0 / 5.0)), std::cos(p),
                                std::cos(p / std::pow(10000.0, 2.0 / 5.0))};
    for (int j = 0; j < 5; ++j) CHECK(odd.f32()[2 * 5 + j] == static_cast<float>(want_odd[j]));

    // A wide table: the last sine column of a 512-wide table at position 100.
    const Tensor wide = sinusoidal_positions(101, 512);
    CHECK(wide.f32()[100 * 512 + 255] == static_cast<float>(std::sin(100.0 / std::pow(10000.0, 510.0 / 512.0))));
    CHECK(wide.f32()[100 * 512 + 256] == static_cast<float>(std::cos(100.0)));
}

namespace {

struct GoldenCase {
    std::vector<int32_t> src_ids;
    std::vector<int32_t> tgt_input_ids;
    Shape encoder_shape, logits_shape;
    std::vector<float> encoder_out, logits;
};

std::vector<GoldenCase> read_golden(const std::filesystem::path& path) {
    std::ifstream in(path);
    REQUIRE_MESSAGE(in.good(), "missing fixture " << path.string());
    const nlohmann::json golden = nlohmann::json::parse(in);
    std::vector<GoldenCase> cases;
    for (const auto& c : golden.at("cases")) {
        GoldenCase g;
        g.src_ids = c.at("src_ids").get<std::vector<int32_t>>();
        g.tgt_input_ids = c.at("tgt_input_ids").get<std::vector<int32_t>>();
        g.encoder_shape = c.at("encoder_out").at("shape").get<Shape>();
        g.encoder_out = c.at("encoder_out").at("data").get<std::vector<float>>();
        g.logits_shape = c.at("logits").at("shape").get<Shape>();
        g.logits = c.at("logits").at("data").get<std::vector<float>>();
        cases.push_back(std::move(g));
    }
    return cases;
}

void check_against_reference(const std::string& fixture) {
    const std::filesystem::path dir = std::filesystem::path(TOLK_TEST_DATA) / fixture;
    const std::vector<GoldenCase> cases = read_golden(dir / "golden.json");
    REQUIRE(!cases.empty());
    const std::unique_ptr<MarianModel> model = MarianModel::load(dir);
    MarianSession session(*model);
    for (std::size_t i = 0; i < cases.size(); ++i) {
        const GoldenCase& c = cases[i];
        INFO(fixture << " case " << i);
        const Tensor enc = session.encode({c.src_ids});  // [1, src_len, d_model]
        REQUIRE(c.encoder_shape == Shape{static_cast<int64_t>(c.src_ids.size()), model->d_model()});
        REQUIRE(enc.numel() == static_cast<int64_t>(c.encoder_out.size()));
        CHECK(max_abs_diff(enc.f32(), c.encoder_out.data(), enc.numel()) <= 1e-4);

        const Tensor logits = session.forward_logits({c.src_ids}, {c.tgt_input_ids});  // [1, tgt_len, vocab]
        REQUIRE(c.logits_shape ==
                Shape{static_cast<int64_t>(c.tgt_input_ids.size()), model->target_vocab_size()});
        REQUIRE(logits.numel() == static_cast<int64_t>(c.logits.size()));
        CHECK(max_abs_diff(logits.f32(), c.logits.data(), logits.numel()) <= 1e-4);

        // The cached decoder reproduces the same logits step by step.
        session.start({c.src_ids}, 1);
        const int64_t vocab = model->target_vocab_size();
        double worst = 0;
        for (std::size_t t = 0; t < c.tgt_input_ids.size(); ++t) {
            const float* step = session.step(std::span<const int32_t>(&c.tgt_input_ids[t], 1));
            worst = std::max(worst, max_abs_diff(step, c.logits.data() + static_cast<int64_t>(t) * vocab, vocab));
        }
        CHECK(worst <= 1e-4);
    }
    for (const std::string& line : session.dnnl_context().primitive_report()) {
        INFO(line);
        CHECK_FALSE(is_reference_kernel(line.substr(line.rfind(" -> ") + 4)));
    }
}

// A low-precision model against the PyTorch reference's f32 logits: the error relative to the spread of the logits
// (RMS of logit - mean) stays within `tolerance`, the cached steps agree with the teacher-forced pass (both
// quantize each row on its own), and no primitive falls back to a reference kernel.
void check_compute_type(const std::string& fixture, ComputeType type, double tolerance) {
    const std::filesystem::path dir = std::filesystem::path(TOLK_TEST_DATA) / fixture;
    const std::vector<GoldenCase> cases = read_golden(dir / "golden.json");
    REQUIRE(!cases.empty());
    const std::unique_ptr<MarianModel> model = MarianModel::load(dir, type);
    REQUIRE(model->compute_type() == type);
    MarianSession session(*model);
    const int64_t vocab = model->target_vocab_size();
    double err2 = 0, spread2 = 0, step_worst = 0, step_err2 = 0;
    for (const GoldenCase& c : cases) {
        const Tensor logits = session.forward_logits({c.src_ids}, {c.tgt_input_ids});  // [1, tgt_len, vocab]
        REQUIRE(logits.numel() == static_cast<int64_t>(c.logits.size()));
        for (std::size_t t = 0; t < c.tgt_input_ids.size(); ++t) {
            const float* want = c.logits.data() + static_cast<int64_t>(t) * vocab;
            const float* got = logits.f32() + static_cast<int64_t>(t) * vocab;
            double mean = 0;
            for (int64_t v = 0; v < vocab; ++v) mean += want[v];
            mean /= static_cast<double>(vocab);
            for (int64_t v = 0; v < vocab; ++v) {
                err2 += (got[v] - want[v]) * double(got[v] - want[v]);
                spread2 += (want[v] - mean) * (want[v] - mean);
            }
        }
        session.start({c.src_ids}, 1);
        for (std::size_t t = 0; t < c.tgt_input_ids.size(); ++t) {
            const float* step = session.step(std::span<const int32_t>(&c.tgt_input_ids[t], 1));
            const float* full = logits.f32() + static_cast<int64_t>(t) * vocab;
            step_worst = std::max(step_worst, max_abs_diff(step, full, vocab));
            for (int64_t v = 0; v < vocab; ++v) step_err2 += (step[v] - full[v]) * double(step[v] - full[v]);
        }
    }
    const double relative = std::sqrt(err2 / spread2);
    INFO(fixture, " ", compute_type_name(type), ": relative RMS logit error ", relative);
    CHECK(relative <= tolerance);
    CHECK(relative > 1e-6);  // it really ran in low precision
    // The cached steps and the teacher-forced pass run different matmul kernels, so their f32 numbers differ in
    // the last bits (measured: up to 5e-6 on these fixtures). bf16 rounding absorbs that; int8's per-row
    // quantization now and then turns it into one quantization step of an activation (measured: a logit 0.075
    // off on tiny-separate after the softmax changed, with an unchanged f32 difference), so int8 is held to the
    // RMS bound: far below its own error against f32, far above what a cache bug (a wrong or stale position)
    // gives.
    const double step_relative = std::sqrt(step_err2 / spread2);
    INFO("cached steps vs teacher-forced: max abs ", step_worst, ", relative RMS ", step_relative);
    if (type == ComputeType::bfloat16) {
        CHECK(step_worst <= 1e-3);
    } else {
        CHECK(step_relative <= 5e-3);
    }
    for (const std::string& line : session.dnnl_context().primitive_report()) {
        INFO(line);
        CHECK_FALSE(is_reference_kernel(line.substr(line.rfind(" -> ") + 4)));
    }
}

}  // namespace

TEST_CASE("tiny-joint: encoder output and logits match the PyTorch reference within 1e-4") {
    for (const LinearKernel kernel : linear_kernels) {
        const LinearKernelScope scope(kernel);
        INFO("kernel: ", linear_kernel_name(kernel));
        check_against_reference("tiny-joint");
    }
}

TEST_CASE("tiny-separate: encoder output and logits match the PyTorch reference within 1e-4") {
    for (const LinearKernel kernel : linear_kernels) {
        const LinearKernelScope scope(kernel);
        INFO("kernel: ", linear_kernel_name(kernel));
        check_against_reference("tiny-separate");
    }
}

TEST_CASE("a sentence alone equals the same sentence inside a padded batch") {
    const MarianModel& model = random_model();
    const int64_t d_model = model.d_model(), vocab = model.target_vocab_size();
    const std::vector<std::vector<int32_t>> src = {{5, 17, 23, 8, 40, 2, 0}, {33, 9, 0}, {12, 12, 51, 7, 0}};
    const std::vector<std::vector<int32_t>> tgt = {{59, 4, 18, 26}, {59, 30, 3, 3, 44, 21}, {59, 8}};
    MarianSession batched(model), alone(model);
    const Tensor enc = batched.encode(src);  // [3, 7, d_model]
    REQUIRE(enc.shape() == Shape{3, 7, d_model});
    const Tensor logits = batched.forward_logits(src, tgt);  // [3, 6, vocab]
    REQUIRE(logits.shape() == Shape{3, 6, vocab});
    for (std::size_t b = 0; b < src.size(); ++b) {
        INFO("sentence " << b);
        const int64_t len = static_cast<int64_t>(src[b].size());
        const Tensor one = alone.encode({src[b]});  // [1, len, d_model]
        REQUIRE(one.shape() == Shape{1, len, d_model});
        CHECK(max_abs_diff(enc.f32() + static_cast<int64_t>(b) * 7 * d_model, one.f32(), len * d_model) <= 1e-5);
        const int64_t tgt_len = static_cast<int64_t>(tgt[b].size());
        const Tensor one_logits = alone.forward_logits({src[b]}, {tgt[b]});  // [1, tgt_len, vocab]
        CHECK(max_abs_diff(logits.f32() + static_cast<int64_t>(b) * 6 * vocab, one_logits.f32(), tgt_len * vocab) <=
              1e-5);
    }
    // Sentences do not leak into each other: changing a token of sentence 0 leaves sentence 1 as it was and
    // does change sentence 0.
    const Tensor again = alone.forward_logits({src[1]}, {tgt[1]});
    std::vector<std::vector<int32_t>> changed = src;
    changed[0][3] = 41;
    const Tensor other = batched.forward_logits(changed, tgt);
    CHECK(max_abs_diff(other.f32() + 6 * vocab, again.f32(), 6 * vocab) <= 1e-5);
    CHECK(max_abs_diff(other.f32(), logits.f32(), 4 * vocab) > 1e-3);
}

TEST_CASE("a sentence gets the same bits beside any partner, long ones included, in every compute type") {
    // Batches pad to their longest sentence. Padding must add exact zeros to every sum a sentence's rows make, so
    // that its encoder output and logits do not depend on what it is batched with: no --batch-size, token budget
    // or resume point may change a translation. Partners of 9, 100 and 150 tokens (tolk ran attention blocks
    // over 128 positions on oneDNN matmuls, which summed in another order, until 2026-12).
    ModelConfig config = random_config();
    config.max_position_embeddings = 200;
    const WeightStore weights = random_weights(config, 23);
    std::mt19937 rng(31);
    const auto sentence = [&](int64_t len) {
        std::vector<int32_t> ids(static_cast<std::size_t>(len));
        for (int32_t& id : ids) id = 1 + static_cast<int32_t>(rng() % 58);
        ids.back() = 0;
        return ids;
    };
    const std::vector<int32_t> subject = sentence(7);
    const std::vector<int32_t> target = {59, 4, 18, 26, 9};
    std::vector<ComputeType> types = {ComputeType::float32, ComputeType::int8};
    if (cpu_has_avx512()) types.push_back(ComputeType::bfloat16);
    for (const ComputeType type : types) {
        const MarianModel model(config, weights, type);
        MarianSession alone(model), batched(model);
        const Tensor enc = alone.encode({subject});                       // [1, 7, d_model]
        const Tensor logits = alone.forward_logits({subject}, {target});  // [1, 5, vocab]
        for (const int64_t partner_len : {9, 100, 150}) {
            INFO("compute type " << std::string(compute_type_name(type)) << ", partner of " << partner_len
                                 << " tokens");
            const std::vector<int32_t> partner = sentence(partner_len);
            const std::vector<int32_t> partner_target(static_cast<std::size_t>(partner_len / 2), 7);
            for (const bool subject_first : {true, false}) {
                const std::size_t at = subject_first ? 0 : 1;
                std::vector<std::vector<int32_t>> src = {partner}, tgt = {partner_target};
                src.insert(src.begin() + static_cast<std::ptrdiff_t>(at), subject);
                tgt.insert(tgt.begin() + static_cast<std::ptrdiff_t>(at), target);
                const Tensor both = batched.encode(src);  // [2, partner_len, d_model]
                REQUIRE(both.shape()[1] == partner_len);
                const float* mine = both.f32() + static_cast<int64_t>(at) * partner_len * enc.shape()[2];
                CHECK(std::equal(enc.f32(), enc.f32() + enc.numel(), mine));
                const Tensor both_logits = batched.forward_logits(src, tgt);  // [2, max tgt len, vocab]
                const int64_t rows = both_logits.shape()[1], vocab = both_logits.shape()[2];
                const float* my_logits = both_logits.f32() + static_cast<int64_t>(at) * rows * vocab;
                CHECK(std::equal(logits.f32(), logits.f32() + logits.numel(), my_logits));
            }
        }
    }
}

TEST_CASE("cached step-by-step decoding reproduces forward_logits, past the initial cache capacity") {
    const MarianModel& model = random_model();
    const int64_t vocab = model.target_vocab_size();
    const std::vector<std::vector<int32_t>> src = {{7, 3, 0}, {25, 11, 38, 0}};
    // 45 positions: more than the 32 the caches start with for a 4-token source, and across 3 position blocks.
    std::mt19937 rng(3);
    std::uniform_int_distribution<int32_t> token(0, 58);
    std::vector<std::vector<int32_t>> tgt(2, std::vector<int32_t>{59});
    for (auto& t : tgt)
        while (t.size() < 45) t.push_back(token(rng));
    MarianSession session(model);
    const Tensor want = session.forward_logits(src, tgt);  // [2, 45, vocab]
    session.start(src, 1);
    CHECK(session.rows() == 2);
    double worst = 0;
    for (int64_t t = 0; t < 45; ++t) {
        const int32_t tokens[2] = {tgt[0][static_cast<std::size_t>(t)], tgt[1][static_cast<std::size_t>(t)]};
        const float* logits = session.step(tokens);
        for (int64_t b = 0; b < 2; ++b)
            worst = std::max(worst, max_abs_diff(logits + b * vocab, want.f32() + (b * 45 + t) * vocab, vocab));
    }
    CHECK(session.position() == 45);
    CHECK(worst <= 1e-4);
}

namespace {

// Follows what each decoder row should be decoding (its sentence and token history) and checks a session's
// logits against a fresh teacher-forced pass over exactly that history.
struct RowTracker {
    const MarianModel& model;
    const std::vector<std::vector<int32_t>>& src;
    std::vector<std::pair<int, std::vector<int32_t>>> rows;  // (sentence, tokens fed so far)
    MarianSession reference;

    RowTracker(const MarianModel& m, const std::vector<std::vector<int32_t>>& s, int beam)
        : model(m), src(s), reference(m) {
        for (std::size_t b = 0; b < s.size(); ++b)
            for (int k = 0; k < beam; ++k) rows.push_back({static_cast<int>(b), {}});
    }

    void reorder(MarianSession& session, const std::vector<int32_t>& src_rows) {
        session.reorder(src_rows);
        std::vector<std::pair<int, std::vector<int32_t>>> next;
        for (int32_t r : src_rows) next.push_back(rows[static_cast<std::size_t>(r)]);
        rows = std::move(next);
        CHECK(session.rows() == static_cast<int64_t>(rows.size()));
    }

    void step_and_check(MarianSession& session, const std::vector<int32_t>& tokens) {
        REQUIRE(tokens.size() == rows.size());
        const float* logits = session.step(tokens);
        const int64_t vocab = model.target_vocab_size();
        for (std::size_t i = 0; i < rows.size(); ++i) {
            rows[i].second.push_back(tokens[i]);
            const auto& sentence = src[static_cast<std::size_t>(rows[i].first)];
            const Tensor want = reference.forward_logits({sentence}, {rows[i].second});
            const int64_t last = static_cast<int64_t>(rows[i].second.size()) - 1;
            INFO("row " << i << " (sentence " << rows[i].first << ", " << rows[i].second.size() << " tokens)");
            CHECK(max_abs_diff(logits + static_cast<int64_t>(i) * vocab, want.f32() + last * vocab, vocab) <= 1e-4);
        }
    }
};

}  // namespace

TEST_CASE("reorder: every row continues the history and the sentence it is given") {
    const MarianModel& model = random_model();
    const std::vector<std::vector<int32_t>> src = {{7, 3, 19, 0}, {25, 11, 0}, {44, 2, 9, 9, 31, 0}};
    MarianSession session(model);

    SUBCASE("beams: permuted, duplicated, then whole sentences dropped") {
        session.start(src, 2);
        RowTracker tracker(model, src, 2);
        CHECK(session.rows() == 6);
        tracker.step_and_check(session, {59, 59, 59, 59, 59, 59});
        tracker.step_and_check(session, {4, 8, 15, 16, 23, 42});
        tracker.reorder(session, {1, 0, 3, 3, 4, 5});
        tracker.step_and_check(session, {5, 6, 7, 8, 9, 10});
        tracker.reorder(session, {1, 1, 4, 5});  // sentence 1 finished: its rows drop out
        tracker.step_and_check(session, {11, 12, 13, 14});
        tracker.reorder(session, {2, 3});  // only sentence 2 is left
        tracker.step_and_check(session, {20, 21});
        tracker.step_and_check(session, {22, 23});
    }
    SUBCASE("greedy rows dropped and rows that do not form equal groups") {
        session.start(src, 1);
        RowTracker tracker(model, src, 1);
        tracker.step_and_check(session, {59, 59, 59});
        tracker.reorder(session, {2, 0});  // sentence 1 finished; order changed too
        tracker.step_and_check(session, {30, 31});
        tracker.reorder(session, {0, 0, 1});  // uneven: two rows of one sentence, one of another
        tracker.step_and_check(session, {32, 33, 34});
        tracker.reorder(session, {2, 1});
        tracker.step_and_check(session, {35, 36});
        tracker.reorder(session, {0, 1});  // identity: nothing moves
        tracker.step_and_check(session, {37, 38});
    }
    SUBCASE("rows multiply beyond what start() allocated") {
        session.start({src[0], src[2]}, 1);
        const std::vector<std::vector<int32_t>> pair = {src[0], src[2]};
        RowTracker tracker(model, pair, 1);
        tracker.step_and_check(session, {59, 59});
        tracker.step_and_check(session, {3, 4});
        tracker.reorder(session, {0, 0, 1, 1, 1});
        tracker.step_and_check(session, {5, 6, 7, 8, 9});
        tracker.reorder(session, {4, 3, 2, 1, 0});
        tracker.step_and_check(session, {10, 11, 12, 13, 14});
    }
    SUBCASE("random maps: cycles, rows read by several later rows, rows read before and after they change") {
        std::mt19937 rng(21);
        session.start(src, 3);
        RowTracker tracker(model, src, 3);
        tracker.step_and_check(session, std::vector<int32_t>(9, 59));
        for (int round = 0; round < 6; ++round) {
            const int rows = static_cast<int>(session.rows());
            std::uniform_int_distribution<int32_t> pick(0, rows - 1);
            std::vector<int32_t> map(static_cast<std::size_t>(rows));
            for (int32_t& r : map) r = pick(rng);
            if (round % 2 == 0) std::iota(map.begin(), map.end(), 0), std::shuffle(map.begin(), map.end(), rng);
            tracker.reorder(session, map);
            std::vector<int32_t> tokens(map.size());
            for (std::size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>(3 + (round * 7 + i) % 50);
            tracker.step_and_check(session, tokens);
        }
    }
}

TEST_CASE("reorder, then the caches grow: rows that share cache rows keep their past both ways of growing") {
    // After a reorder, rows read their past from other rows' cache rows (the session's slots). Growing past the
    // first 32 positions either moves every cache row to its wider place inside a buffer an earlier, wider batch
    // left, or gathers each live row's past into a new buffer. Sentence 0 leaves at step 20, before the first
    // growth, so the live rows read cache rows beyond their own count.
    const MarianModel& model = random_model();
    const std::vector<std::vector<int32_t>> src = {{7, 3, 19, 0}, {25, 11, 0}, {44, 2, 9, 9, 31, 0}};
    for (const bool wide_first : {false, true}) {
        INFO((wide_first ? "inside an earlier batch's buffers" : "into new buffers"));
        MarianSession session(model);
        if (wide_first) {  // 12 rows x 60 steps leave buffers of 12 rows x 80 positions
            session.start({src[0], src[1], src[2], src[0]}, 3);
            const std::vector<int32_t> tokens(12, 59);
            for (int step = 0; step < 60; ++step) session.step(tokens);
        }
        session.start(src, 2);
        RowTracker tracker(model, src, 2);
        std::mt19937 rng(5);
        for (int step = 0; step < 56; ++step) {
            const int rows = static_cast<int>(session.rows());
            if (step == 20) {
                tracker.reorder(session, {3, 2, 5, 5});  // sentence 0 finished; the others' beams swap
            } else if (step > 0 && step % 3 == 0) {  // each row continues one of its sentence's two beams
                std::vector<int32_t> map(static_cast<std::size_t>(rows));
                for (int i = 0; i < rows; ++i)
                    map[static_cast<std::size_t>(i)] = (i / 2) * 2 + static_cast<int32_t>(rng() % 2);
                tracker.reorder(session, map);
            }
            std::vector<int32_t> tokens(static_cast<std::size_t>(session.rows()));
            for (std::size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>(3 + (step * 5 + i) % 50);
            tracker.step_and_check(session, tokens);
        }
        CHECK(session.position() == 56);
    }
}

TEST_CASE("position budget: several sentences stop before outgrowing it, one sentence never does") {
    // The caches start at 32 positions (source length + 8, at least 32, in blocks of 16) and grow by half.
    const MarianModel& model = random_model();
    const std::vector<std::vector<int32_t>> src = {{7, 3, 19, 0}, {25, 11, 0}, {44, 2, 9, 9, 31, 0}};
    const int32_t token = 59;
    MarianSession session(model);
    session.set_position_budget(3 * 40);  // three rows fit 32 positions, not 48
    session.start(src, 1);
    const std::vector<int32_t> tokens(3, token);
    for (int step = 0; step < 32; ++step) session.step(tokens);  // positions 0..31 fit
    CHECK_THROWS_AS(session.step(tokens), DecoderBudgetExceeded);

    session.start({src[2]}, 2);  // one sentence with its two beams: 2 rows x 80 positions, over the budget
    session.set_position_budget(2 * 20);
    const std::vector<int32_t> beams(2, token);
    for (int step = 0; step < 80; ++step) session.step(beams);
    CHECK(session.position() == 80);
}

TEST_CASE("session errors name the problem") {
    const MarianModel& model = random_model();
    MarianSession session(model);
    const int32_t token = 59;
    CHECK_THROWS_WITH_AS(session.step(std::span<const int32_t>(&token, 1)), doctest::Contains("start()"), Error);
    CHECK_THROWS_WITH_AS(session.start({{3, 0}, {}}, 1), doctest::Contains("sentence 1 has no tokens"), Error);
    CHECK_THROWS_WITH_AS(session.start({{3, 60, 0}}, 1), doctest::Contains("token id 60"), Error);
    CHECK_THROWS_WITH_AS(session.start({std::vector<int32_t>(81, 4)}, 1),
                         doctest::Contains("max_position_embeddings"), Error);
    CHECK_THROWS_AS(session.start({{3, 0}}, 0), Error);
    session.start({{3, 0}, {4, 5, 0}}, 2);
    CHECK_THROWS_WITH_AS(session.step(std::span<const int32_t>(&token, 1)), doctest::Contains("1 tokens for 4"),
                         Error);
    const int32_t bad_row = 4;
    CHECK_THROWS_WITH_AS(session.reorder(std::span<const int32_t>(&bad_row, 1)), doctest::Contains("row 4"), Error);
    CHECK(session.vocab_size() == 60);
}

TEST_CASE("the decoding hot path runs no oneDNN reference kernel") {
    // Linears on the matmul primitive (f32 would run on the panel kernel, which has none, on a CPU without
    // AVX-512). Attention and layer norm run on tolk's own loops, without primitives.
    const LinearKernelScope scope(LinearKernel::matmul);
    const ModelConfig config = random_config();
    const MarianModel model(config, random_weights(config, 11));
    MarianSession session(model);
    session.start({{7, 3, 19, 4, 8, 9, 10, 11, 12, 13, 14, 0}, {25, 11, 0}}, 3);
    std::vector<int32_t> tokens(6, 59);
    for (int t = 0; t < 20; ++t) {
        session.step(tokens);
        if (t == 5) {
            session.reorder(std::vector<int32_t>{2, 1, 0, 3, 3, 5});
        }
        tokens.assign(static_cast<std::size_t>(session.rows()), 7);
    }
    session.forward_logits({{7, 3, 19, 4, 8, 9, 10, 11, 12, 13, 0}}, {{59, 4, 5, 6, 7, 8, 9, 10, 11, 12}});
    const std::vector<std::string> report = session.dnnl_context().primitive_report();
    CHECK(report.size() > 10);
    for (const std::string& line : report) {
        INFO(line);
        CHECK_FALSE(is_reference_kernel(line.substr(line.rfind(" -> ") + 4)));
    }
}

TEST_CASE("int8 and bfloat16 logits stay close to the f32 reference on both fixtures") {
    for (const char* fixture : {"tiny-joint", "tiny-separate"}) {
        for (const LinearKernel kernel : linear_kernels) {
            const LinearKernelScope scope(kernel);
            INFO("kernel: ", linear_kernel_name(kernel));
            check_compute_type(fixture, ComputeType::int8, 0.05);
        }
        if (cpu_has_avx512()) {
            check_compute_type(fixture, ComputeType::bfloat16, 0.02);
            check_compute_type(fixture, ComputeType::int8_bfloat16, 0.05);
        }
    }
}
