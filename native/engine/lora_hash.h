// lora_hash.h — the counter-based generator behind LoRA's dropout masks, header-only so that the CPU
// (lora.cpp, train_graph.cpp) and the CUDA kernels (native/cuda/train.cu) draw the same mask: the same
// (seed, step, layer, target, index) gives the same uniform in [0, 1) everywhere.
#pragma once
#include <cstdint>

#if defined(__CUDACC__) || defined(TAILOR_CUEMU)
#define TAILOR_HD __host__ __device__
#else
#define TAILOR_HD
#endif

namespace tailor {

// splitmix64's finaliser
TAILOR_HD inline uint64_t mix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// the per-(seed, step, layer, target) key; the draw for element i is dropout_draw(key, i)
TAILOR_HD inline uint64_t dropout_key(uint64_t seed, uint64_t step, int layer, int target) {
  return mix64(seed ^ mix64(step * 0x100000001B3ull + uint64_t(layer) * 131 + uint64_t(target)));
}
TAILOR_HD inline double dropout_draw(uint64_t key, uint64_t index) { return double(mix64(key + index) >> 11) * (1.0 / 9007199254740992.0); }

}  // namespace tailor
