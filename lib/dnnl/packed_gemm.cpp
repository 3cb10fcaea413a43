// Linear's products on oneDNN's packed gemm. The gemm speaks column-major BLAS: y [rows, n] row-major is the
// column-major C [n, rows] = A B with A = W (stored [n, k] row-major, i.e. column-major [k, n]: transposed, lda k)
// and B = x^T (x [rows, k] row-major is column-major [k, rows]: as is, ldb k); ldc n. W is the packed operand.
#include "dnnl/packed_gemm.h"

#include <dnnl_types.h>

#include "core/error.h"
#include "dnnl/context.h"

// Exported by libdnnl 2.6 (src/cpu/gemm/gemm_pack.hpp there; dim_t is dnnl_dim_t). "identifier" names the packed
// matrix ("A"), trans "N"/"T" as in BLAS or "P" for an operand packed before.
namespace dnnl::impl::cpu {
dnnl_status_t sgemm_pack_get_size(const char* identifier, const char* transa, const char* transb,
                                  const dnnl_dim_t* M, const dnnl_dim_t* N, const dnnl_dim_t* K,
                                  const dnnl_dim_t* lda, const dnnl_dim_t* ldb, size_t* size, bool* pack);
dnnl_status_t gemm_s8u8s32_pack_get_size(const char* identifier, const char* transa, const char* transb,
                                         const dnnl_dim_t* M, const dnnl_dim_t* N, const dnnl_dim_t* K,
                                         const dnnl_dim_t* lda, const dnnl_dim_t* ldb, size_t* size, bool* pack);
dnnl_status_t sgemm_pack(const char* identifier, const char* transa, const char* transb, const dnnl_dim_t* M,
                         const dnnl_dim_t* N, const dnnl_dim_t* K, const dnnl_dim_t* lda, const dnnl_dim_t* ldb,
                         const float* src, float* dst);
dnnl_status_t gemm_s8u8s32_pack(const char* identifier, const char* transa, const char* transb,
                                const dnnl_dim_t* M, const dnnl_dim_t* N, const dnnl_dim_t* K, const dnnl_dim_t* lda,
                                const dnnl_dim_t* ldb, const void* src, void* dst);
dnnl_status_t sgemm_compute(const char* transa, const char* transb, const dnnl_dim_t* M, const dnnl_dim_t* N,
                            const dnnl_dim_t* K, const float* A, const dnnl_dim_t* lda, const float* B,
                            const dnnl_dim_t* ldb, const float* beta, float* C, const dnnl_dim_t* ldc);
dnnl_status_t gemm_s8u8s32_compute(const char* transa, const char* transb, const char* offsetc, const dnnl_dim_t* M,
                                   const dnnl_dim_t* N, const dnnl_dim_t* K, const int8_t* A, const dnnl_dim_t* lda,
                                   const uint8_t* B, const dnnl_dim_t* ldb, const float* beta, int32_t* C,
                                   const dnnl_dim_t* ldc, const int32_t* co);
}  // namespace dnnl::impl::cpu

namespace tolk::packed_gemm {

namespace gemm = dnnl::impl::cpu;

namespace {
// The row count the packing is laid out for (with one thread the panels do not depend on it).
constexpr dnnl_dim_t kPackingRows = 32;

// The gemm lays the packed weights out for the calling thread's OpenMP thread count and later runs every product
// with exactly that split. Packed for two threads on one thread and multiplied by another one with two (a worker
// of tolk --threads 2), products of 48 rows and more came out wrong (oneDNN 2.6, int8, limited to AVX2: garbage
// translations), so the weights are always packed for one thread, and the products run on the calling thread
// alone (one thread per worker is tolk's default for corpora anyway).
class OneThread {
public:
    OneThread() : previous_(num_threads()) { set_num_threads(1); }
    ~OneThread() { set_num_threads(previous_); }
    OneThread(const OneThread&) = delete;
    OneThread& operator=(const OneThread&) = delete;

private:
    int previous_;
};
}  // namespace

std::size_t packed_size(Kind kind, int64_t n, int64_t k) {
    const dnnl_dim_t M = n, N = kPackingRows, K = k, lda = k, ldb = k;
    const OneThread one_thread;
    std::size_t size = 0;
    bool copied = true;
    const dnnl_status_t status =
        kind == Kind::f32 ? gemm::sgemm_pack_get_size("A", "T", "N", &M, &N, &K, &lda, &ldb, &size, &copied)
                          : gemm::gemm_s8u8s32_pack_get_size("A", "T", "N", &M, &N, &K, &lda, &ldb, &size, &copied);
    return status == dnnl_success ? size : 0;
}

void pack(Kind kind, const void* w, int64_t n, int64_t k, void* packed, const char* what) {
    const dnnl_dim_t M = n, N = kPackingRows, K = k, lda = k, ldb = k;
    const OneThread one_thread;
    const dnnl_status_t status =
        kind == Kind::f32
            ? gemm::sgemm_pack("A", "T", "N", &M, &N, &K, &lda, &ldb, static_cast<const float*>(w),
                               static_cast<float*>(packed))
            : gemm::gemm_s8u8s32_pack("A", "T", "N", &M, &N, &K, &lda, &ldb, w, packed);
    TOLK_CHECK(status == dnnl_success, "oneDNN cannot pack the weights of ", what, " [", n, ",", k,
               "] for its gemm (status ", static_cast<int>(status), ")");
}

void multiply_f32(const void* packed, int64_t n, int64_t k, const float* x, int64_t rows, float* y, bool accumulate,
                  const char* what) {
    const dnnl_dim_t M = n, N = rows, K = k, lda = k, ldb = k, ldc = n;
    const float beta = accumulate ? 1.0f : 0.0f;
    const dnnl_status_t status =
        gemm::sgemm_compute("P", "N", &M, &N, &K, static_cast<const float*>(packed), &lda, x, &ldb, &beta, y, &ldc);
    TOLK_CHECK(status == dnnl_success, what, ": oneDNN's packed gemm failed on ", rows, " rows (status ",
               static_cast<int>(status), ")");
}

void multiply_u8s8(const void* packed, int64_t n, int64_t k, const uint8_t* x, int64_t rows, int32_t* y,
                   const char* what) {
    const dnnl_dim_t M = n, N = rows, K = k, lda = k, ldb = k, ldc = n;
    const float beta = 0.0f;
    const int32_t offset = 0;
    const dnnl_status_t status = gemm::gemm_s8u8s32_compute("P", "N", "F", &M, &N, &K,
                                                            static_cast<const int8_t*>(packed), &lda, x, &ldb, &beta,
                                                            y, &ldc, &offset);
    TOLK_CHECK(status == dnnl_success, what, ": oneDNN's packed int8 gemm failed on ", rows, " rows (status ",
               static_cast<int>(status), ")");
}

}  // namespace tolk::packed_gemm
