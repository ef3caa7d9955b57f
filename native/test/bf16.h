// bf16.h — bf16 on the host for the CUDA checks (tailor_cudacheck, bf16ref.h): a float's bits rounded to
// nearest even (as __float2bfloat16_rn rounds finite values), the value of bits, and vectors of either.
#pragma once
#include <cstdint>
#include <cstring>
#include <vector>

namespace tailor {

inline uint16_t bf16_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return uint16_t((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}
inline float bf16_value(uint16_t b) {
  uint32_t u = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
// f rounded to bf16, as a float
inline float bf16_round(float f) { return bf16_value(bf16_bits(f)); }

// a vector's bf16 bits, those bits' values, and its values rounded to bf16
inline std::vector<uint16_t> bf16_vector(const std::vector<float>& x) {
  std::vector<uint16_t> b(x.size());
  for (size_t i = 0; i < x.size(); i++) b[i] = bf16_bits(x[i]);
  return b;
}
inline std::vector<float> bf16_floats(const std::vector<uint16_t>& b) {
  std::vector<float> f(b.size());
  for (size_t i = 0; i < b.size(); i++) f[i] = bf16_value(b[i]);
  return f;
}
inline std::vector<float> rounded_bf16(const float* x, size_t n) {
  std::vector<float> r(x, x + n);
  for (float& e : r) e = bf16_round(e);
  return r;
}
inline std::vector<float> rounded_bf16(const std::vector<float>& x) { return rounded_bf16(x.data(), x.size()); }

}  // namespace tailor
