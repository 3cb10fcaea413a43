// Model discovery for `tolk models`, --from/--to and the default model (see model_registry.h).
#include "pipeline/model_registry.h"

#include <algorithm>
#include <cstdlib>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/json_file.h"

namespace tolk {

namespace fs = std::filesystem;

std::filesystem::path executable_dir() {
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    return ec ? fs::path() : exe.parent_path();
}

bool is_model_dir(const fs::path& dir) {
    std::error_code ec;
    return fs::is_regular_file(dir / "config.json", ec);
}

std::vector<fs::path> model_search_dirs(const fs::path& exe_dir) {
    std::vector<fs::path> candidates;
    if (const char* env = std::getenv("TOLK_MODEL_PATH")) {
        std::string list = env;
        size_t start = 0;
        while (start <= list.size()) {
            const size_t end = std::min(list.find(':', start), list.size());
            if (end > start) candidates.emplace_back(list.substr(start, end - start));
            start = end + 1;
        }
    }
    if (!exe_dir.empty()) {
        candidates.push_back(exe_dir / ".." / "share" / "tolk" / "models");
        candidates.push_back(exe_dir / "models");
    }
#ifdef TOLK_SOURCE_DIR
    candidates.push_back(fs::path(TOLK_SOURCE_DIR) / "models");
#endif
    std::vector<fs::path> dirs;
    std::set<fs::path> seen;
    for (const auto& candidate : candidates) {
        std::error_code ec;
        if (!fs::is_directory(candidate, ec)) continue;
        const fs::path canonical = fs::weakly_canonical(candidate, ec);
        if (ec || !seen.insert(canonical).second) continue;
        dirs.push_back(canonical);
    }
    return dirs;
}

ModelEntry read_model_entry(const fs::path& dir) {
    ModelEntry entry;
    entry.dir = dir;
    entry.name = dir.filename().string();
    // Bounded like every model file (regular file, size, depth); an unreadable one only loses the language pair.
    nlohmann::json json;
    try {
        if (entry_exists(dir / "tokenizer_config.json")) json = read_json_file(dir / "tokenizer_config.json");
    } catch (const Error&) {
        json = nullptr;
    }
    {
        if (json.is_object()) {
            if (auto it = json.find("source_lang"); it != json.end() && it->is_string()) entry.source_lang = *it;
            if (auto it = json.find("target_lang"); it != json.end() && it->is_string()) entry.target_lang = *it;
        }
    }
    if (entry.source_lang.empty() && entry.target_lang.empty()) {
        // OPUS-MT naming: "en-de", "opus-mt-en-de".
        std::string name = entry.name;
        if (name.rfind("opus-mt-", 0) == 0) name.erase(0, 8);
        const size_t dash = name.find('-');
        if (dash != std::string::npos && dash > 0 && name.find('-', dash + 1) == std::string::npos &&
            dash + 1 < name.size()) {
            entry.source_lang = name.substr(0, dash);
            entry.target_lang = name.substr(dash + 1);
        }
    }
    return entry;
}

std::vector<ModelEntry> find_models(const std::vector<fs::path>& search_dirs) {
    std::vector<ModelEntry> models;
    for (const auto& root : search_dirs) {
        std::vector<fs::path> dirs;
        std::error_code ec;
        for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec))
            if (is_model_dir(it->path())) dirs.push_back(it->path());
        std::sort(dirs.begin(), dirs.end());
        for (const auto& dir : dirs) models.push_back(read_model_entry(dir));
    }
    return models;
}

std::optional<fs::path> default_model_dir(const std::vector<fs::path>& search_dirs) {
    for (const auto& root : search_dirs)
        if (is_model_dir(root / "en-de")) return root / "en-de";
    const auto models = find_models(search_dirs);
    if (!models.empty()) return models.front().dir;
    return std::nullopt;
}

}  // namespace tolk
