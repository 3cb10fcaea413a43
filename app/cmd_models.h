// `tolk models`: lists the model directories tolk finds, with their language pairs.
#pragma once

#include <CLI/CLI.hpp>

namespace tolk {

std::function<int()> add_models_command(CLI::App& app);

}  // namespace tolk
