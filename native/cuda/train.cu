// train.cu — the training ops on the GPU, the float semantics of engine/train_ops.h (and of the LoRA
// dropout and AdamW of train_graph.cpp / trainer.cpp). Backward ops ACCUMULATE into their outputs.
//   rmsnorm_forward_train  one block per row, sum of squares in float64; saves rstd[N]
//   rmsnorm_backward       dx: one block per row (float64 dot); dw: a second kernel over columns that adds
//                          the rows in a fixed order (no atomics, deterministic)
//   attention_forward_train  one warp per (sequence, head, query) row: scores, softmax into att, out = p·v
//   attention_backward     two kernels, no atomics: per query row, dq and Σ_j p·dp (saved, [B, nh, Tn]);
//                          per (sequence, KV head, key), dk and dv summed over the group's heads and the
//                          queries t ≥ j. dp = dout·v is recomputed instead of storing a [B, nh, Tn, Tn] buffer
//   swiglu_backward, scale_inplace, lora_dropout, adamw_step   element-wise, grid-stride
//   embedding_backward     one thread per column, rows added in order n = 0..N-1 (deterministic)
//   sum_squares            float64 partial sums per block, then one block adds them in order
// rope_apply lives in pointwise.cu: it shares rope_forward's kernel (sign -1 = the backward).
#include <algorithm>

#include "common.cuh"
#include "kernels.h"
#include "lora_hash.h"

namespace tailor {
namespace cuda {

namespace {

constexpr int kRowThreads = 256;
constexpr int kWarps = 4;       // attention rows per block
constexpr int kMaxPerLane = 8;  // head_dim ≤ 32 × 8 = 256
constexpr int kColRows = 8;     // rmsnorm dw: row groups per column block

// y[N, D], rstd[N], x[N, D], w[D]; grid N, block kRowThreads
__global__ void rmsnorm_forward_train_kernel(float* __restrict__ y, float* __restrict__ rstd, const float* __restrict__ x,
                                             const float* __restrict__ w, int64_t D, double eps) {
  __shared__ double scratch[32];
  const float* xr = x + int64_t(blockIdx.x) * D;
  float* yr = y + int64_t(blockIdx.x) * D;
  double ss = 0;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) ss += double(xr[i]) * double(xr[i]);
  ss = block_sum(ss, scratch);
  const float r = float(1.0 / sqrt(ss / double(D) + eps));
  if (threadIdx.x == 0) rstd[blockIdx.x] = r;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) yr[i] = xr[i] * r * w[i];
}

// dx[N, D] += r·w·dy − c·x with c = r³/D·Σ dy·w·x (float64); dy/x[N, D], w[D], rstd[N]; grid N, block kRowThreads
__global__ void rmsnorm_backward_dx_kernel(float* __restrict__ dx, const float* __restrict__ dy, const float* __restrict__ x,
                                           const float* __restrict__ w, const float* __restrict__ rstd, int64_t D) {
  __shared__ double scratch[32];
  const int64_t off = int64_t(blockIdx.x) * D;
  const float* xr = x + off;
  const float* g = dy + off;
  const float r = rstd[blockIdx.x];
  double dot = 0;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) dot += double(g[i]) * double(w[i]) * double(xr[i]);
  dot = block_sum(dot, scratch);
  const float c = float(dot * double(r) * double(r) * double(r) / double(D));
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) dx[off + i] += r * w[i] * g[i] - c * xr[i];
}

// dw[D] += Σ_n dy·x·rstd; dy/x[N, D], rstd[N]. Block (32 columns, kColRows row groups): group k adds rows
// k, k+kColRows, … in order, then thread y=0 adds the groups in order; grid ceil(D/32)
__global__ void rmsnorm_backward_dw_kernel(float* __restrict__ dw, const float* __restrict__ dy, const float* __restrict__ x,
                                           const float* __restrict__ rstd, int64_t N, int64_t D) {
  __shared__ float part[kColRows][33];
  const int64_t col = int64_t(blockIdx.x) * 32 + threadIdx.x;
  float acc = 0.f;
  if (col < D)
    for (int64_t n = threadIdx.y; n < N; n += kColRows) acc += dy[n * D + col] * x[n * D + col] * rstd[n];
  part[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && col < D) {
    float s = dw[col];
    for (int k = 0; k < kColRows; k++) s += part[k][threadIdx.x];
    dw[col] = s;
  }
}

// Σ_i a[i]·b[i] over one head (a in registers: dims lane, lane+32, …), every lane gets the sum
__device__ inline float warp_dot(const float (&a)[kMaxPerLane], const float* __restrict__ b, int hd) {
  const int lane = threadIdx.x % 32;
  float s = 0.f;
#pragma unroll
  for (int i = 0; i < kMaxPerLane; i++) {
    const int d = lane + 32 * i;
    if (d < hd) s += a[i] * b[d];
  }
  return warp_sum(s);
}

__device__ inline void warp_load(float (&a)[kMaxPerLane], const float* __restrict__ p, int hd) {
  const int lane = threadIdx.x % 32;
#pragma unroll
  for (int i = 0; i < kMaxPerLane; i++) {
    const int d = lane + 32 * i;
    a[i] = d < hd ? p[d] : 0.f;
  }
}

// out[B*Tn, nh*hd], att[B, nh, Tn, Tn], q[B*Tn, nh*hd], k/v[B*Tn, nkv*hd]; one warp per att row (b, h, t);
// grid ceil(B*nh*Tn / kWarps), block 32*kWarps
__global__ void attention_forward_train_kernel(float* __restrict__ out, float* __restrict__ att, const float* __restrict__ q,
                                               const float* __restrict__ k, const float* __restrict__ v, int B, int Tn, int nh, int nkv,
                                               int hd, float scale) {
  const int64_t row = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= int64_t(B) * nh * Tn) return;  // whole warps leave together
  const int t = int(row % Tn), h = int(row / Tn % nh), b = int(row / Tn / nh), g = h / (nh / nkv);
  const int64_t qs = int64_t(nh) * hd, ks = int64_t(nkv) * hd;
  const float* kb = k + int64_t(b) * Tn * ks + int64_t(g) * hd;  // k[b, 0.., g, :]
  const float* vb = v + int64_t(b) * Tn * ks + int64_t(g) * hd;
  float* ar = att + row * Tn;
  float qr[kMaxPerLane], acc[kMaxPerLane];
  warp_load(qr, q + (int64_t(b) * Tn + t) * qs + int64_t(h) * hd, hd);
  // scores: entry j written (and later read back) by lane j % 32
  float mx = -INFINITY;
  for (int j = 0; j <= t; j++) {
    const float s = warp_dot(qr, kb + int64_t(j) * ks, hd) * scale;
    if (lane == j % 32) ar[j] = s;
    mx = fmaxf(mx, s);
  }
  double sum = 0;
  for (int j = lane; j <= t; j += 32) {
    const float e = expf(ar[j] - mx);
    ar[j] = e;
    sum += double(e);
  }
  sum = warp_sum(sum);
  const float inv = float(1.0 / sum);
  for (int j = lane; j <= t; j += 32) ar[j] *= inv;
  for (int j = t + 1 + lane; j < Tn; j += 32) ar[j] = 0.f;
  // out = Σ_j p_j v_j, p_j passed from its lane by shuffles
#pragma unroll
  for (int i = 0; i < kMaxPerLane; i++) acc[i] = 0.f;
  for (int j0 = 0; j0 <= t; j0 += 32) {
    const float pl = j0 + lane <= t ? ar[j0 + lane] : 0.f;
    const int nj = t + 1 - j0 < 32 ? t + 1 - j0 : 32;
    for (int jj = 0; jj < nj; jj++) {
      const float p = __shfl_sync(0xffffffffu, pl, jj);
      const float* vr = vb + int64_t(j0 + jj) * ks;
#pragma unroll
      for (int i = 0; i < kMaxPerLane; i++) {
        const int d = lane + 32 * i;
        if (d < hd) acc[i] += p * vr[d];
      }
    }
  }
  float* o = out + (int64_t(b) * Tn + t) * qs + int64_t(h) * hd;
#pragma unroll
  for (int i = 0; i < kMaxPerLane; i++) {
    const int d = lane + 32 * i;
    if (d < hd) o[d] = acc[i];
  }
}

// dq[B*Tn, nh*hd] += Σ_j ds_j k_j with ds_j = p_j (dp_j − Σ p dp)·scale, dp_j = dout·v_j; pdp[B, nh, Tn] ← Σ p dp
// (for the dk/dv kernel). dout/q[B*Tn, nh*hd], k/v[B*Tn, nkv*hd], att[B, nh, Tn, Tn]; one warp per row (b, h, t);
// grid ceil(B*nh*Tn / kWarps), block 32*kWarps
__global__ void attention_backward_dq_kernel(float* __restrict__ dq, float* __restrict__ pdp_out, const float* __restrict__ dout,
                                             const float* __restrict__ att, const float* __restrict__ k, const float* __restrict__ v,
                                             int B, int Tn, int nh, int nkv, int hd, float scale) {
  const int64_t row = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= int64_t(B) * nh * Tn) return;  // whole warps leave together
  const int t = int(row % Tn), h = int(row / Tn % nh), b = int(row / Tn / nh), g = h / (nh / nkv);
  const int64_t qs = int64_t(nh) * hd, ks = int64_t(nkv) * hd;
  const float* kb = k + int64_t(b) * Tn * ks + int64_t(g) * hd;
  const float* vb = v + int64_t(b) * Tn * ks + int64_t(g) * hd;
  const float* ar = att + row * Tn;
  float go[kMaxPerLane], acc[kMaxPerLane];
  warp_load(go, dout + (int64_t(b) * Tn + t) * qs + int64_t(h) * hd, hd);
  float pdp = 0.f;
  for (int j = 0; j <= t; j++) pdp += ar[j] * warp_dot(go, vb + int64_t(j) * ks, hd);
  if (lane == 0) pdp_out[row] = pdp;
#pragma unroll
  for (int i = 0; i < kMaxPerLane; i++) acc[i] = 0.f;
  for (int j = 0; j <= t; j++) {
    const float ds = ar[j] * (warp_dot(go, vb + int64_t(j) * ks, hd) - pdp) * scale;
    const float* kr = kb + int64_t(j) * ks;
#pragma unroll
    for (int i = 0; i < kMaxPerLane; i++) {
      const int d = lane + 32 * i;
      if (d < hd) acc[i] += ds * kr[d];
    }
  }
  float* dqr = dq + (int64_t(b) * Tn + t) * qs + int64_t(h) * hd;
#pragma unroll
  for (int i = 0; i < kMaxPerLane; i++) {
    const int d = lane + 32 * i;
    if (d < hd) dqr[d] += acc[i];
  }
}

// dk/dv[B*Tn, nkv*hd] += Σ_{h in group g} Σ_{t ≥ j} (ds[t, j]·q_t, p[t, j]·dout_t) for key j; pdp[B, nh, Tn] from the dq
// kernel, the other tensors as there; one warp per (b, g, j); grid ceil(B*nkv*Tn / kWarps), block 32*kWarps
__global__ void attention_backward_dkv_kernel(float* __restrict__ dk, float* __restrict__ dv, const float* __restrict__ pdp,
                                              const float* __restrict__ dout, const float* __restrict__ att, const float* __restrict__ q,
                                              const float* __restrict__ v, int B, int Tn, int nh, int nkv, int hd, float scale) {
  const int64_t item = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (item >= int64_t(B) * nkv * Tn) return;  // whole warps leave together
  const int j = int(item % Tn), g = int(item / Tn % nkv), b = int(item / Tn / nkv), group = nh / nkv;
  const int64_t qs = int64_t(nh) * hd, ks = int64_t(nkv) * hd;
  float vj[kMaxPerLane], ak[kMaxPerLane], av[kMaxPerLane];
  warp_load(vj, v + (int64_t(b) * Tn + j) * ks + int64_t(g) * hd, hd);
#pragma unroll
  for (int i = 0; i < kMaxPerLane; i++) ak[i] = av[i] = 0.f;
  for (int h = g * group; h < (g + 1) * group; h++)
    for (int t = j; t < Tn; t++) {
      const int64_t row = (int64_t(b) * nh + h) * Tn + t;
      const float* go = dout + (int64_t(b) * Tn + t) * qs + int64_t(h) * hd;
      const float* qr = q + (int64_t(b) * Tn + t) * qs + int64_t(h) * hd;
      const float p = att[row * Tn + j];
      const float ds = p * (warp_dot(vj, go, hd) - pdp[row]) * scale;  // dp = dout_t·v_j as in the dq kernel
#pragma unroll
      for (int i = 0; i < kMaxPerLane; i++) {
        const int d = lane + 32 * i;
        if (d < hd) {
          ak[i] += ds * qr[d];
          av[i] += p * go[d];
        }
      }
    }
  const int64_t off = (int64_t(b) * Tn + j) * ks + int64_t(g) * hd;
#pragma unroll
  for (int i = 0; i < kMaxPerLane; i++) {
    const int d = lane + 32 * i;
    if (d < hd) {
      dk[off + d] += ak[i];
      dv[off + d] += av[i];
    }
  }
}

// dg/du/dh/g/u[n]
__global__ void swiglu_backward_kernel(float* __restrict__ dg, float* __restrict__ du, const float* __restrict__ dh, const float* __restrict__ g,
                                       const float* __restrict__ u, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float gv = g[i], sig = 1.f / (1.f + expf(-gv)), silu = gv * sig;
    du[i] += dh[i] * silu;
    dg[i] += dh[i] * u[i] * sig * (1.f + gv * (1.f - sig));
  }
}

// dtable[V, D] += dout[N, D] at rows ids[N]; one thread per column d, rows in order; grid ceil(D/256)
__global__ void embedding_backward_kernel(float* __restrict__ dtable, const float* __restrict__ dout, const int* __restrict__ ids, int64_t N,
                                          int64_t D) {
  const int64_t d = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (d >= D) return;
  for (int64_t n = 0; n < N; n++) dtable[int64_t(ids[n]) * D + d] += dout[n * D + d];
}

// x[n] *= s
__global__ void scale_inplace_kernel(float* __restrict__ x, float s, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) x[i] *= s;
}

// y[n] = draw(key, i) < p ? 0 : x[n]·inv (y may be x)
__global__ void lora_dropout_kernel(float* y, const float* x, int64_t n, double p, float inv, uint64_t key) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = dropout_draw(key, uint64_t(i)) < p ? 0.f : x[i] * inv;
}

// partial[gridDim.x] = Σ x² over a grid-stride share of x[n], float64; block kRowThreads
__global__ void sum_squares_kernel(double* __restrict__ partial, const float* __restrict__ x, int64_t n) {
  __shared__ double scratch[32];
  double s = 0;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) s += double(x[i]) * double(x[i]);
  s = block_sum(s, scratch);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

// out[0] = Σ x[n] (float64); one block of kRowThreads
__global__ void sum_doubles_kernel(double* __restrict__ out, const double* __restrict__ x, int64_t n) {
  __shared__ double scratch[32];
  double s = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += x[i];
  s = block_sum(s, scratch);
  if (threadIdx.x == 0) *out = s;
}

// p/grad/m/v[n]: AdamW with decoupled weight decay and bias-corrected moments, as Trainer::train_step
__global__ void adamw_kernel(float* __restrict__ p, const float* __restrict__ grad, float* __restrict__ m, float* __restrict__ v, int64_t n,
                             float clip, float beta1, float beta2, float eps, float weight_decay, double lr, double bc1, double bc2) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float g = grad[i] * clip;
    const float mi = beta1 * m[i] + (1 - beta1) * g, vi = beta2 * v[i] + (1 - beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    const double mh = mi / bc1, vh = vi / bc2;
    p[i] = float(double(p[i]) * (1 - lr * weight_decay) - lr * mh / (sqrt(vh) + eps));
  }
}

// a grid-stride launch: enough blocks to fill any GPU, no more than needed
unsigned flat_blocks(int64_t n) { return unsigned(std::min<int64_t>(65535, (n + 255) / 256)); }

void rows_limit(int64_t rows, const char* what) {
  if (rows > 2147483647) fail(ErrorCode::UNSUPPORTED, std::string(what) + ": too many rows in one call");
}

// the shapes both attention ops accept; false when there is nothing to do
bool attention_shape(const char* what, int B, int Tn, int nh, int nkv, int hd) {
  if (B < 0 || Tn < 0 || nh < 0 || hd < 0) fail(ErrorCode::ARG, std::string(what) + ": negative size");
  if (B == 0 || Tn == 0 || nh == 0 || hd == 0) return false;
  if (hd > 32 * kMaxPerLane) fail(ErrorCode::UNSUPPORTED, std::string(what) + ": head_dim up to 256 (got " + std::to_string(hd) + ")");
  if (nkv <= 0 || nh % nkv != 0) fail(ErrorCode::ARG, std::string(what) + ": n_head must be a multiple of n_kv");
  rows_limit((int64_t(B) * nh * Tn + kWarps - 1) / kWarps, what);
  return true;
}

}  // namespace

void rmsnorm_forward_train(float* y, float* rstd, const float* x, const float* w, int64_t N, int64_t D, double eps) {
  if (N == 0) return;
  rows_limit(N, "rmsnorm_forward_train");
  TAILOR_LAUNCH(rmsnorm_forward_train_kernel, unsigned(N), kRowThreads)(y, rstd, x, w, D, eps);
  check_launch("rmsnorm_forward_train");
}

void rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, const float* rstd, int64_t N, int64_t D) {
  if (N == 0 || D == 0) return;
  rows_limit(N, "rmsnorm_backward");
  TAILOR_LAUNCH(rmsnorm_backward_dx_kernel, unsigned(N), kRowThreads)(dx, dy, x, w, rstd, D);
  check_launch("rmsnorm_backward (dx)");
  if (!dw) return;
  TAILOR_LAUNCH(rmsnorm_backward_dw_kernel, ceil_div(D, 32), dim3(32, kColRows))(dw, dy, x, rstd, N, D);
  check_launch("rmsnorm_backward (dw)");
}

void attention_forward_train(float* out, float* att, const float* q, const float* k, const float* v, int B, int Tn, int nh, int nkv, int hd) {
  if (!attention_shape("attention_forward_train", B, Tn, nh, nkv, hd)) return;
  const float scale = float(1.0 / std::sqrt(double(hd)));
  TAILOR_LAUNCH(attention_forward_train_kernel, ceil_div(int64_t(B) * nh * Tn, kWarps), 32 * kWarps)(out, att, q, k, v, B, Tn, nh, nkv, hd,
                                                                                                    scale);
  check_launch("attention_forward_train");
}

int64_t attention_saved_floats(int B, int Tn, int nh) { return int64_t(B) * nh * Tn * Tn; }

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* /*out*/, const float* att, const float* q,
                        const float* k, const float* v, int B, int Tn, int nh, int nkv, int hd) {
  if (!attention_shape("attention_backward", B, Tn, nh, nkv, hd)) return;
  const float scale = float(1.0 / std::sqrt(double(hd)));
  // Σ_j p_j dp_j of every query row, [B, nh, Tn] (no allocator yet: one cudaMalloc per call)
  float* pdp = static_cast<float*>(device_malloc(sizeof(float) * size_t(int64_t(B) * nh * Tn)));
  try {
    TAILOR_LAUNCH(attention_backward_dq_kernel, ceil_div(int64_t(B) * nh * Tn, kWarps), 32 * kWarps)(dq, pdp, dout, att, k, v, B, Tn, nh, nkv,
                                                                                                    hd, scale);
    check_launch("attention_backward (dq)");
    TAILOR_LAUNCH(attention_backward_dkv_kernel, ceil_div(int64_t(B) * nkv * Tn, kWarps), 32 * kWarps)(dk, dv, pdp, dout, att, q, v, B, Tn, nh,
                                                                                                      nkv, hd, scale);
    check_launch("attention_backward (dk, dv)");
  } catch (...) {
    device_free(pdp);
    throw;
  }
  device_free(pdp);
}

void swiglu_backward(float* dg, float* du, const float* dh, const float* g, const float* u, int64_t n) {
  if (n == 0) return;
  TAILOR_LAUNCH(swiglu_backward_kernel, flat_blocks(n), 256)(dg, du, dh, g, u, n);
  check_launch("swiglu_backward");
}

void embedding_backward(float* dtable, const float* dout, const int* ids, int64_t N, int64_t D) {
  if (N == 0 || D == 0) return;
  rows_limit(ceil_div(D, 256), "embedding_backward");
  TAILOR_LAUNCH(embedding_backward_kernel, ceil_div(D, 256), 256)(dtable, dout, ids, N, D);
  check_launch("embedding_backward");
}

void scale_inplace(float* x, float s, int64_t n) {
  if (n == 0) return;
  TAILOR_LAUNCH(scale_inplace_kernel, flat_blocks(n), 256)(x, s, n);
  check_launch("scale_inplace");
}

void lora_dropout(float* y, const float* x, int64_t n, double p, uint64_t seed, uint64_t step, int layer, int target) {
  if (n == 0) return;
  if (!(p >= 0 && p < 1)) fail(ErrorCode::ARG, "lora_dropout: p must be in [0, 1)");
  const float inv = float(1.0 / (1.0 - p));  // as train_graph.cpp's dropped()
  TAILOR_LAUNCH(lora_dropout_kernel, flat_blocks(n), 256)(y, x, n, p, inv, dropout_key(seed, step, layer, target));
  check_launch("lora_dropout");
}

double sum_squares(const float* x, int64_t n) {
  if (n == 0) return 0.0;
  const unsigned blocks = unsigned(std::min<int64_t>(1024, (n + kRowThreads - 1) / kRowThreads));
  // [0] the sum, [1..1+blocks) the blocks' partial sums
  double* scratch = static_cast<double*>(device_malloc(sizeof(double) * (blocks + 1)));
  double s = 0;
  try {
    TAILOR_LAUNCH(sum_squares_kernel, blocks, kRowThreads)(scratch + 1, x, n);
    check_launch("sum_squares");
    TAILOR_LAUNCH(sum_doubles_kernel, 1, kRowThreads)(scratch, scratch + 1, int64_t(blocks));
    check_launch("sum_squares (Σ blocks)");
    to_host(&s, scratch, sizeof(double));
  } catch (...) {
    device_free(scratch);
    throw;
  }
  device_free(scratch);
  return s;
}

void adamw_step(float* p, const float* grad, float* m, float* v, int64_t n, float clip, float beta1, float beta2, float eps, float weight_decay,
                double lr, double bc1, double bc2) {
  if (n == 0) return;
  TAILOR_LAUNCH(adamw_kernel, flat_blocks(n), 256)(p, grad, m, v, n, clip, beta1, beta2, eps, weight_decay, lr, bc1, bc2);
  check_launch("adamw_step");
}

}  // namespace cuda
}  // namespace tailor
