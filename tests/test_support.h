// Small helpers shared by the doctest programs: a self-removing temporary directory, writing a file in one call,
// and checking that a call throws a tolk::Error whose message names what went wrong.
#pragma once

#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>

#include "core/error.h"

namespace tolk::testing {

// A fresh directory under the system temp dir (mkdtemp), removed with everything in it at scope exit.
struct TempDir {
    std::filesystem::path path;
    explicit TempDir(const std::string& prefix = "tolk_test") {
        std::string tmpl = (std::filesystem::temp_directory_path() / (prefix + "_XXXXXX")).string();
        if (!mkdtemp(tmpl.data())) FAIL("mkdtemp failed for ", tmpl);
        path = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
};

inline void write_file(const std::filesystem::path& path, const std::string& content) {
    std::ofstream out(path, std::ios::binary);
    out << content;
    REQUIRE_MESSAGE(out.good(), "could not write ", path.string());
}

// Expects f() to throw a tolk::Error whose message contains every fragment.
template <typename F>
void check_error(F&& f, std::initializer_list<std::string> fragments) {
    try {
        f();
        FAIL("no error thrown; expected one containing '", *fragments.begin(), "'");
    } catch (const Error& e) {
        const std::string msg = e.what();
        for (const std::string& frag : fragments) CHECK_MESSAGE(msg.find(frag) != std::string::npos, msg);
    }
}

}  // namespace tolk::testing
