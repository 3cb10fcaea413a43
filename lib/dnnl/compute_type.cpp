// Compute type names, the per-CPU choice behind "auto", and the matmul precision each type gives each layer.
#include "dnnl/compute_type.h"

#include "core/error.h"
#include "dnnl/context.h"

namespace tolk {

ComputeType compute_type_from_name(std::string_view name) {
    if (name == "auto") return auto_compute_type();
    if (name == "float32" || name == "float" || name == "f32") return ComputeType::float32;
    if (name == "int8") return ComputeType::int8;
    if (name == "bfloat16" || name == "bf16") return ComputeType::bfloat16;
    if (name == "int8_bfloat16") return ComputeType::int8_bfloat16;
    TOLK_FAIL("compute type '", name, "' is not supported (expected auto, float32, int8, bfloat16 or int8_bfloat16)");
}

const char* compute_type_name(ComputeType type) {
    switch (type) {
        case ComputeType::float32: return "float32";
        case ComputeType::int8: return "int8";
        case ComputeType::bfloat16: return "bfloat16";
        case ComputeType::int8_bfloat16: return "int8_bfloat16";
    }
    return "?";
}

const char* matmul_type_name(MatmulType type) {
    switch (type) {
        case MatmulType::f32: return "f32";
        case MatmulType::bf16: return "bf16";
        case MatmulType::s8: return "s8";
    }
    return "?";
}

ComputeType auto_compute_type() { return cpu_has_avx2() ? ComputeType::int8 : ComputeType::float32; }

bool compute_type_supported(ComputeType type, std::string* why) {
    const bool needs_bf16 = type == ComputeType::bfloat16 || type == ComputeType::int8_bfloat16;
    if (needs_bf16 && !cpu_has_avx512()) {
        if (why) *why = "bfloat16 matmuls need AVX-512 in oneDNN 2.6; this CPU runs " + cpu_isa_name();
        return false;
    }
    return true;
}

MatmulType projection_matmul_type(ComputeType type) {
    switch (type) {
        case ComputeType::float32: return MatmulType::f32;
        case ComputeType::bfloat16: return MatmulType::bf16;
        case ComputeType::int8:
        case ComputeType::int8_bfloat16: return MatmulType::s8;
    }
    return MatmulType::f32;
}

MatmulType vocabulary_matmul_type(ComputeType type) {
    switch (type) {
        case ComputeType::float32: return MatmulType::f32;
        case ComputeType::int8: return MatmulType::s8;
        case ComputeType::bfloat16:
        case ComputeType::int8_bfloat16: return MatmulType::bf16;
    }
    return MatmulType::f32;
}

}  // namespace tolk
