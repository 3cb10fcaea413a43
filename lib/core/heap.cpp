// glibc's mallopt/malloc_trim behind the heap policy of heap.h; other C libraries keep their defaults.
#include "core/heap.h"

#include <atomic>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace tolk {
namespace {

std::atomic<std::size_t> g_threshold{0};  // 0: never set, glibc's dynamic default applies

constexpr std::size_t kLoadThreshold = std::size_t{64} << 20;  // above any one tensor of a Marian model

}  // namespace

void set_large_block_threshold(std::size_t bytes) {
    g_threshold = bytes;
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, static_cast<int>(bytes));
#endif
}

HeapReuseScope::HeapReuseScope() {
#if defined(__GLIBC__)
    if (g_threshold.load() != 0) mallopt(M_MMAP_THRESHOLD, static_cast<int>(kLoadThreshold));
#endif
}

HeapReuseScope::~HeapReuseScope() {
#if defined(__GLIBC__)
    const std::size_t threshold = g_threshold.load();
    if (threshold == 0) return;
    malloc_trim(0);
    mallopt(M_MMAP_THRESHOLD, static_cast<int>(threshold));
#endif
}

}  // namespace tolk
