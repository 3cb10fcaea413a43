// Reading JSON files of a model directory with errors that name the file (used by config, weights, tokenizer).
#pragma once

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

namespace tolk {

// Parses the whole file; throws tolk::Error "<path>: invalid JSON: <parser message>" or "<path>: cannot open".
nlohmann::json read_json_file(const std::filesystem::path& path);
// The same, keeping object keys in file order (vocab.json, where later duplicates must win as in Python).
nlohmann::ordered_json read_ordered_json_file(const std::filesystem::path& path);

// nlohmann's parse error message without its "[json.exception.parse_error.101] " prefix (keeps line and column).
std::string parse_error_text(const nlohmann::json::parse_error& error);

// A JSON value shortened for error messages (long arrays and objects are cut).
std::string json_excerpt(const nlohmann::json& value);
std::string json_excerpt(const nlohmann::ordered_json& value);

}  // namespace tolk
