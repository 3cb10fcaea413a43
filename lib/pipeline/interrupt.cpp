// SIGINT -> an atomic flag that the reader, the batch workers and the writer check; SIGTERM, SIGHUP and a second
// SIGINT -> unlink the registered temporary files and die of the signal (see interrupt.h).
#include "pipeline/interrupt.h"

#include <signal.h>
#include <unistd.h>

#include <climits>
#include <cstring>

namespace tolk {

namespace {

std::atomic<bool> g_interrupted{false};
static_assert(std::atomic<bool>::is_always_lock_free, "the signal handler needs a lock-free flag");

// Slots written by the owning thread before `used` is set (release) and read by the handler after it (acquire).
struct TempSlot {
    std::atomic<bool> claimed{false};  // owned by a registration
    std::atomic<bool> used{false};     // path is valid
    char path[PATH_MAX];
};
TempSlot g_temps[kMaxTempFiles];
std::atomic<bool> g_fatal_installed{false};

void remove_temp_files() {
    for (TempSlot& slot : g_temps)
        if (slot.used.load(std::memory_order_acquire)) ::unlink(slot.path);
}

// Removes the temporary files, then lets the signal do what it would have done without tolk.
extern "C" void on_fatal_signal(int sig) {
    remove_temp_files();
    ::signal(sig, SIG_DFL);
    ::raise(sig);
}

extern "C" void on_sigint(int sig) {
    if (g_interrupted.exchange(true)) {
        // The second Ctrl-C: the run did not stop soon enough, end it now.
        on_fatal_signal(sig);
        return;
    }
}

// Installs `handler` for `sig`; with keep_ignored, not when the signal was ignored at start (nohup and SIGHUP).
void install(int sig, void (*handler)(int), int flags, bool keep_ignored = false) {
    struct sigaction old {};
    if (keep_ignored && ::sigaction(sig, nullptr, &old) == 0 && old.sa_handler == SIG_IGN) return;
    struct sigaction action {};
    action.sa_handler = handler;
    sigemptyset(&action.sa_mask);
    action.sa_flags = flags;
    ::sigaction(sig, &action, nullptr);
}

void install_fatal_handlers(bool again = false) {
    if (g_fatal_installed.exchange(true) && !again) return;
    install(SIGTERM, on_fatal_signal, SA_RESTART);
    install(SIGHUP, on_fatal_signal, SA_RESTART, /*keep_ignored=*/true);
}

}  // namespace

void install_interrupt_handler() {
    install_fatal_handlers(/*again=*/true);
    install(SIGINT, on_sigint, 0);  // no SA_RESTART: read() returns EINTR
}

const std::atomic<bool>& interrupt_flag() { return g_interrupted; }
bool interrupted() { return g_interrupted.load(); }
void request_interrupt() { g_interrupted.store(true); }

int register_temp_file(const std::string& path) {
    install_fatal_handlers();
    if (path.size() >= PATH_MAX) return -1;
    for (int i = 0; i < kMaxTempFiles; ++i) {
        if (g_temps[i].claimed.exchange(true)) continue;
        std::memcpy(g_temps[i].path, path.c_str(), path.size() + 1);
        g_temps[i].used.store(true, std::memory_order_release);
        return i;
    }
    return -1;
}

void unregister_temp_file(int slot) {
    if (slot < 0 || slot >= kMaxTempFiles) return;
    g_temps[slot].used.store(false, std::memory_order_release);
    g_temps[slot].claimed.store(false, std::memory_order_release);
}

}  // namespace tolk
