// sample.cu — sampling's candidates on the device: the top k of logits/temperature, so that a generation
// step sends k (value, id) pairs to the host instead of the whole vocabulary; the host's Sampler::pick then
// does exactly what it does after its own partial sort (runtime.cpp). The ranking is the sampler's: by
// value, ties by the lower id; the division is IEEE float division, as on the CPU, so the candidates are
// the CPU's bit for bit.
#include <climits>

#include "common.cuh"
#include "kernels.h"

namespace tailor {
namespace cuda {

namespace {

constexpr int kTopkThreads = 256;
constexpr int kMaxK = 1024;

// a ranks before b (sampler_order)
__device__ inline bool ranks_before(float va, int ia, float vb, int ib) { return va > vb || (va == vb && ia < ib); }

// keeps in (bv, bi) the better of itself and (v, i); bi < 0 is "none yet"
__device__ inline void keep_best(float& bv, int& bi, float v, int i) {
  if (i >= 0 && (bi < 0 || ranks_before(v, i, bv, bi))) bv = v, bi = i;
}

__device__ inline void warp_best(float& bv, int& bi) {
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
    const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
    keep_best(bv, bi, ov, oi);
  }
}

// vals[k], ids[k] = the k best of x[n]/temperature; one block of kTopkThreads. Round r: every thread finds
// its best element ranked after round r-1's pick, each warp its best, then every warp reduces the warps'
// bests itself, so every thread knows the pick without a broadcast (two barriers a round)
__global__ void topk_scaled_kernel(float* __restrict__ vals, int* __restrict__ ids, const float* __restrict__ x, int n, int k,
                                   float temperature) {
  __shared__ float wv[32];
  __shared__ int wi[32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
  float pv = 0.f;
  int pi = -1;  // the previous pick (none in round 0)
  for (int r = 0; r < k; r++) {
    float bv = 0.f;
    int bi = -1;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
      const float v = x[i] / temperature;
      if (pi < 0 || ranks_before(pv, pi, v, i)) keep_best(bv, bi, v, i);
    }
    warp_best(bv, bi);
    if (lane == 0) wv[warp] = bv, wi[warp] = bi;
    __syncthreads();
    bv = lane < nwarps ? wv[lane] : 0.f;
    bi = lane < nwarps ? wi[lane] : -1;
    warp_best(bv, bi);
    if (threadIdx.x == 0) vals[r] = bv, ids[r] = bi;
    pv = bv;
    pi = bi;
    __syncthreads();  // every warp has read wv/wi before round r+1 writes them
  }
}

}  // namespace

void topk_scaled(float* vals, int* ids, const float* x, int64_t n, int k, float temperature) {
  if (k < 1 || k > kMaxK || k > n || n > INT_MAX) fail(ErrorCode::ARG, "topk_scaled: need 1 ≤ k ≤ min(n, 1024) and n < 2^31");
  TAILOR_LAUNCH(topk_scaled_kernel, 1, kTopkThreads)(vals, ids, x, int(n), k, temperature);
  check_launch("topk_scaled");
}

}  // namespace cuda
}  // namespace tailor
