// Reading JSON files of a model directory with errors that name the file (used by config, weights, tokenizer).
#pragma once

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

namespace tolk {

// Parses the whole file; throws tolk::Error "<path>: invalid JSON: <parser message>" or "<path>: cannot open".
nlohmann::json read_json_file(const std::filesystem::path& path);

// A JSON value shortened for error messages (long arrays and objects are cut).
std::string json_excerpt(const nlohmann::json& value);

}  // namespace tolk
