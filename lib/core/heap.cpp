// glibc's mallopt/malloc_trim behind the heap policy of heap.h (other C libraries keep their defaults), and the
// 2 MiB-aligned mappings behind large tensors and PageArena.
#include "core/heap.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <new>
#include <utility>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace tolk {
namespace {

std::atomic<std::size_t> g_threshold{0};  // 0: never set, glibc's dynamic default applies
std::atomic<int> g_reuse_scopes{0};

// The scopes' cache of freed mappings (take_scoped_block): address and size.
std::mutex g_scoped_mutex;
std::vector<std::pair<void*, std::size_t>> g_scoped_blocks;

constexpr std::size_t kLoadThreshold = std::size_t{64} << 20;  // above any one tensor of a Marian model
// After loading, the top of a heap is given back to the system only past this much free memory, and a heap grows
// by at least kTopPad at a time: a worker's batch buffers below the mapping threshold come and go with every
// batch, and trimming each time made the next batch fault the same pages in again (and, in a worker thread's
// heap, pay an mprotect with a TLB flush to grow it back).
constexpr std::size_t kDefaultTrimThreshold = std::size_t{16} << 20;
constexpr int kTopPad = 1 << 20;

// An arena chunk reserves this much address space (untouched pages cost no memory); a larger request gets a
// chunk of its own size.
constexpr std::size_t kArenaChunkBytes = std::size_t{64} << 20;

std::size_t round_up(std::size_t x, std::size_t multiple) { return (x + multiple - 1) / multiple * multiple; }

}  // namespace

void set_large_block_threshold(std::size_t bytes) {
    g_threshold = bytes;
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, static_cast<int>(bytes));
#endif
}

bool HeapReuseScope::active() { return g_reuse_scopes.load(std::memory_order_relaxed) > 0; }

HeapReuseScope::HeapReuseScope() {
    ++g_reuse_scopes;
#if defined(__GLIBC__)
    if (g_threshold.load() == 0) return;
    mallopt(M_MMAP_THRESHOLD, static_cast<int>(kLoadThreshold));
    // Nor is the top of the heap given back while loading: a conversion buffer freed at the top would otherwise
    // be trimmed away (glibc trims past 128 KiB once a fixed mmap threshold is set) and faulted in again by the
    // next one.
    mallopt(M_TRIM_THRESHOLD, static_cast<int>(kLoadThreshold));
#endif
}

HeapReuseScope::~HeapReuseScope() {
    {
        std::lock_guard lock(g_scoped_mutex);
        if (--g_reuse_scopes == 0) {
            for (const auto& [p, bytes] : g_scoped_blocks) unmap_pages(p, bytes);
            g_scoped_blocks.clear();
            g_scoped_blocks.shrink_to_fit();
        }
    }
#if defined(__GLIBC__)
    const std::size_t threshold = g_threshold.load();
    if (threshold == 0) return;
    mallopt(M_TRIM_THRESHOLD, static_cast<int>(kDefaultTrimThreshold));
    mallopt(M_TOP_PAD, kTopPad);
    malloc_trim(0);
    mallopt(M_MMAP_THRESHOLD, static_cast<int>(threshold));
#endif
}

void release_free_heap() {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}

void* map_huge(std::size_t bytes) {
    if (bytes == 0 || bytes > (std::size_t{1} << 46)) throw std::bad_alloc();
    const std::size_t size = round_up(bytes, kHugePageBytes);
    // Map one huge page more than needed and cut the unaligned ends off, so the region starts on a 2 MiB boundary.
    const std::size_t span = size + kHugePageBytes;
    void* raw = ::mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw == MAP_FAILED) throw std::bad_alloc();
    const auto start = reinterpret_cast<std::uintptr_t>(raw);
    const std::uintptr_t aligned = round_up(start, kHugePageBytes);
    if (aligned > start) ::munmap(raw, aligned - start);
    const std::uintptr_t end = start + span;
    if (end > aligned + size) ::munmap(reinterpret_cast<void*>(aligned + size), end - (aligned + size));
    void* p = reinterpret_cast<void*>(aligned);
#if defined(MADV_HUGEPAGE)
    ::madvise(p, size, MADV_HUGEPAGE);  // a hint: refused (THP disabled) it changes nothing
#endif
    return p;
}

void unmap_huge(void* p, std::size_t bytes) {
    if (p) ::munmap(p, round_up(bytes, kHugePageBytes));
}

void* map_prefaulted(std::size_t bytes) {
    if (bytes == 0 || bytes > (std::size_t{1} << 46)) throw std::bad_alloc();
    void* p = ::mmap(nullptr, round_up(bytes, kSmallPageBytes), PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    return p;
}

void unmap_pages(void* p, std::size_t bytes) {
    if (p) ::munmap(p, round_up(bytes, kSmallPageBytes));
}

void* take_scoped_block(std::size_t bytes, std::size_t* capacity) {
    const std::size_t size = round_up(bytes, kSmallPageBytes);
    {
        std::lock_guard lock(g_scoped_mutex);
        auto best = g_scoped_blocks.end();
        for (auto it = g_scoped_blocks.begin(); it != g_scoped_blocks.end(); ++it)
            if (it->second >= size && (best == g_scoped_blocks.end() || it->second < best->second)) best = it;
        if (best != g_scoped_blocks.end()) {
            void* p = best->first;
            *capacity = best->second;
            g_scoped_blocks.erase(best);
            return p;
        }
        // Every cached block is too small for this one, and likely for what follows (a model's tensors come in a
        // few sizes): unmapped, so that the cache never holds more than the blocks that can still be reused.
        for (const auto& [p, cached] : g_scoped_blocks) unmap_pages(p, cached);
        g_scoped_blocks.clear();
    }
    *capacity = size;
    return map_prefaulted(size);
}

void give_back_scoped_block(void* p, std::size_t capacity) {
    if (!p) return;
    {
        std::lock_guard lock(g_scoped_mutex);
        if (g_reuse_scopes.load() > 0) {
            g_scoped_blocks.emplace_back(p, capacity);
            return;
        }
    }
    unmap_pages(p, capacity);
}

PageArena::~PageArena() {
    for (const Chunk& c : chunks_) unmap_huge(c.base, c.size);
}

void* PageArena::allocate(std::size_t bytes) {
    const std::size_t need = round_up(bytes == 0 ? 1 : bytes, 64);
    std::lock_guard lock(mutex_);
    if (chunks_.empty() || chunks_.back().size - chunks_.back().used < need) {
        const std::size_t size = round_up(std::max(need, kArenaChunkBytes), kHugePageBytes);
        chunks_.reserve(chunks_.size() + 1);
        chunks_.push_back({static_cast<char*>(map_huge(size)), size, 0});
    }
    Chunk& c = chunks_.back();
    void* p = c.base + c.used;
    c.used += need;
    return p;
}

std::size_t PageArena::used() const {
    std::lock_guard lock(mutex_);
    std::size_t total = 0;
    for (const Chunk& c : chunks_) total += c.used;
    return total;
}

}  // namespace tolk
