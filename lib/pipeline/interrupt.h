// SIGINT handling for corpus runs: the first Ctrl-C asks the run to stop after the batches in flight, so that
// finished lines are flushed and temporary output files removed; a second Ctrl-C kills the process at once.
#pragma once

#include <atomic>

namespace tolk {

// Installs the handler (without SA_RESTART, so a blocking read of stdin returns and the reader sees the flag).
void install_interrupt_handler();

// Set once SIGINT has arrived (or request_interrupt() was called).
const std::atomic<bool>& interrupt_flag();
bool interrupted();
void request_interrupt();

}  // namespace tolk
