// Small helpers shared by the doctest programs: a self-removing temporary directory, writing a file in one call,
// and checking that a call throws a tolk::Error whose message names what went wrong.
#pragma once

#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/simd.h"
#include "dnnl/linear.h"

namespace tolk::testing {

// Every vector width this machine can run (core/simd.h), narrowest first, and a scope that runs the kernels at one
// of them: tests of the vector kernels loop over all, so any machine checks the baseline and AVX2 code too.
inline std::vector<simd::Level> simd_levels() {
    const simd::Level widest = simd::level();
    std::vector<simd::Level> levels;
    for (simd::Level l : {simd::Level::baseline, simd::Level::avx2, simd::Level::avx512})
        if (l <= widest) levels.push_back(l);
    return levels;
}
struct SimdLevelScope {
    simd::Level previous;
    explicit SimdLevelScope(simd::Level level) : previous(simd::limit_level(level)) {}
    ~SimdLevelScope() { simd::limit_level(previous); }
    SimdLevelScope(const SimdLevelScope&) = delete;
    SimdLevelScope& operator=(const SimdLevelScope&) = delete;
};

// The kernels a Linear can run on (see LinearKernel), and a scope that builds Linears for one of them: tests of
// Linear and of whole models loop over all three, so every machine checks the packed gemm and the panel kernel (the
// kernels of CPUs without AVX-512) and the matmul primitive.
inline constexpr LinearKernel linear_kernels[] = {LinearKernel::matmul, LinearKernel::packed_gemm,
                                                  LinearKernel::panel};
inline const char* linear_kernel_name(LinearKernel kernel) {
    switch (kernel) {
        case LinearKernel::matmul: return "matmul";
        case LinearKernel::packed_gemm: return "packed gemm";
        case LinearKernel::panel: return "panel gemm";
        case LinearKernel::automatic: break;
    }
    return "automatic";
}
struct LinearKernelScope {
    LinearKernel previous;
    explicit LinearKernelScope(LinearKernel kernel) : previous(linear_kernel()) { set_linear_kernel(kernel); }
    ~LinearKernelScope() { set_linear_kernel(previous); }
    LinearKernelScope(const LinearKernelScope&) = delete;
    LinearKernelScope& operator=(const LinearKernelScope&) = delete;
};

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
