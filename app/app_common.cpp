// Shared app helpers: error printing and model resolution (see app_common.h).
#include "app_common.h"

#include <cstdio>
#include <cstdlib>

#include "pipeline/model_registry.h"

namespace tolk {

namespace fs = std::filesystem;

void print_error(const std::string& message) {
    std::string line = message;
    for (char& c : line)
        if (c == '\n' || c == '\r') c = ' ';
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::fprintf(stderr, "tolk: error: %s\n", line.c_str());
    std::fflush(stderr);
}

namespace {

std::string list_models(const std::vector<ModelEntry>& models) {
    if (models.empty()) return "no models found";
    std::string text = "available:";
    for (const auto& m : models)
        text += " " + m.name + " (" + (m.source_lang.empty() ? "?" : m.source_lang) + "->" +
                (m.target_lang.empty() ? "?" : m.target_lang) + ")";
    return text;
}

// A directory given by the user (-m or TOLK_MODEL): an existing model directory, or the name of one found in the
// search directories ("-m en-de").
fs::path check_model_dir(const std::string& given, const std::string& what) {
    std::error_code ec;
    if (fs::is_directory(given, ec)) {
        if (!is_model_dir(given)) throw UsageError(what + given + ": not a model directory (no config.json)");
        return given;
    }
    if (given.find('/') == std::string::npos) {
        for (const auto& m : find_models(model_search_dirs(executable_dir())))
            if (m.name == given) return m.dir;
    }
    throw UsageError(what + given + ": no such model directory");
}

}  // namespace

fs::path resolve_model_dir(const ModelChoice& choice) {
    if (!choice.model.empty()) {
        // --from/--to with -m: a check that the model translates that pair, never silently ignored.
        const fs::path dir = check_model_dir(choice.model, "-m ");
        if (!choice.from.empty() || !choice.to.empty()) {
            const ModelEntry entry = read_model_entry(dir);
            const auto mismatch = [&](const std::string& want, const std::string& have, const char* option) {
                if (want.empty() || want == have) return;
                throw UsageError(std::string(option) + " " + want + ": the model " + choice.model + " translates " +
                                 (entry.source_lang.empty() ? "?" : entry.source_lang) + "->" +
                                 (entry.target_lang.empty() ? "?" : entry.target_lang) +
                                 (have.empty() ? " (its languages are unknown)" : ""));
            };
            mismatch(choice.from, entry.source_lang, "--from");
            mismatch(choice.to, entry.target_lang, "--to");
        }
        return dir;
    }
    const auto search_dirs = model_search_dirs(executable_dir());
    if (!choice.from.empty() || !choice.to.empty()) {
        const auto models = find_models(search_dirs);
        for (const auto& m : models) {
            if ((choice.from.empty() || m.source_lang == choice.from) &&
                (choice.to.empty() || m.target_lang == choice.to))
                return m.dir;
        }
        std::string pair = (choice.from.empty() ? std::string("any") : choice.from) + "->" +
                           (choice.to.empty() ? std::string("any") : choice.to);
        throw UsageError("--from/--to: no model translates " + pair + " (" + list_models(models) +
                         "; see tolk models)");
    }
    if (const char* env = std::getenv("TOLK_MODEL"); env && *env) return check_model_dir(env, "TOLK_MODEL=");
    if (auto dir = default_model_dir(search_dirs)) return *dir;
    std::string searched;
    for (const auto& d : search_dirs) searched += (searched.empty() ? "" : ", ") + d.string();
    throw UsageError("no model: give -m DIR or set TOLK_MODEL (no default model in " +
                     (searched.empty() ? std::string("any models/ directory") : searched) + ")");
}

}  // namespace tolk
