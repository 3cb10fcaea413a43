// `tolk translate` (also `tolk "text"` and plain `tolk`): arguments, stdin or files through the pipeline.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

namespace tolk {

// Registers "translate"; the returned runner runs it when the subcommand was given (returns the exit code) and
// returns -1 otherwise.
std::function<int()> add_translate_command(CLI::App& app);

}  // namespace tolk
