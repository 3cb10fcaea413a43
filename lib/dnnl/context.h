// DnnlContext: one thread's oneDNN state (a stream on the process-wide CPU engine and every primitive this
// thread has built, cached by shape), and the thread-count control for --threads.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace tolk {

class DnnlContext {
public:
    DnnlContext();
    ~DnnlContext();
    DnnlContext(const DnnlContext&) = delete;
    DnnlContext& operator=(const DnnlContext&) = delete;

    // Primitives built so far by this context, one line each: "<op and shapes> -> <impl_info_str()>".
    // Tests use it to check that the hot path never runs a reference ("ref") kernel.
    std::vector<std::string> primitive_report() const;
    std::vector<std::string> implementations() const;  // the impl_info_str() of each cached primitive
    std::size_t cached_primitives() const;
    // Drops every cached primitive (they are rebuilt on demand).
    void clear();
    // Keeps at most n primitives (default 1,024), dropping the least recently used ones.
    void set_cache_capacity(std::size_t n);

    struct Impl;
    Impl& impl() { return *impl_; }

private:
    std::unique_ptr<Impl> impl_;
};

// Sets the number of threads oneDNN (OpenMP) uses for work started from the calling thread; n <= 0 keeps the
// default (all cores).
void set_num_threads(int n);
// The number of threads the next oneDNN call from this thread will use.
int num_threads();

// The instruction set oneDNN runs its kernels with on this CPU (after ONEDNN_MAX_CPU_ISA, if set), in oneDNN's
// own spelling: "avx2", "avx512_core", "avx512_core_vnni", "avx512_core_bf16", ...
std::string cpu_isa_name();
// Whether that instruction set includes AVX2, AVX-512 (oneDNN 2.6 has its brgemm matmul kernels only from there on),
// AVX-512 VNNI (int8 dot products) and AVX-512 BF16.
bool cpu_has_avx2();
bool cpu_has_avx512();
bool cpu_has_vnni();
bool cpu_has_bf16();

}  // namespace tolk
