// tolk::Error, the one exception type the library throws, and the always-on check macro.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace tolk {

// Every library failure (bad model file, bad option, oneDNN failure) is a tolk::Error whose message
// names the file, tensor or option involved. The app maps it to one line on stderr.
class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

namespace detail {
template <typename... Args>
[[noreturn]] void throw_error(const Args&... args) {
    std::ostringstream os;
    (os << ... << args);
    throw Error(os.str());
}
}  // namespace detail

}  // namespace tolk

// TOLK_CHECK(cond, "part", value, "part"...): throws tolk::Error with the parts streamed together.
// Always on, also in Release: these guard user input and model files, not programmer invariants.
#define TOLK_CHECK(cond, ...)                              \
    do {                                                   \
        if (!(cond)) ::tolk::detail::throw_error(__VA_ARGS__); \
    } while (0)

#define TOLK_FAIL(...) ::tolk::detail::throw_error(__VA_ARGS__)
