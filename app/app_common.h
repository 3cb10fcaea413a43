// What the subcommands share: the exit codes, the user-mistake error type, error printing, and model resolution
// (-m, --from/--to, TOLK_MODEL, the default model).
#pragma once

#include <filesystem>
#include <string>

#include "core/error.h"

namespace tolk {

// Exit codes, documented in `tolk --help`.
inline constexpr int kExitOk = 0;
inline constexpr int kExitInternal = 1;     // a bug or an environment failure (disk full mid-run, ...)
inline constexpr int kExitUsage = 2;        // a user mistake: bad option, missing input, unwritable output, bad model
inline constexpr int kExitInterrupted = 130;  // Ctrl-C: what was done is flushed, no partial -o file left

// A user mistake; the app prints its message on one line and exits with kExitUsage.
class UsageError : public Error {
public:
    using Error::Error;
};

// "tolk: error: <message>" on one line of stderr (newlines in the message become spaces).
void print_error(const std::string& message);

struct ModelChoice {
    std::string model;      // -m/--model: a directory, or the name of a model in the search directories
    std::string from, to;   // --from/--to language codes
};

// The model directory to use: -m, else a model matching --from/--to, else $TOLK_MODEL, else the default model.
// Throws UsageError naming the option or variable when the choice does not lead to a model directory.
std::filesystem::path resolve_model_dir(const ModelChoice& choice);

}  // namespace tolk
