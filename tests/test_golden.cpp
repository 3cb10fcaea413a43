// End-to-end decoding against the PyTorch reference: the tiny fixture models (tests/data/tiny-*) loaded with
// load_config + WeightStore + MarianModel and searched through a MarianSession must give the golden greedy, beam-4
// and n-best ids and scores of golden.json, alone and in a padded batch.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "decode/generate.h"
#include "dnnl/context.h"
#include "layers/marian_model.h"
#include "model/config.h"
#include "model/weights.h"

using namespace tolk;
namespace fs = std::filesystem;
using Ids = std::vector<int32_t>;

namespace {

// Tiny models gain nothing from threads, and an OpenMP team spinning on a busy machine slows every step down.
const bool single_threaded = (set_num_threads(1), true);

// Scores are compared within 1e-4: tolk's logits match the reference's to about 1e-5.
constexpr double kScoreTolerance = 1e-4;

struct Fixture {
    fs::path dir;
    ModelConfig config;
    std::unique_ptr<WeightStore> weights;
    std::unique_ptr<MarianModel> model;
    nlohmann::json golden;
};

std::vector<std::string> variants() { return {"tiny-joint", "tiny-separate"}; }

const Fixture& fixture(const std::string& name) {
    static std::vector<std::unique_ptr<Fixture>> loaded;
    for (const auto& f : loaded) {
        if (f->dir.filename() == name) return *f;
    }
    auto f = std::make_unique<Fixture>();
    f->dir = fs::path(TOLK_TEST_DATA) / name;
    if (!fs::exists(f->dir / "golden.json")) {
        throw std::runtime_error("missing fixture " + (f->dir / "golden.json").string() +
                                 " (scripts/make_fixtures.py writes it)");
    }
    f->config = load_config(f->dir);
    f->weights = std::make_unique<WeightStore>(WeightStore::load(f->dir, f->config));
    f->model = std::make_unique<MarianModel>(f->config, *f->weights);
    std::ifstream in(f->dir / "golden.json");
    std::stringstream text;
    text << in.rdbuf();
    f->golden = nlohmann::json::parse(text.str());
    loaded.push_back(std::move(f));
    return *loaded.back();
}

std::vector<Ids> src_list(const nlohmann::json& j) {
    std::vector<Ids> out;
    for (const auto& s : j) out.push_back(s.get<Ids>());
    return out;
}

void check_hypothesis(const Hypothesis& got, const nlohmann::json& want) {
    CHECK(got.ids == want.at("ids").get<Ids>());
    CAPTURE(got.score);
    CHECK(std::abs(got.score - want.at("score").get<double>()) <= kScoreTolerance);
}

void check_nbest(const std::vector<Hypothesis>& got, const nlohmann::json& want) {
    REQUIRE(got.size() == want.size());
    for (size_t k = 0; k < got.size(); ++k) {
        CAPTURE(k);
        check_hypothesis(got[k], want[k]);
    }
}

DecodeOptions options(int beam, int nbest, int max_new_tokens = 0) {
    DecodeOptions o;
    o.beam_size = beam;
    o.nbest = nbest;
    o.max_new_tokens = max_new_tokens;
    return o;
}

}  // namespace

TEST_CASE("the fixtures' generation settings are the ones the goldens used") {
    for (const std::string& name : variants()) {
        CAPTURE(name);
        const Fixture& f = fixture(name);
        const auto& opts = f.golden.at("options");
        CHECK(f.config.num_beams == opts.at("num_beams").get<int>());
        CHECK(f.config.max_length == opts.at("max_length").get<int>());
        CHECK(f.config.length_penalty == opts.at("length_penalty").get<double>());
        CHECK(f.config.early_stopping == opts.at("early_stopping").get<bool>());
        CHECK(f.config.forced_eos_token_id == f.config.eos_token_id);
        CHECK(f.config.decoder_start_token_id == f.config.pad_token_id);
    }
}

TEST_CASE("greedy, beam-4 and its n-best list equal the reference, sentence by sentence") {
    for (const std::string& name : variants()) {
        CAPTURE(name);
        const Fixture& f = fixture(name);
        MarianSession session(*f.model);
        const auto& cases = f.golden.at("cases");
        REQUIRE(!cases.empty());
        for (size_t i = 0; i < cases.size(); ++i) {
            CAPTURE(i);
            const Ids src = cases[i].at("src_ids").get<Ids>();
            const auto greedy = generate(session, f.config, {src}, options(1, 1));
            REQUIRE(greedy.size() == 1);
            REQUIRE(greedy[0].size() == 1);
            check_hypothesis(greedy[0][0], cases[i].at("greedy"));
            // The model's own num_beams (4) is the default beam size.
            const auto beam = generate(session, f.config, {src}, options(0, 4));
            check_nbest(beam[0], cases[i].at("beam4"));
        }
    }
}

TEST_CASE("a padded batch gives every sentence its reference result") {
    for (const std::string& name : variants()) {
        CAPTURE(name);
        const Fixture& f = fixture(name);
        MarianSession session(*f.model);
        const auto& batch = f.golden.at("batch");
        const std::vector<Ids> src = src_list(batch.at("src_ids"));
        REQUIRE(src.size() > 1);
        const auto greedy = generate(session, f.config, src, options(1, 1));
        const auto beam = generate(session, f.config, src, options(4, 1));
        REQUIRE(greedy.size() == src.size());
        REQUIRE(beam.size() == src.size());
        for (size_t i = 0; i < src.size(); ++i) {
            CAPTURE(i);
            CHECK(greedy[i][0].ids == batch.at("greedy")[i].get<Ids>());
            CHECK(std::abs(greedy[i][0].score - batch.at("greedy_scores")[i].get<double>()) <= kScoreTolerance);
            CHECK(beam[i][0].ids == batch.at("beam4")[i].get<Ids>());
            CHECK(std::abs(beam[i][0].score - batch.at("beam4_scores")[i].get<double>()) <= kScoreTolerance);
        }
        // The single-sentence cases decoded together give the same as alone.
        const auto& cases = f.golden.at("cases");
        std::vector<Ids> case_src;
        for (const auto& c : cases) case_src.push_back(c.at("src_ids").get<Ids>());
        const auto together = generate(session, f.config, case_src, options(4, 4));
        for (size_t i = 0; i < cases.size(); ++i) {
            CAPTURE(i);
            check_nbest(together[i], cases[i].at("beam4"));
        }
    }
}

TEST_CASE("max_new_tokens cuts the output with a forced </s>, as in the reference") {
    for (const std::string& name : variants()) {
        CAPTURE(name);
        const Fixture& f = fixture(name);
        MarianSession session(*f.model);
        const auto& shorts = f.golden.at("short_cases");
        REQUIRE(!shorts.empty());
        for (size_t i = 0; i < shorts.size(); ++i) {
            CAPTURE(i);
            const Ids src = shorts[i].at("src_ids").get<Ids>();
            const int max_new = shorts[i].at("max_new_tokens").get<int>();
            const auto greedy = generate(session, f.config, {src}, options(1, 1, max_new));
            check_hypothesis(greedy[0][0], shorts[i].at("greedy"));
            CHECK(greedy[0][0].ids.size() <= static_cast<size_t>(max_new));
            const auto beam = generate(session, f.config, {src}, options(4, 4, max_new));
            check_nbest(beam[0], shorts[i].at("beam4"));
        }
    }
}
