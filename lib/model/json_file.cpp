// Bounded file reading and JSON parsing with errors that name the file and the field (see json_file.h).
#include "model/json_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "core/error.h"

namespace tolk {
namespace {

using nlohmann::json;

// nlohmann's DOM builder, wrapped to bound the nesting depth and to remember where in the document the parser
// is, so that an error can name the field ("number overflow" says nothing about where). nlohmann's parser itself
// is iterative; only later walks of a deep value would recurse, which the depth limit rules out.
class BoundedSax {
public:
    BoundedSax(json& root, const std::string& where, const char* what, int max_depth)
        : dom_(root, /*allow_exceptions=*/false), where_(where), what_(what), max_depth_(max_depth) {}

    bool null() { return value() && dom_.null(); }
    bool boolean(bool v) { return value() && dom_.boolean(v); }
    bool number_integer(json::number_integer_t v) { return value() && dom_.number_integer(v); }
    bool number_unsigned(json::number_unsigned_t v) { return value() && dom_.number_unsigned(v); }
    bool number_float(json::number_float_t v, const std::string& s) { return value() && dom_.number_float(v, s); }
    bool string(std::string& v) { return value() && dom_.string(v); }
    bool binary(json::binary_t& v) { return value() && dom_.binary(v); }
    bool start_object(std::size_t n) { return open(false) && dom_.start_object(n); }
    bool end_object() { return close() && dom_.end_object(); }
    bool start_array(std::size_t n) { return open(true) && dom_.start_array(n); }
    bool end_array() { return close() && dom_.end_array(); }
    bool key(std::string& k) {
        if (!frames_.empty()) frames_.back().key = k;
        return dom_.key(k);
    }
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) {
        TOLK_FAIL(where_, ": invalid ", what_, ": ", parse_error_text(e), field());
    }

private:
    struct Frame {
        bool array = false;
        std::size_t index = 0;  // arrays: the element being read
        std::string key;        // objects: the last key
        bool started = false;   // arrays: an element was seen
    };

    // A value starts inside the innermost container: advance the array index.
    bool value() {
        if (!frames_.empty() && frames_.back().array) {
            Frame& f = frames_.back();
            if (f.started) ++f.index;
            f.started = true;
        }
        return true;
    }
    bool open(bool array) {
        value();
        TOLK_CHECK(static_cast<int>(frames_.size()) < max_depth_, where_, ": invalid ", what_, ": nested deeper than ",
                   max_depth_, " levels", field());
        frames_.push_back({array, 0, {}, false});
        return true;
    }
    bool close() {
        if (!frames_.empty()) frames_.pop_back();
        return true;
    }
    // " (at field 'a.b[2]')", or "" at the top level.
    std::string field() const {
        std::string path;
        for (const Frame& f : frames_) {
            if (f.array) {
                if (f.started) path.append("[").append(std::to_string(f.index)).append("]");
            } else if (!f.key.empty()) {
                if (!path.empty()) path += ".";
                path += f.key;
            }
        }
        if (path.empty()) return "";
        if (path.size() > 80) path = path.substr(0, 77) + "...";
        return " (at field '" + path + "')";
    }

    nlohmann::detail::json_sax_dom_parser<json> dom_;
    const std::string& where_;
    const char* what_;
    int max_depth_;
    std::vector<Frame> frames_;
};

template <typename Json>
std::string excerpt(const Json& value) {
    std::string s = value.dump(-1, ' ', false, Json::error_handler_t::replace);
    return s.size() <= 60 ? s : s.substr(0, 57) + "...";
}

}  // namespace

RegularFile open_regular_file(const std::filesystem::path& path) {
    const std::string file = path.string();
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    TOLK_CHECK(fd >= 0, file, ": cannot open: ", std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        const int err = errno;
        ::close(fd);
        TOLK_FAIL(file, ": cannot stat: ", std::strerror(err));
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        TOLK_FAIL(file, ": not a regular file (",
                  S_ISDIR(st.st_mode)    ? "a directory"
                  : S_ISFIFO(st.st_mode) ? "a FIFO"
                  : S_ISCHR(st.st_mode)  ? "a character device"
                  : S_ISBLK(st.st_mode)  ? "a block device"
                  : S_ISSOCK(st.st_mode) ? "a socket"
                                         : "a special file",
                  ")");
    }
    // Back to blocking reads for the regular file (O_NONBLOCK has no effect on them, but be explicit).
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return {fd, static_cast<std::size_t>(st.st_size)};
}

bool is_regular_file_quiet(const std::filesystem::path& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool entry_exists(const std::filesystem::path& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

std::string read_regular_file(const std::filesystem::path& path, std::size_t max_bytes) {
    const std::string file = path.string();
    const RegularFile f = open_regular_file(path);
    if (f.size > max_bytes) {
        ::close(f.fd);
        TOLK_FAIL(file, ": ", f.size, " bytes is larger than the limit of ", max_bytes, " bytes for this file");
    }
    std::string data(f.size, '\0');
    std::size_t got = 0;
    // Read to the end even if the file grew since fstat, but never past the limit.
    for (;;) {
        if (got == data.size()) {
            if (data.size() >= max_bytes + 1) break;
            data.resize(std::min(max_bytes + 1, std::max<std::size_t>(data.size() * 2, 4096)));
        }
        const ssize_t n = ::read(f.fd, data.data() + got, data.size() - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            const int err = errno;
            ::close(f.fd);
            TOLK_FAIL(file, ": read error: ", std::strerror(err));
        }
        if (n == 0) break;
        got += static_cast<std::size_t>(n);
    }
    ::close(f.fd);
    TOLK_CHECK(got <= max_bytes, file, ": larger than the limit of ", max_bytes, " bytes for this file");
    data.resize(got);
    return data;
}

json parse_json(std::string_view text, const std::string& where, const char* what, int max_depth) {
    json root;
    BoundedSax sax(root, where, what, max_depth);
    try {
        json::sax_parse(text.begin(), text.end(), &sax, nlohmann::detail::input_format_t::json, /*strict=*/true);
    } catch (const json::exception& e) {  // e.g. an object with more members than max_size()
        TOLK_FAIL(where, ": invalid ", what, ": ", parse_error_text(e));
    }
    return root;
}

json read_json_file(const std::filesystem::path& path, std::size_t max_bytes) {
    return parse_json(read_regular_file(path, max_bytes), path.string());
}

std::string parse_error_text(const nlohmann::json::exception& error) {
    const std::string what = error.what();
    const auto pos = what.find("] ");
    return pos == std::string::npos ? what : what.substr(pos + 2);
}

std::string json_excerpt(const nlohmann::json& value) { return excerpt(value); }
std::string json_excerpt(const nlohmann::ordered_json& value) { return excerpt(value); }

}  // namespace tolk
