// `tolk info -m DIR`: a model's configuration, parameter count and tensors.
#pragma once

#include <CLI/CLI.hpp>

namespace tolk {

struct InfoArgs;

// Registers "info"; the returned runner runs it when the subcommand was given and returns the exit code.
std::function<int()> add_info_command(CLI::App& app);

}  // namespace tolk
