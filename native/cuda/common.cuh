// common.cuh — what every .cu file of the CUDA kernels shares (never included by the engine's C++ code):
// error checks that throw the engine's EngineError, grid arithmetic, warp/block reductions, and the
// launch macro. Compiled by nvcc for the GPU, and by the host compiler against the CPU emulator of
// native/test/cuemu (whose cuda_runtime.h defines TAILOR_CUEMU and its own TAILOR_LAUNCH) for the tests.
#pragma once
#include <cuda_runtime.h>
#include <cuda_bf16.h>

// kernel<<<grid, block>>>(args...) is written TAILOR_LAUNCH(kernel, grid, block)(args...), so that the
// same sources also build for the emulator
#ifndef TAILOR_CUEMU
#define TAILOR_LAUNCH(kernel, grid, block) kernel<<<grid, block>>>
#endif

#include <algorithm>
#include <cstdint>
#include <string>

#include "errors.h"
#include "kernels.h"

namespace tailor {
namespace cuda {

// throws EngineError (E_OOM for an allocation failure, E_INTERNAL otherwise) naming the call
inline void check(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return;
  ErrorCode code = e == cudaErrorMemoryAllocation ? ErrorCode::OOM : ErrorCode::INTERNAL;
  fail(code, std::string("CUDA ") + what + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
}

// after a kernel launch: a bad launch configuration shows here, faults in the kernel at the next sync
inline void check_launch(const char* what) { check(cudaGetLastError(), what); }

inline unsigned ceil_div(int64_t a, int64_t b) { return unsigned((a + b - 1) / b); }

// 16 bytes at p (16-byte aligned: the emulator checks), as one vector access
__device__ inline uint4 load_vec16(const void* p) {
#ifdef TAILOR_CUEMU
  cuemu::check_aligned(p, 16, "load_vec16");
#endif
  return *reinterpret_cast<const uint4*>(p);
}
__device__ inline void store_vec16(void* p, uint4 v) {
#ifdef TAILOR_CUEMU
  cuemu::check_aligned(p, 16, "store_vec16");
#endif
  *reinterpret_cast<uint4*>(p) = v;
}

// threads of a one-block-per-row kernel
constexpr int kRowThreads = 256;

// a grid-stride launch of 256-thread blocks: enough blocks to fill any GPU, no more than needed
inline unsigned flat_blocks(int64_t n) { return unsigned(std::min<int64_t>(65535, (n + 255) / 256)); }

// one block per row: gridDim.x holds at most 2^31 - 1 of them
inline void rows_limit(int64_t rows, const char* what) {
  if (rows > 2147483647) fail(ErrorCode::UNSUPPORTED, std::string(what) + ": too many rows in one call");
}

// n floats of device scratch for one call: the caller's buffer when it gave one (the backend's cache), else an
// allocation freed with this object, also when the call throws
class CallScratch {
 public:
  CallScratch(float* given, int64_t n) : p_(given ? given : owned_ = static_cast<float*>(device_malloc(sizeof(float) * size_t(n)))) {}
  CallScratch(const CallScratch&) = delete;
  CallScratch& operator=(const CallScratch&) = delete;
  ~CallScratch() { device_free(owned_); }
  float* get() const { return p_; }

 private:
  float* owned_ = nullptr;
  float* p_;
};

// The checks every attention op makes before it launches (the fp32 and tensor-core ones, training and KV cache):
// a negative size is E_ARG, a zero one means nothing to do (false); hd_ok is the kernel's own head_dim limit,
// which `needs` words (E_UNSUPPORTED); n_head a multiple of n_kv (E_ARG); and the grid holds the op's
// B·n_head·⌈T/rows⌉ blocks (B = 1 over a KV cache, whose grid is ⌈T/rows⌉ × n_head).
inline bool attention_args(const char* what, int64_t B, int64_t T, int nh, int nkv, int hd, bool hd_ok, const char* needs, int rows) {
  if (B < 0 || T < 0 || nh < 0 || nkv < 0 || hd < 0) fail(ErrorCode::ARG, std::string(what) + ": negative size");
  if (B == 0 || T == 0 || nh == 0 || hd == 0) return false;
  if (!hd_ok) fail(ErrorCode::UNSUPPORTED, std::string(what) + ": needs " + needs + " (head_dim " + std::to_string(hd) + ")");
  if (nkv == 0 || nh % nkv != 0) fail(ErrorCode::ARG, std::string(what) + ": n_head must be a multiple of n_kv");
  if (nh > 65535 || B * nh * ((T + rows - 1) / rows) > 2147483647)
    fail(ErrorCode::UNSUPPORTED, std::string(what) + ": too many tokens or heads in one call");
  return true;
}

template <typename T>
__device__ inline T warp_sum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ inline float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
// scratch: __shared__ T[32]. Must be reached by all threads of the block.
template <typename T>
__device__ inline T block_sum(T v, T* scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read from a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < nwarps ? scratch[lane] : T(0);
  return warp_sum(v);
}

__device__ inline float block_max(float v, float* scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < nwarps ? scratch[lane] : -INFINITY;
  return warp_max(v);
}

// bf16 stored as its 16 bits (the high half of the fp32 pattern)
__device__ inline float bf16_bits_to_float(uint16_t b) { return __uint_as_float(uint32_t(b) << 16); }
__device__ inline uint16_t float_to_bf16_bits(float x) { return __bfloat16_as_ushort(__float2bfloat16_rn(x)); }

// an element of a buffer that is fp32 or bf16 bits (a KV cache: KvView::bf16) read as a float, and written
// from one (bf16: rounded to nearest even)
__device__ inline float elem_to_float(float x) { return x; }
__device__ inline float elem_to_float(uint16_t b) { return bf16_bits_to_float(b); }
__device__ inline void store_elem(float* p, float x) { *p = x; }
__device__ inline void store_elem(uint16_t* p, float x) { *p = float_to_bf16_bits(x); }

}  // namespace cuda
}  // namespace tailor
