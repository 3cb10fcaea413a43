// Reading JSON files of a model directory with errors that name the file.
#include "model/json_file.h"

#include <fstream>
#include <sstream>

#include "core/error.h"

namespace tolk {
namespace {

template <typename Json>
Json read_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    TOLK_CHECK(in, path.string(), ": cannot open");
    std::ostringstream text;
    text << in.rdbuf();
    try {
        return Json::parse(text.str());
    } catch (const nlohmann::json::parse_error& e) {
        TOLK_FAIL(path.string(), ": invalid JSON: ", parse_error_text(e));
    }
}

template <typename Json>
std::string excerpt(const Json& value) {
    std::string s = value.dump();
    return s.size() <= 60 ? s : s.substr(0, 57) + "...";
}

}  // namespace

std::string parse_error_text(const nlohmann::json::parse_error& error) {
    const std::string what = error.what();
    const auto pos = what.find("] ");
    return pos == std::string::npos ? what : what.substr(pos + 2);
}

nlohmann::json read_json_file(const std::filesystem::path& path) { return read_file<nlohmann::json>(path); }
nlohmann::ordered_json read_ordered_json_file(const std::filesystem::path& path) {
    return read_file<nlohmann::ordered_json>(path);
}

std::string json_excerpt(const nlohmann::json& value) { return excerpt(value); }
std::string json_excerpt(const nlohmann::ordered_json& value) { return excerpt(value); }

}  // namespace tolk
