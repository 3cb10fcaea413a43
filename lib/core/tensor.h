// Tensor: a dense, row-major, 64-byte aligned owning buffer with a dtype and a shape.
// Views for oneDNN are expressed by memory descriptors in lib/dnnl, not here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"

namespace tolk {

enum class DType { f32, f16, bf16, i32 };

std::size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& shape);  // "[2,3,4]"
int64_t shape_numel(const Shape& shape);

class Tensor {
public:
    Tensor() = default;
    explicit Tensor(Shape shape, DType dtype = DType::f32);  // zero-initialised

    Tensor(Tensor&&) noexcept = default;
    Tensor& operator=(Tensor&&) noexcept = default;
    Tensor(const Tensor&) = delete;  // copies are explicit: clone()
    Tensor& operator=(const Tensor&) = delete;
    Tensor clone() const;

    const Shape& shape() const { return shape_; }
    int64_t dim(int i) const;  // negative i counts from the end
    int rank() const { return static_cast<int>(shape_.size()); }
    int64_t numel() const { return shape_numel(shape_); }
    DType dtype() const { return dtype_; }
    std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * dtype_size(dtype_); }
    bool empty() const { return numel() == 0; }

    // Changes the shape, keeping the buffer when it is large enough (so steady-state loops never
    // allocate). Contents are unspecified after a resize that grows.
    void resize(Shape shape);
    // Whether resize(shape) would keep the current allocation (and so the contents).
    bool fits(const Shape& shape) const {
        return static_cast<std::size_t>(shape_numel(shape)) * dtype_size(dtype_) <= capacity_;
    }
    // Same element count, new shape; the data is untouched.
    void reshape(Shape shape);

    void* raw() { return data_.get(); }
    const void* raw() const { return data_.get(); }
    template <typename T> T* data() { return static_cast<T*>(raw()); }
    template <typename T> const T* data() const { return static_cast<const T*>(raw()); }
    float* f32() { check_dtype(DType::f32); return data<float>(); }
    const float* f32() const { check_dtype(DType::f32); return data<float>(); }
    int32_t* i32() { check_dtype(DType::i32); return data<int32_t>(); }
    const int32_t* i32() const { check_dtype(DType::i32); return data<int32_t>(); }

private:
    // Blocks of kHugePageBytes or more come from map_huge, blocks of kPrefaultBytes or more from map_prefaulted, or
    // while a model loads from the HeapReuseScope's cache (their mapped size is kept to unmap or hand them back),
    // smaller ones from the C heap.
    enum class Source : uint8_t { heap, pages, huge_pages, scoped };
    struct Free {
        Free() noexcept = default;  // from the C heap
        Free(std::size_t mapped_bytes, Source from) noexcept : mapped(mapped_bytes), source(from) {}
        std::size_t mapped = 0;
        Source source = Source::heap;
        void operator()(void* p) const;
    };
    void check_dtype(DType want) const;

    Shape shape_;
    DType dtype_ = DType::f32;
    std::size_t capacity_ = 0;  // bytes
    std::unique_ptr<void, Free> data_;
};

// Conversions used by the loader (IEEE half and bfloat16 to float).
float f16_to_f32(uint16_t h);
float bf16_to_f32(uint16_t b);
uint16_t f32_to_bf16(float f);  // round to nearest even
// n elements from `src` (little-endian halves or bfloat16s, any alignment) to `dst`; the same values as the
// one-element functions, with the CPU's F16C conversion where it has one.
void f16_to_f32_n(const void* src, float* dst, int64_t n);
void bf16_to_f32_n(const void* src, float* dst, int64_t n);

}  // namespace tolk
