// Reading hypothesis and reference files for evaluation the way sacreBLEU's command line does.
#pragma once

#include <istream>
#include <string>
#include <vector>

namespace tolk {

// Splits a stream into lines at '\n' only (a final line without '\n' counts; no extra empty line after
// a final '\n'), checks each is UTF-8 and strips trailing whitespace (Python's definition, so "\r" goes
// too), as sacreBLEU does with every line it reads. `name` appears in errors: "<name> line 7: ...".
std::vector<std::string> read_text_lines(std::istream& in, const std::string& name);

// Same for a file; "-" reads standard input. Throws tolk::Error naming the file when it cannot be read.
std::vector<std::string> read_text_lines(const std::string& path);

}  // namespace tolk
