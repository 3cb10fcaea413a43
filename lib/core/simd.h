// Short-vector kernels written once over W-float vectors (GCC vector extensions) and compiled three times: 16 floats
// for AVX-512, 8 for AVX2 + FMA, 4 for baseline x86-64 (the build sets no -march), picked at run time.
//
// Why not target_clones on plain loops: GCC's AVX2 clone of a lane loop that calls exp, or of a 16-float generic
// vector, comes out scalar (measured on AMD Zen 3: the vocabulary log-sum-exp took 10% of a greedy run), and the
// "avx2" target leaves FMA off. Here every width gets vectors of its own register size.
//
// A kernel is a struct with `template <int W> [[gnu::always_inline]] static R run(args...)`; simd::call<Kernel>(args)
// runs it at the width the CPU has. always_inline puts the kernel's body inside a function compiled for that target.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

namespace tolk::simd {

template <int W>
struct Types {
    typedef float F __attribute__((vector_size(W * sizeof(float))));
    typedef int32_t I __attribute__((vector_size(W * sizeof(int32_t))));
};
template <int W>
using F = typename Types<W>::F;
template <int W>
using I = typename Types<W>::I;

template <int W>
[[gnu::always_inline]] inline F<W> load(const float* p) {
    F<W> v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

template <int W>
[[gnu::always_inline]] inline void store(float* p, F<W> v) {
    std::memcpy(p, &v, sizeof v);
}

template <int W>
[[gnu::always_inline]] inline F<W> splat(float x) {
    return F<W>{} + x;
}

// Lane-wise a > b ? a : b (a NaN in a is skipped, as the scalar form does).
template <int W>
[[gnu::always_inline]] inline F<W> max(F<W> a, F<W> b) {
    return a > b ? a : b;
}

// exp(t) for t <= 0 (an argument minus the row maximum), lane by lane, as plain arithmetic (no libm call, no
// -ffast-math): t = n*ln2 + r with |r| <= ln2/2, exp(r) by its Taylor polynomial to degree 7 (relative error < 1e-8,
// below float rounding), 2^n from the exponent bits. Arguments below -87 give exp(-87) ~ 1.6e-38 instead of 0:
// nothing next to the maximum's exp(0) = 1. n is t/ln2 rounded with the 1.5*2^23 trick (exact without
// -ffast-math); ln2 is split into a part with few mantissa bits (n * hi is exact) and the rest.
template <int W>
[[gnu::always_inline]] inline F<W> exp_nonpositive(F<W> t) {
    const F<W> floor = splat<W>(-87.0f);
    t = t < floor ? floor : t;
    const F<W> shifted = t * 1.44269504088896341f + 12582912.0f;
    const F<W> n = shifted - 12582912.0f;
    const F<W> r = (t - n * 0.693145751953125f) - n * 1.428606765330187e-06f;
    F<W> p = splat<W>(1.0f / 5040.0f);
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const I<W> bits = (__builtin_convertvector(n, I<W>) + 127) << 23;
    return p * std::bit_cast<F<W>>(bits);
}

// Lanes l and l + W/2 added: the first half of the vector plus the second.
template <int W>
[[gnu::always_inline]] inline F<W / 2> fold(F<W> v) {
    F<W / 2> lo, hi;
    std::memcpy(&lo, &v, sizeof lo);
    std::memcpy(&hi, reinterpret_cast<const char*>(&v) + sizeof lo, sizeof hi);
    return lo + hi;
}

// The sum of 16 lanes held in 16 / W vectors (lane l of vector v is lane v * W + l), always in the same tree:
// x[l] + x[l + 8], then pairs 4 apart, 2 apart, 1 apart. The same float at every width.
template <int W>
[[gnu::always_inline]] inline float sum16(const F<W>* x) {
    F<4> quarter;
    if constexpr (W == 16) {
        quarter = fold<8>(fold<16>(x[0]));
    } else if constexpr (W == 8) {
        quarter = fold<8>(x[0] + x[1]);
    } else {
        static_assert(W == 4);
        quarter = (x[0] + x[2]) + (x[1] + x[3]);
    }
    const F<2> pair = fold<4>(quarter);
    return pair[0] + pair[1];
}

// The widest vectors this CPU runs, capped like oneDNN's kernels (ONEDNN_MAX_CPU_ISA=AVX2 gives avx2 on an
// AVX-512 machine); defined beside the other CPU queries in dnnl/context.cpp.
enum class Level { baseline, avx2, avx512 };
Level level();
// Caps level() at `wanted` (never above what the CPU has), so tests can run every width this machine holds;
// returns the previous cap. Not meant to change while other threads run kernels.
Level limit_level(Level wanted);

template <typename K, typename... A>
[[gnu::target("avx512f,avx512vl,avx512bw,avx512dq,fma")]] auto call_avx512(A... a) {
    return K::template run<16>(a...);
}
template <typename K, typename... A>
[[gnu::target("avx2,fma")]] auto call_avx2(A... a) {
    return K::template run<8>(a...);
}
template <typename K, typename... A>
auto call_baseline(A... a) {
    return K::template run<4>(a...);
}

template <typename K, typename... A>
auto call(A... a) {
    switch (level()) {
        case Level::avx512: return call_avx512<K>(a...);
        case Level::avx2: return call_avx2<K>(a...);
        case Level::baseline: break;
    }
    return call_baseline<K>(a...);
}

}  // namespace tolk::simd
