// pointwise.cu — the per-token ops of the forward pass on the GPU, semantics of the CPU backend's:
//   rmsnorm_forward  y = x / rms(x) * w      one block per row; sum of squares in float64, as on the CPU
//   rmsnorm_forward_train   the same kernel, also saving rstd = 1/rms per row (a training op of kernels.h)
//   rope_forward     rotary embedding in place, interleaved (GGUF/llama2.c) or rotate-half (HF) pairs,
//                    angle = pos · pos_scale · inv_freq[j] in float64 (exact for long contexts), as on the CPU
//   rope_apply       the same kernel with a sign (-1: the inverse rotation, RoPE's backward; a training op
//                    of kernels.h kept here beside rope_forward so the two share one kernel)
//   kv_store         k/v rows into the KV cache at (slot, position), fp32 or rounded to bf16 (a bf16 cache)
//   kv_copy          rows of a packed cache to others (scoring's shared prefixes)
//   swiglu_forward   h = silu(g) · u
//   add_inplace      y += x
//   f32_to_bf16      round to nearest even (the bf16 matmul's inputs)
#include <cuda_bf16.h>

#include "common.cuh"
#include "kernels.h"

namespace tailor {
namespace cuda {

namespace {

// y[T, dim] = x / rms(x) * w, x[T, dim], w[dim]; rstd[T] (the training forward's, else null) saves 1/rms for
// the backward; grid T, block kRowThreads
__global__ void rmsnorm_kernel(float* __restrict__ y, float* __restrict__ rstd, const float* __restrict__ x, const float* __restrict__ w,
                               int64_t dim, double eps) {
  __shared__ double scratch[32];
  const float* xr = x + int64_t(blockIdx.x) * dim;
  float* yr = y + int64_t(blockIdx.x) * dim;
  double ss = 0;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) ss += double(xr[i]) * double(xr[i]);
  ss = block_sum(ss, scratch);
  const float inv = float(1.0 / sqrt(ss / double(dim) + eps));
  if (rstd && threadIdx.x == 0) rstd[blockIdx.x] = inv;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) yr[i] = xr[i] * inv * w[i];
}

// x[T, n_heads*hd] in place, pos[T], inv_freq[hd/2]; sign +1 rotates, -1 rotates back; grid T, block 64
// (thread j handles pair j in every head)
__global__ void rope_kernel(float* __restrict__ x, const int* __restrict__ pos, int n_heads, int hd, bool interleaved, double pos_scale,
                            const double* __restrict__ inv_freq, int sign) {
  const int64_t t = blockIdx.x;
  const int half = hd / 2;
  const double p = double(pos[t]) * pos_scale;
  for (int j = threadIdx.x; j < half; j += blockDim.x) {
    double sd, cd;
    sincos(p * inv_freq[j], &sd, &cd);
    const float c = float(cd), s = float(double(sign) * sd);
    const int i0 = interleaved ? 2 * j : j, i1 = interleaved ? 2 * j + 1 : j + half;
    for (int h = 0; h < n_heads; h++) {
      float* v = x + (t * n_heads + h) * hd;
      const float a = v[i0], b = v[i1];
      v[i0] = a * c - b * s;
      v[i1] = a * s + b * c;
    }
  }
}

// kc/vc[slot, n_ctx, kv_stride] (E: float, or uint16_t bf16 bits) ← k/v[T, kv_stride] at (slot[t], pos[t]); grid T,
// block kRowThreads
template <typename E>
__global__ void kv_store_kernel(E* __restrict__ kc, E* __restrict__ vc, const float* __restrict__ k, const float* __restrict__ v,
                                const int* __restrict__ pos, const int* __restrict__ slot, int n_ctx, int kv_stride) {
  const int64_t t = blockIdx.x;
  const int64_t off = (int64_t(slot[t]) * n_ctx + pos[t]) * kv_stride;
  for (int i = threadIdx.x; i < kv_stride; i += blockDim.x) {
    store_elem(kc + off + i, k[t * kv_stride + i]);
    store_elem(vc + off + i, v[t * kv_stride + i]);
  }
}

// kc/vc rows copies[c].src.. → copies[c].dst.. (rows × kv_stride elements); grid (x, copies), block 256
template <typename E>
__global__ void kv_copy_kernel(E* __restrict__ kc, E* __restrict__ vc, const KvCopy* __restrict__ copies, int n, int kv_stride) {
  for (int c = blockIdx.y; c < n; c += gridDim.y) {
    const KvCopy cp = copies[c];
    const int64_t src = int64_t(cp.src) * kv_stride, dst = int64_t(cp.dst) * kv_stride, elems = int64_t(cp.rows) * kv_stride;
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < elems; i += int64_t(gridDim.x) * blockDim.x) {
      kc[dst + i] = kc[src + i];
      vc[dst + i] = vc[src + i];
    }
  }
}

// h[n], g[n], u[n] (h may be g)
__global__ void swiglu_forward_kernel(float* h, const float* g, const float* __restrict__ u, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float gv = g[i];
    h[i] = gv / (1.f + expf(-gv)) * u[i];
  }
}

// y[n] += x[n]
__global__ void add_inplace_kernel(float* __restrict__ y, const float* __restrict__ x, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) y[i] += x[i];
}

// dst[n] (bf16 bits) = src[n]
__global__ void f32_to_bf16_kernel(uint16_t* __restrict__ dst, const float* __restrict__ src, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = __bfloat16_as_ushort(__float2bfloat16_rn(src[i]));
}


}  // namespace

void rmsnorm_forward(float* y, const float* x, const float* w, int64_t T, int64_t dim, float eps) {
  if (T == 0) return;
  rows_limit(T, "rmsnorm_forward");
  TAILOR_LAUNCH(rmsnorm_kernel, unsigned(T), kRowThreads)(y, nullptr, x, w, dim, double(eps));
  check_launch("rmsnorm_forward");
}

void rmsnorm_forward_train(float* y, float* rstd, const float* x, const float* w, int64_t N, int64_t D, double eps) {
  if (N == 0) return;
  rows_limit(N, "rmsnorm_forward_train");
  TAILOR_LAUNCH(rmsnorm_kernel, unsigned(N), kRowThreads)(y, rstd, x, w, D, eps);
  check_launch("rmsnorm_forward_train");
}

void rope_forward(float* x, const int* pos, int64_t T, int n_heads, const DeviceRope& r) {
  if (T == 0 || n_heads == 0 || r.head_dim < 2) return;
  rows_limit(T, "rope_forward");
  TAILOR_LAUNCH(rope_kernel, unsigned(T), 64)(x, pos, n_heads, r.head_dim, r.interleaved, r.pos_scale, r.inv_freq, 1);
  check_launch("rope_forward");
}

void rope_apply(float* x, const int* pos, int64_t N, int n_heads, const DeviceRope& r, int sign) {
  if (N == 0 || n_heads == 0 || r.head_dim < 2) return;
  if (sign != 1 && sign != -1) fail(ErrorCode::ARG, "rope_apply: sign must be +1 or -1");
  rows_limit(N, "rope_apply");
  TAILOR_LAUNCH(rope_kernel, unsigned(N), 64)(x, pos, n_heads, r.head_dim, r.interleaved, r.pos_scale, r.inv_freq, sign);
  check_launch("rope_apply");
}

void kv_store(const KvView& kv, const float* k, const float* v, const int* pos, const int* slot, int64_t T) {
  if (T == 0 || kv.kv_stride == 0) return;
  rows_limit(T, "kv_store");
  if (kv.bf16)
    TAILOR_LAUNCH(kv_store_kernel<uint16_t>, unsigned(T), kRowThreads)(kv.k16(), kv.v16(), k, v, pos, slot, kv.n_ctx, kv.kv_stride);
  else
    TAILOR_LAUNCH(kv_store_kernel<float>, unsigned(T), kRowThreads)(kv.k32(), kv.v32(), k, v, pos, slot, kv.n_ctx, kv.kv_stride);
  check_launch("kv_store");
}

void kv_copy(const KvView& kv, const KvCopy* copies, int n, int max_rows) {
  if (n <= 0 || max_rows <= 0 || kv.kv_stride == 0) return;
  const int64_t elems = int64_t(max_rows) * kv.kv_stride;
  const dim3 grid(unsigned(std::min<int64_t>((elems + 255) / 256, 1024)), unsigned(std::min(n, 65535)));
  if (kv.bf16)
    TAILOR_LAUNCH(kv_copy_kernel<uint16_t>, grid, 256)(kv.k16(), kv.v16(), copies, n, kv.kv_stride);
  else
    TAILOR_LAUNCH(kv_copy_kernel<float>, grid, 256)(kv.k32(), kv.v32(), copies, n, kv.kv_stride);
  check_launch("kv_copy");
}

void swiglu_forward(float* h, const float* g, const float* u, int64_t n) {
  if (n == 0) return;
  TAILOR_LAUNCH(swiglu_forward_kernel, flat_blocks(n), 256)(h, g, u, n);
  check_launch("swiglu_forward");
}

void add_inplace(float* y, const float* x, int64_t n) {
  if (n == 0) return;
  TAILOR_LAUNCH(add_inplace_kernel, flat_blocks(n), 256)(y, x, n);
  check_launch("add_inplace");
}

void f32_to_bf16(uint16_t* dst, const float* src, int64_t n) {
  if (n == 0) return;
  TAILOR_LAUNCH(f32_to_bf16_kernel, flat_blocks(n), 256)(dst, src, n);
  check_launch("f32_to_bf16");
}

}  // namespace cuda
}  // namespace tailor
