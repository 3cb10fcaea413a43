// The process's heap policy (glibc malloc): large blocks are mapped on their own and returned when freed, except
// while a model loads, when its short-lived conversion buffers reuse the same pages.
#pragma once

#include <cstddef>

namespace tolk {

// Blocks of at least `bytes` get their own mapping and go back to the system when freed (a fixed threshold:
// glibc would otherwise raise it after the first such free and keep later blocks in a heap that never shrinks).
// The app sets this once at start; HeapReuseScope restores it.
void set_large_block_threshold(std::size_t bytes);

// While alive, freed blocks of any size stay in the heap and are handed out again. Loading converts every
// tensor to f32 in a buffer freed right after packing: mapped afresh each time, each buffer page is faulted in
// anew (~12 us a page on a virtual machine, measured; a third of the cold start). On exit the free pages go back
// to the system (malloc_trim) and the threshold returns to its set value, so the peak memory is unchanged.
class HeapReuseScope {
public:
    HeapReuseScope();
    ~HeapReuseScope();
    HeapReuseScope(const HeapReuseScope&) = delete;
    HeapReuseScope& operator=(const HeapReuseScope&) = delete;
};

}  // namespace tolk
