// Tensor storage, shapes and the half/bfloat16 conversions.
#include "core/tensor.h"

#include "core/heap.h"

#include <cpuid.h>
#include <immintrin.h>

#include <cstdlib>
#include <cstring>
#include <sstream>

namespace tolk {

std::size_t dtype_size(DType dtype) {
    switch (dtype) {
        case DType::f32: return 4;
        case DType::i32: return 4;
        case DType::f16: return 2;
        case DType::bf16: return 2;
    }
    return 0;
}

const char* dtype_name(DType dtype) {
    switch (dtype) {
        case DType::f32: return "F32";
        case DType::i32: return "I32";
        case DType::f16: return "F16";
        case DType::bf16: return "BF16";
    }
    return "?";
}

std::string shape_str(const Shape& shape) {
    std::ostringstream os;
    os << '[';
    for (std::size_t i = 0; i < shape.size(); ++i) os << (i ? "," : "") << shape[i];
    os << ']';
    return os.str();
}

int64_t shape_numel(const Shape& shape) {
    int64_t n = 1;
    for (int64_t d : shape) {
        TOLK_CHECK(d >= 0, "negative dimension in shape ", shape_str(shape));
        n *= d;
    }
    return n;
}

void Tensor::Free::operator()(void* p) const {
    switch (source) {
        case Source::heap: std::free(p); break;
        case Source::pages: unmap_pages(p, mapped); break;
        case Source::huge_pages: unmap_huge(p, mapped); break;
        case Source::scoped: give_back_scoped_block(p, mapped); break;
    }
}

Tensor::Tensor(Shape shape, DType dtype) : dtype_(dtype) {
    resize(std::move(shape));
    // Fresh mappings come zero-filled from the kernel; writing them would only fault in their spare tail.
    const Source source = data_.get_deleter().source;
    if (capacity_ && (source == Source::heap || source == Source::scoped)) std::memset(data_.get(), 0, capacity_);
}

Tensor Tensor::clone() const {
    Tensor t(shape_, dtype_);
    if (nbytes()) std::memcpy(t.raw(), raw(), nbytes());
    return t;
}

int64_t Tensor::dim(int i) const {
    const int r = rank();
    const int j = i < 0 ? i + r : i;
    TOLK_CHECK(j >= 0 && j < r, "dimension ", i, " out of range for shape ", shape_str(shape_));
    return shape_[static_cast<std::size_t>(j)];
}

void Tensor::resize(Shape shape) {
    const std::size_t need = static_cast<std::size_t>(shape_numel(shape)) * dtype_size(dtype_);
    if (need > capacity_) {
        if (need >= kHugePageBytes && !HeapReuseScope::active()) {
            // Large buffers (K/V caches, logits of wide beams) in 2 MiB pages: see heap.h.
            const std::size_t bytes = (need + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
            data_ = std::unique_ptr<void, Free>(map_huge(bytes), Free{bytes, Source::huge_pages});
            capacity_ = bytes;
        } else if (need >= kHugePageBytes || (need >= kPrefaultBytes && !HeapReuseScope::active())) {
            // Batch buffers: faulted in by the kernel in one call (see heap.h), already zero-filled. So are the
            // large conversion buffers of a load (the vocabulary in f32: 8 MB for models/en-de): written whole and
            // freed right away, they gain nothing from 2 MiB pages, and whether the kernel grants those varies
            // from run to run. With them, the float32 cold start's peak was 46.7-53.8 MiB (median 53.7) over 12
            // alternating runs on an AMD EPYC (THP "madvise"), 47.0-50.8 (median 48.6) without
            // (scripts/bench/alternate.py, one short line).
            const std::size_t bytes = (need + kSmallPageBytes - 1) / kSmallPageBytes * kSmallPageBytes;
            data_ = std::unique_ptr<void, Free>(map_prefaulted(bytes), Free{bytes, Source::pages});
            capacity_ = bytes;
        } else if (need >= kPrefaultBytes) {
            // While a model loads: a conversion buffer, in the pages of one freed before it (see HeapReuseScope).
            std::size_t bytes = 0;
            void* p = take_scoped_block(need, &bytes);
            data_ = std::unique_ptr<void, Free>(p, Free{bytes, Source::scoped});
            capacity_ = bytes;
        } else {
            const std::size_t bytes = (need + 63) / 64 * 64;
            void* p = std::aligned_alloc(64, bytes);
            if (!p) throw std::bad_alloc();
            data_ = std::unique_ptr<void, Free>(p, Free());
            capacity_ = bytes;
        }
    }
    shape_ = std::move(shape);
}

void Tensor::reshape(Shape shape) {
    TOLK_CHECK(shape_numel(shape) == numel(), "cannot reshape ", shape_str(shape_), " to ", shape_str(shape));
    shape_ = std::move(shape);
}

void Tensor::check_dtype(DType want) const {
    TOLK_CHECK(dtype_ == want, "tensor has dtype ", dtype_name(dtype_), ", expected ", dtype_name(want));
}

float f16_to_f32(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else {  // subnormal half: normalise
            exp = 127 - 15 + 1;
            while (!(mant & 0x400u)) { mant <<= 1; --exp; }
            mant &= 0x3ffu;
            bits = sign | (exp << 23) | (mant << 13);
        }
    } else if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

float bf16_to_f32(uint16_t b) {
    const uint32_t bits = static_cast<uint32_t>(b) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

uint16_t f32_to_bf16(float f) {
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);  // NaN stays NaN
    bits += 0x7fffu + ((bits >> 16) & 1u);
    return static_cast<uint16_t>(bits >> 16);
}

namespace {

// Half to float is exact, so the hardware conversion gives the same bits as f16_to_f32 (NaNs stay NaNs).
__attribute__((target("avx,f16c"))) void f16_to_f32_f16c(const unsigned char* src, float* dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * i));
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
    }
    for (; i < n; ++i) {
        uint16_t bits;
        std::memcpy(&bits, src + 2 * i, 2);
        dst[i] = f16_to_f32(bits);
    }
}

// F16C from CPUID leaf 1 (ECX bit 29): clang 14's __builtin_cpu_supports does not know "f16c". Its
// instructions are VEX-encoded, so the OS must also save AVX state, which __builtin_cpu_supports("avx") checks.
bool cpu_has_f16c() {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return false;
    return (ecx & (1u << 29)) != 0 && __builtin_cpu_supports("avx");
}

}  // namespace

void f16_to_f32_n(const void* src, float* dst, int64_t n) {
    const auto* bytes = static_cast<const unsigned char*>(src);
    static const bool has_f16c = cpu_has_f16c();
    if (has_f16c) return f16_to_f32_f16c(bytes, dst, n);
    for (int64_t i = 0; i < n; ++i) {
        uint16_t bits;
        std::memcpy(&bits, bytes + 2 * i, 2);
        dst[i] = f16_to_f32(bits);
    }
}

void bf16_to_f32_n(const void* src, float* dst, int64_t n) {
    const auto* bytes = static_cast<const unsigned char*>(src);
    for (int64_t i = 0; i < n; ++i) {  // a shift: the compiler vectorises it
        uint16_t bits;
        std::memcpy(&bits, bytes + 2 * i, 2);
        dst[i] = bf16_to_f32(bits);
    }
}

}  // namespace tolk
