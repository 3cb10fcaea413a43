// tolk's main(): the subcommands (translate, info, models, eval), `tolk "text"` as shorthand for translate, and
// the mapping of every failure to one line on stderr and a documented exit code.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "app_common.h"
#include "core/heap.h"
#include "cmd_info.h"
#include "cmd_models.h"
#include "cmd_translate.h"
#if __has_include("cmd_eval.h")
#include "cmd_eval.h"
#define TOLK_HAS_EVAL 1
#endif

namespace {

// `tolk "text"`, `tolk -m DIR < file` and plain `tolk` mean `tolk translate ...`: everything that does not start
// with a subcommand name or a top-level help flag is given to translate.
std::vector<std::string> with_default_command(int argc, char** argv) {
    std::vector<std::string> args(argv, argv + argc);
    static const std::vector<std::string> top_level = {"translate", "info", "models", "eval", "-h", "--help"};
    if (args.size() < 2 || std::find(top_level.begin(), top_level.end(), args[1]) == top_level.end())
        args.insert(args.begin() + 1, "translate");
    return args;
}

// Started with stdin, stdout or stderr closed (`2>&-`), the next file tolk opens would get that number, and
// warnings or translations would land in an output file. Holding /dev/null there keeps fds 0-2 what they mean.
void reserve_standard_fds() {
    for (int fd = 0; fd < 3; ++fd) {
        if (::fcntl(fd, F_GETFD) != -1) continue;
        const int null_fd = ::open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
        if (null_fd >= 0 && null_fd != fd) {
            ::dup2(null_fd, fd);
            ::close(null_fd);
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    reserve_standard_fds();
    // Blocks of 4 MiB and more (large batch buffers) are mapped on their own and returned to the system when
    // freed; glibc would otherwise raise the threshold after the first such free and serve later ones from a heap
    // that never shrinks. Smaller blocks stay in the heap: oneDNN's jit gemm (CPUs without AVX-512) allocates its
    // packing buffers, up to ~2 MB, on every call, and with a 128 KiB threshold each of them was mapped, faulted in
    // and unmapped again (AMD Zen 3, Multi30k int8 greedy: 2.47 -> 1.92 s, system time 0.3 -> 0.08 s, peak RSS
    // 74.3 -> 75.6 MB). Model loading reuses its buffers (HeapReuseScope).
    tolk::set_large_block_threshold(std::size_t{4} << 20);
    std::ios::sync_with_stdio(false);
    CLI::App app{"tolk: offline neural machine translation with Hugging Face MarianMT (OPUS-MT) models"};
    app.name("tolk");
    app.require_subcommand(1);
    app.footer(
        "Without a subcommand, tolk translates: `tolk \"Hello world.\"` is `tolk translate \"Hello world.\"`.\n"
        "Examples:\n"
        "  tolk \"The weather is nice today.\"\n"
        "  echo \"Good morning.\" | tolk\n"
        "  tolk -i book.txt -o book.de.txt\n"
        "  tolk info -m models/en-de\n"
        "  tolk models\n"
        "Run `tolk translate --help` for every translation option.\n"
        "Exit codes: 0 ok, 1 internal error, 2 usage error (bad option, missing input, unwritable output,\n"
        "bad model directory), 130 interrupted by Ctrl-C.");
    const auto run_translate = tolk::add_translate_command(app);
    const auto run_info = tolk::add_info_command(app);
    const auto run_models = tolk::add_models_command(app);
#ifdef TOLK_HAS_EVAL
    tolk::add_eval_command(app);
#endif

    const std::vector<std::string> args = with_default_command(argc, argv);
    std::vector<char*> arg_ptrs;
    for (const auto& a : args) arg_ptrs.push_back(const_cast<char*>(a.c_str()));
    try {
        try {
            app.parse(static_cast<int>(arg_ptrs.size()), arg_ptrs.data());  // eval runs inside, as a callback
        } catch (const CLI::CallForHelp&) {
            std::cout << (app.get_subcommands().empty() ? app.help() : app.get_subcommands().front()->help("tolk"));
            return tolk::kExitOk;
        } catch (const CLI::CallForAllHelp&) {
            std::cout << app.help("", CLI::AppFormatMode::All);
            return tolk::kExitOk;
        } catch (const CLI::ParseError& e) {
            tolk::print_error(std::string(e.what()) + " (see tolk --help)");
            return tolk::kExitUsage;
        }
        for (const auto& run : {run_translate, run_info, run_models}) {
            const int code = run();
            if (code >= 0) return code;
        }
        return tolk::kExitOk;
    } catch (const tolk::Error& e) {
        // tolk::Error escaping a command is about its inputs (UsageError, eval's unreadable or mismatched files).
        tolk::print_error(e.what());
        return tolk::kExitUsage;
    } catch (const std::exception& e) {
        tolk::print_error(std::string("internal error: ") + e.what());
        return tolk::kExitInternal;
    }
}
