// Finding models: the default model directory, the directories searched for models, and the language pair of a
// model directory (tokenizer_config.json source_lang/target_lang, else a "xx-yy" directory name).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace tolk {

struct ModelEntry {
    std::filesystem::path dir;
    std::string name;         // the directory name
    std::string source_lang;  // "" when unknown
    std::string target_lang;
};

// Directories that hold model directories, in search order, existing ones only, without duplicates:
// each entry of $TOLK_MODEL_PATH (colon-separated), <exe_dir>/../share/tolk/models (the install layout),
// <exe_dir>/models, and the source tree's models/ (TOLK_SOURCE_DIR).
std::vector<std::filesystem::path> model_search_dirs(const std::filesystem::path& exe_dir);

// True when `dir` looks like a model directory (holds config.json).
bool is_model_dir(const std::filesystem::path& dir);

// Reads the language pair of one model directory; never throws for a readable directory (unknown -> "").
ModelEntry read_model_entry(const std::filesystem::path& dir);

// Every model directory directly inside the search directories, in search order, sorted by name within each.
std::vector<ModelEntry> find_models(const std::vector<std::filesystem::path>& search_dirs);

// The default model: the first "en-de" directory in the search directories; else, when the search directories
// hold models but none is called en-de, the first one found. nullopt when there is none.
std::optional<std::filesystem::path> default_model_dir(const std::vector<std::filesystem::path>& search_dirs);

// The directory of the running executable (/proc/self/exe); empty if unknown.
std::filesystem::path executable_dir();

}  // namespace tolk
