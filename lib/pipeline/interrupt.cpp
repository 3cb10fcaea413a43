// SIGINT -> an atomic flag that the reader, the batch workers and the writer check (see interrupt.h).
#include "pipeline/interrupt.h"

#include <csignal>

namespace tolk {

namespace {

std::atomic<bool> g_interrupted{false};
static_assert(std::atomic<bool>::is_always_lock_free, "the signal handler needs a lock-free flag");

extern "C" void on_sigint(int) {
    g_interrupted.store(true);
    // Restore the default action: if the run does not stop soon enough, a second Ctrl-C ends it.
    std::signal(SIGINT, SIG_DFL);
}

}  // namespace

void install_interrupt_handler() {
    struct sigaction action {};
    action.sa_handler = on_sigint;
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0;  // no SA_RESTART: read() returns EINTR
    sigaction(SIGINT, &action, nullptr);
}

const std::atomic<bool>& interrupt_flag() { return g_interrupted; }
bool interrupted() { return g_interrupted.load(); }
void request_interrupt() { g_interrupted.store(true); }

}  // namespace tolk
