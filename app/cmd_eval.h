// `tolk eval`: corpus BLEU / chrF of a translation against one or more references (sacreBLEU defaults).
#pragma once

#include <CLI/CLI.hpp>

namespace tolk {

// Registers the "eval" subcommand on `app`. Its callback prints the scores to stdout and throws
// tolk::Error for unreadable files, invalid UTF-8, line-count mismatches and empty references.
void add_eval_command(CLI::App& app);

}  // namespace tolk

// main() may call it with or without the namespace.
using tolk::add_eval_command;
