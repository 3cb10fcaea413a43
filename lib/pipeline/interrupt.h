// Signal handling for corpus runs. SIGINT: the first Ctrl-C asks the run to stop after the batches in flight, so
// that finished lines are flushed and temporary output files removed; a second Ctrl-C ends the process at once.
// SIGTERM, SIGHUP and that second Ctrl-C first remove the registered temporary output files, then end the process
// with the signal's default action, so no hidden ".OUT.tolk-XXXXXX" file survives them.
#pragma once

#include <atomic>
#include <string>

namespace tolk {

// Installs the handlers (SIGINT without SA_RESTART, so a blocking read of stdin returns and the reader sees the
// flag). SIGHUP stays ignored when the process was started with it ignored (nohup); SIGINT is handled even in a
// background job, where the shell starts it ignored, so that `kill -INT` still stops a run cleanly.
void install_interrupt_handler();

// Set once SIGINT has arrived (or request_interrupt() was called).
const std::atomic<bool>& interrupt_flag();
bool interrupted();
void request_interrupt();

// Temporary files to unlink if a fatal signal ends the process. register_temp_file installs the SIGTERM/SIGHUP
// handlers if needed and returns a slot (-1 when the table of kMaxTempFiles is full or the path is too long: the
// file is then only removed by its owner). Async-signal-safe cleanup: the handler only calls unlink().
inline constexpr int kMaxTempFiles = 64;
int register_temp_file(const std::string& path);
void unregister_temp_file(int slot);

}  // namespace tolk
