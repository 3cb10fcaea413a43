// Compute types, as CTranslate2 users know them: the precision the model's matrix products run in. Weights are
// converted once at load; activations are converted (bf16) or quantized per row (int8) at run time.
#pragma once

#include <string>
#include <string_view>

namespace tolk {

enum class ComputeType {
    float32,        // every matmul in f32: the same numbers as the PyTorch reference
    int8,           // projections and the vocabulary projection in int8 (s8 weights per output channel, s8
                    // activations per row); attention, softmax and layer norm in f32
    bfloat16,       // projections and the vocabulary projection in bf16 with f32 accumulation
    int8_bfloat16,  // projections in int8, the vocabulary projection in bf16 (kinder to the logits)
};

// The precision of one matmul's weights and inputs; results are always f32.
enum class MatmulType { f32, bf16, s8 };

// "float32", "int8", "bfloat16", "int8_bfloat16", or "auto" (the fastest type this CPU runs well, see
// auto_compute_type). Throws tolk::Error naming the value otherwise.
ComputeType compute_type_from_name(std::string_view name);
const char* compute_type_name(ComputeType type);
const char* matmul_type_name(MatmulType type);

// int8 where oneDNN has fast int8 kernels for this CPU (AVX2 and up: VNNI dot products, or u8 x s8 multiply-adds
// without VNNI), else float32. Measured on AMD Zen 3 (AVX2) and Zen 5 (AVX-512 VNNI): int8 1.4x-3x float32's speed,
// Multi30k BLEU within 0.3 of float32 (README "Compute types" and "Benchmarks").
ComputeType auto_compute_type();

// Whether oneDNN 2.6 runs `type` on this CPU; when not, `why` says what is missing. bf16 matmuls need AVX-512
// (fast with AVX-512 BF16); int8 runs everywhere from AVX2 up.
bool compute_type_supported(ComputeType type, std::string* why = nullptr);

// The matmul precision of the projections (attention and feed-forward) and of the vocabulary projection.
MatmulType projection_matmul_type(ComputeType type);
MatmulType vocabulary_matmul_type(ComputeType type);

}  // namespace tolk
