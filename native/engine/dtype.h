// dtype.h — the weight encodings the loaders accept and their conversion to F32.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace tailor {

enum class DType { F32, F16, BF16, Q8_0 };

const char* dtype_name(DType t);
// bytes taken by n elements (n must be a multiple of 32 for Q8_0); throws E_FORMAT otherwise
uint64_t dtype_bytes(DType t, uint64_t n);
// decode n elements at src (any alignment) into dst
void dtype_to_f32(DType t, const uint8_t* src, uint64_t n, float* dst);

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);
float bf16_to_f32(uint16_t h);

}  // namespace tailor
