// `tolk models`: model discovery made visible, so users can see what --from/--to and the default resolve to.
#include "cmd_models.h"

#include <cstdio>
#include <cstdlib>

#include "app_common.h"
#include "pipeline/model_registry.h"

namespace tolk {

namespace {

int run_models() {
    const auto search_dirs = model_search_dirs(executable_dir());
    const auto models = find_models(search_dirs);
    const auto default_dir = default_model_dir(search_dirs);
    const char* env = std::getenv("TOLK_MODEL");
    if (models.empty()) {
        std::printf("no models found\n");
    } else {
        size_t width = 4;
        for (const auto& m : models) width = std::max(width, m.name.size());
        std::printf("  %-*s  %-10s  %s\n", static_cast<int>(width), "NAME", "LANGUAGES", "DIRECTORY");
        for (const auto& m : models) {
            const std::string pair = (m.source_lang.empty() ? "?" : m.source_lang) + " -> " +
                                     (m.target_lang.empty() ? "?" : m.target_lang);
            const bool is_default = default_dir && *default_dir == m.dir && !(env && *env);
            std::printf("%s %-*s  %-10s  %s\n", is_default ? "*" : " ", static_cast<int>(width), m.name.c_str(),
                        pair.c_str(), m.dir.string().c_str());
        }
    }
    if (env && *env) std::printf("default: TOLK_MODEL=%s\n", env);
    else if (default_dir) std::printf("(* default model)\n");
    std::string searched;
    for (const auto& d : search_dirs) searched += (searched.empty() ? "" : ":") + d.string();
    std::printf("searched: %s\n", searched.empty() ? "(no model directories exist)" : searched.c_str());
    std::fflush(stdout);
    return kExitOk;
}

}  // namespace

std::function<int()> add_models_command(CLI::App& app) {
    CLI::App* cmd = app.add_subcommand("models", "List the models found and their language pairs");
    cmd->footer("Models are searched in $TOLK_MODEL_PATH (colon-separated), <prefix>/share/tolk/models next to the\n"
                "installed binary, and the source tree's models/. --from/--to pick among them.");
    return [cmd] { return cmd->parsed() ? run_models() : -1; };
}

}  // namespace tolk
