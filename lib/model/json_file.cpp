// Reading JSON files of a model directory with errors that name the file.
#include "model/json_file.h"

#include <fstream>
#include <sstream>

#include "core/error.h"

namespace tolk {

nlohmann::json read_json_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    TOLK_CHECK(in, path.string(), ": cannot open");
    std::ostringstream text;
    text << in.rdbuf();
    try {
        return nlohmann::json::parse(text.str());
    } catch (const nlohmann::json::parse_error& e) {
        // nlohmann prefixes "[json.exception.parse_error.101] "; the rest carries line and column.
        std::string what = e.what();
        auto pos = what.find("] ");
        TOLK_FAIL(path.string(), ": invalid JSON: ", pos == std::string::npos ? what : what.substr(pos + 2));
    }
}

std::string json_excerpt(const nlohmann::json& value) {
    std::string s = value.dump();
    return s.size() <= 60 ? s : s.substr(0, 57) + "...";
}

}  // namespace tolk
