// The process's heap policy (glibc malloc): large blocks are mapped on their own and returned when freed, except
// while a model loads, when its short-lived conversion buffers reuse the same pages. Also the page-level memory
// behind large tensors and packed weights, backed by 2 MiB pages where the kernel allows.
#pragma once

#include <cstddef>
#include <mutex>
#include <vector>

namespace tolk {

// Blocks of at least `bytes` get their own mapping and go back to the system when freed (a fixed threshold:
// glibc would otherwise raise it after the first such free and keep later blocks in a heap that never shrinks).
// The app sets this once at start; HeapReuseScope restores it.
void set_large_block_threshold(std::size_t bytes);

// While alive, freed blocks stay and are handed out again. Loading converts every tensor to f32 in a buffer freed
// right after packing: mapped afresh each time, each buffer page is faulted in anew (~12 us a page on a virtual
// machine, measured; a third of the cold start). Small blocks stay in the C heap; Tensor's blocks of
// kPrefaultBytes up to kHugePageBytes wait in the scope's own cache of mappings (take_scoped_block), outside the
// heap, where the small long-lived allocations made between them (biases, names) would keep the heap from
// shrinking back. On exit the free pages go back to the system (malloc_trim, the cached mappings unmapped) and the
// threshold returns to its set value.
class HeapReuseScope {
public:
    // True while a scope is alive: Tensor then takes blocks below kHugePageBytes from the C heap or the scope's
    // cache, where they reuse the pages of the buffers freed before them, instead of prefaulted mappings of their
    // own, and larger blocks in prefaulted 4 KiB pages instead of 2 MiB ones.
    static bool active();

    HeapReuseScope();
    ~HeapReuseScope();
    HeapReuseScope(const HeapReuseScope&) = delete;
    HeapReuseScope& operator=(const HeapReuseScope&) = delete;
};

// Gives the free pages of every thread's C heap back to the system now (glibc's malloc_trim; elsewhere nothing).
void release_free_heap();

// Huge pages. Touching a fresh 4 KiB page costs a page fault (~11 us on the virtual machines measured here: 64 MiB
// written one byte a page took 172 ms); the same 64 MiB in 2 MiB pages took 4 ms. Linux gives anonymous memory 2 MiB
// pages when transparent huge pages are enabled ("always", or "madvise" with MADV_HUGEPAGE, which we request) and
// the region is 2 MiB aligned; elsewhere the memory is ordinary pages and nothing else changes. The cost is memory:
// a touched 2 MiB page is resident whole, so only blocks of at least kHugePageBytes are mapped this way.
constexpr std::size_t kHugePageBytes = std::size_t{2} << 20;

// A private anonymous mapping of at least `bytes` (rounded up to whole 2 MiB pages), 2 MiB aligned, zero-filled
// by the kernel; throws std::bad_alloc when the system refuses. Release with unmap_huge(p, bytes).
void* map_huge(std::size_t bytes);
void unmap_huge(void* p, std::size_t bytes);

// Blocks from kPrefaultBytes up to kHugePageBytes: a private anonymous mapping of `bytes` rounded up to whole
// 4 KiB pages, all of them faulted in by the kernel inside the mmap call (MAP_POPULATE), zero-filled. Such a
// block (a batch buffer: a K/V cache, a layer's activations) is about to be written whole, and a page the mmap
// call fills costs a fraction of a page fault taken on first write (~11 us each on the virtual machines
// measured here, where a trap into the kernel is the expensive part). Release with unmap_pages(p, bytes).
constexpr std::size_t kPrefaultBytes = std::size_t{128} << 10;
constexpr std::size_t kSmallPageBytes = 4096;
void* map_prefaulted(std::size_t bytes);
void unmap_pages(void* p, std::size_t bytes);

// The smallest mapping in the HeapReuseScope's cache that holds `bytes` (its old contents still in it), or, when
// none does, a new map_prefaulted one (the cached ones, all smaller, are unmapped); its size goes to *capacity.
void* take_scoped_block(std::size_t bytes, std::size_t* capacity);
// Hands a block from take_scoped_block back: into the cache while a scope is alive, unmapped otherwise.
void give_back_scoped_block(void* p, std::size_t capacity);

// Memory that lives as long as a model: its packed weights and tables, handed out in order from large mapped
// chunks (map_huge), so that small tensors share 2 MiB pages instead of each faulting in its own 4 KiB ones.
// Nothing is freed before the arena is destroyed. Thread-safe.
class PageArena {
public:
    PageArena() = default;
    ~PageArena();
    PageArena(const PageArena&) = delete;
    PageArena& operator=(const PageArena&) = delete;

    // `bytes` of 64-byte aligned memory, zero-filled.
    void* allocate(std::size_t bytes);
    // Bytes handed out so far (alignment included).
    std::size_t used() const;

private:
    struct Chunk {
        char* base;
        std::size_t size;
        std::size_t used;
    };
    mutable std::mutex mutex_;
    std::vector<Chunk> chunks_;
};

}  // namespace tolk
