// train.cu — the training ops on the GPU, the float semantics of engine/train_ops.h (and of the LoRA
// dropout and AdamW of train_graph.cpp / trainer.cpp). Backward ops ACCUMULATE into their outputs.
//   (rmsnorm_forward_train and rope_apply share their kernels with the inference ops in pointwise.cu)
//   rmsnorm_backward       dx: one block per row (float64 dot); dw: a second kernel over columns that adds
//                          the rows in a fixed order (no atomics, deterministic)
//   attention_forward_train  flash-style: saves only lse[B, nh, Tn] (log Σ exp of each score row), never the
//                          [B, nh, Tn, Tn] probabilities. A block holds 8 query rows of one head (a warp each)
//                          and streams the keys ≤ its last row through shared memory in tiles; online softmax
//   attention_backward     recomputes p = exp(s − lse), no atomics: D_t = dout_t·out_t per row; per query row
//                          (blocks as the forward's) dq; per (sequence, KV head, 8 keys) dk and dv summed over
//                          the group's heads and the queries t ≥ j streamed in tiles, in a fixed order
//   swiglu_backward, scale_inplace, lora_dropout, adamw_step   element-wise, grid-stride
//   embedding_backward     one thread per column, rows added in order n = 0..N-1 (deterministic)
//   sum_squares            float64 partial sums per block, then one block adds them in order
#include <algorithm>

#include "attention_tile.cuh"
#include "common.cuh"
#include "kernels.h"
#include "lora_hash.h"

namespace tailor {
namespace cuda {

namespace {

using namespace tile;
constexpr int kColRows = 8;     // rmsnorm dw: row groups per column block

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

// ---- flash-style attention: the tile helpers and their layout are in attention_tile.cuh (shared with the
// inference kernel of attention.cu). The forward keeps out and lse_t = log Σ_{j≤t} exp s_tj per score row;
// the backward recomputes p_tj = exp(s_tj − lse_t) from q and k, with the same code in the same order.

// out[B*Tn, nh*hd], lse[B, nh, Tn], q[B*Tn, nh*hd], k/v[B*Tn, nkv*hd]. Block: (b, h) and the query rows t0..t0+kTileRows−1,
// warp w the row t = t0 + w, an online softmax over the key tiles (running max m and Σ exp(s − m), out rescaled as m
// grows); grid B*nh*ceil(Tn/kTileRows), block kTileThreads
__global__ void attention_forward_train_kernel(float* __restrict__ out, float* __restrict__ lse, const float* __restrict__ q,
                                               const float* __restrict__ k, const float* __restrict__ v, int Tn, int nh, int nkv, int hd,
                                               int nk, float scale) {
  __shared__ float sm[kSmemFloats];
  const int tiles = (Tn + kTileRows - 1) / kTileRows;
  const int64_t bh = blockIdx.x / tiles;  // b·nh + h
  const int h = int(bh % nh), b = int(bh / nh), g = h / (nh / nkv);
  const int t0 = int(blockIdx.x % tiles) * kTileRows, last = imin(t0 + kTileRows, Tn) - 1;  // the block's rows t0..last
  const int w = threadIdx.x / 32, lane = threadIdx.x % 32, t = t0 + w, st = hd + 1;
  const int64_t qs = int64_t(nh) * hd, ks = int64_t(nkv) * hd;
  float* kt = sm;            // key tile [nk][st]
  float* vt = kt + nk * st;  // value tile [nk][st]
  float* qt = vt + nk * st;  // the block's query rows [kTileRows][hd]
  load_rows(qt, hd, q + (int64_t(b) * Tn + t0) * qs + int64_t(h) * hd, qs, kTileRows, last + 1 - t0, hd);
  OnlineRow r;
  for (int j0 = 0; j0 <= last; j0 += nk) {
    const int n = imin(nk, last + 1 - j0);
    __syncthreads();  // every warp is done with the previous tile
    load_rows(kt, st, k + (int64_t(b) * Tn + j0) * ks + int64_t(g) * hd, ks, n, n, hd);
    load_rows(vt, st, v + (int64_t(b) * Tn + j0) * ks + int64_t(g) * hd, ks, n, n, hd);
    __syncthreads();
    if (t > last || j0 > t) continue;  // warp-uniform: no key of this tile is visible from row t
    online_tile(r, qt + w * hd, kt, vt, st, imin(n, t + 1 - j0), hd, scale, lane);  // keys j0.. ≤ t
  }
  if (t > last) return;  // past the last barrier
  online_store(r, out + (int64_t(b) * Tn + t) * qs + int64_t(h) * hd, hd, lane);
  if (lane == 0) lse[bh * Tn + t] = r.m + logf(r.l);
}

// D[B, nh, Tn] = dout_t·out_t of each (b, h, t) row, which is Σ_j p_tj·dp_tj (out_t = Σ_j p_tj v_j, dp_tj = dout_t·v_j);
// dout/out[B*Tn, nh*hd]; one warp per row, grid ceil(B*nh*Tn / kTileRows), block kTileThreads
__global__ void attention_backward_d_kernel(float* __restrict__ D, const float* __restrict__ dout, const float* __restrict__ out, int64_t rows,
                                            int Tn, int nh, int hd) {
  const int64_t row = int64_t(blockIdx.x) * kTileRows + threadIdx.x / 32;
  if (row >= rows) return;  // whole warps leave together
  const int t = int(row % Tn), h = int(row / Tn % nh), b = int(row / Tn / nh);
  const int64_t off = (int64_t(b) * Tn + t) * nh * hd + int64_t(h) * hd;
  float g[kMaxPerLane];
  warp_load(g, dout + off, hd);
  const float s = warp_dot(g, out + off, hd);
  if (threadIdx.x % 32 == 0) D[row] = s;
}

// dq[B*Tn, nh*hd] += Σ_{j≤t} ds_tj·k_j, ds_tj = p_tj (dout_t·v_j − D_t)·scale, p_tj = exp(s_tj − lse_t); dout[B*Tn, nh*hd],
// lse/D[B, nh, Tn], q/k/v as in the forward. Blocks, warps and key tiles as the forward's; grid and block too
__global__ void attention_backward_dq_kernel(float* __restrict__ dq, const float* __restrict__ dout, const float* __restrict__ lse,
                                             const float* __restrict__ D, const float* __restrict__ q, const float* __restrict__ k,
                                             const float* __restrict__ v, int Tn, int nh, int nkv, int hd, int nk, float scale) {
  __shared__ float sm[kSmemFloats];
  const int tiles = (Tn + kTileRows - 1) / kTileRows;
  const int64_t bh = blockIdx.x / tiles;
  const int h = int(bh % nh), b = int(bh / nh), g = h / (nh / nkv);
  const int t0 = int(blockIdx.x % tiles) * kTileRows, last = imin(t0 + kTileRows, Tn) - 1;
  const int w = threadIdx.x / 32, lane = threadIdx.x % 32, t = t0 + w, st = hd + 1;
  const int64_t qs = int64_t(nh) * hd, ks = int64_t(nkv) * hd;
  float* kt = sm;                    // key tile [nk][st]
  float* vt = kt + nk * st;          // value tile [nk][st]
  float* qt = vt + nk * st;          // query rows [kTileRows][hd]
  float* gt = qt + kTileRows * hd;   // their dout rows [kTileRows][hd]
  const int64_t first = (int64_t(b) * Tn + t0) * qs + int64_t(h) * hd;
  load_rows(qt, hd, q + first, qs, kTileRows, last + 1 - t0, hd);
  load_rows(gt, hd, dout + first, qs, kTileRows, last + 1 - t0, hd);
  const float L = t <= last ? lse[bh * Tn + t] : 0.f, Dt = t <= last ? D[bh * Tn + t] : 0.f;
  float acc[kMaxPerLane];
#pragma unroll
  for (int i = 0; i < kMaxPerLane; i++) acc[i] = 0.f;
  for (int j0 = 0; j0 <= last; j0 += nk) {
    const int n = imin(nk, last + 1 - j0);
    __syncthreads();
    load_rows(kt, st, k + (int64_t(b) * Tn + j0) * ks + int64_t(g) * hd, ks, n, n, hd);
    load_rows(vt, st, v + (int64_t(b) * Tn + j0) * ks + int64_t(g) * hd, ks, n, n, hd);
    __syncthreads();
    if (t > last || j0 > t) continue;
    const int nj = imin(n, t + 1 - j0);
    float ds = 0.f;
    if (lane < nj) {
      const float p = expf(row_dot(qt + w * hd, kt + lane * st, hd) * scale - L);
      ds = p * (row_dot(gt + w * hd, vt + lane * st, hd) - Dt) * scale;
    }
    add_weighted_rows(acc, ds, 0, nj, kt, st, hd, lane);
  }
  if (t > last) return;
  float* dqr = dq + (int64_t(b) * Tn + t) * qs + int64_t(h) * hd;
#pragma unroll
  for (int i = 0; i < kMaxPerLane; i++) {
    const int d = lane + 32 * i;
    if (d < hd) dqr[d] += acc[i];
  }
}

// dk/dv[B*Tn, nkv*hd] += Σ_{h of group g} Σ_{t≥j} (ds_tj·q_t, p_tj·dout_t), the rest as in the dq kernel. Block: (b, g) and the
// key rows j0..j0+kTileRows−1, warp w the key j = j0 + w; the group's heads one after another, each with its queries t ≥ j0 in
// tiles of nk (q and dout) — a fixed order, no atomics; grid B*nkv*ceil(Tn/kTileRows), block kTileThreads
__global__ void attention_backward_dkv_kernel(float* __restrict__ dk, float* __restrict__ dv, const float* __restrict__ dout,
                                              const float* __restrict__ lse, const float* __restrict__ D, const float* __restrict__ q,
                                              const float* __restrict__ k, const float* __restrict__ v, int Tn, int nh, int nkv, int hd, int nk,
                                              float scale) {
  __shared__ float sm[kSmemFloats];
  const int tiles = (Tn + kTileRows - 1) / kTileRows, group = nh / nkv;
  const int64_t bg = blockIdx.x / tiles;  // b·nkv + g
  const int g = int(bg % nkv), b = int(bg / nkv);
  const int j0 = int(blockIdx.x % tiles) * kTileRows, last = imin(j0 + kTileRows, Tn) - 1;  // the block's keys j0..last
  const int w = threadIdx.x / 32, lane = threadIdx.x % 32, j = j0 + w, st = hd + 1;
  const int64_t qs = int64_t(nh) * hd, ks = int64_t(nkv) * hd;
  float* qt = sm;                    // query tile [nk][st]
  float* gt = qt + nk * st;          // its dout rows [nk][st]
  float* kt = gt + nk * st;          // key rows [kTileRows][hd]
  float* vt = kt + kTileRows * hd;   // their value rows [kTileRows][hd]
  const int64_t kfirst = (int64_t(b) * Tn + j0) * ks + int64_t(g) * hd;
  load_rows(kt, hd, k + kfirst, ks, kTileRows, last + 1 - j0, hd);
  load_rows(vt, hd, v + kfirst, ks, kTileRows, last + 1 - j0, hd);
  float ak[kMaxPerLane], av[kMaxPerLane];
#pragma unroll
  for (int i = 0; i < kMaxPerLane; i++) ak[i] = av[i] = 0.f;
  for (int h = g * group; h < (g + 1) * group; h++) {
    const int64_t bh = int64_t(b) * nh + h;
    for (int t0 = j0; t0 < Tn; t0 += nk) {
      const int n = imin(nk, Tn - t0);
      __syncthreads();
      const int64_t qfirst = (int64_t(b) * Tn + t0) * qs + int64_t(h) * hd;
      load_rows(qt, st, q + qfirst, qs, n, n, hd);
      load_rows(gt, st, dout + qfirst, qs, n, n, hd);
      __syncthreads();
      const int lo = j > t0 ? j - t0 : 0;  // tile rows below lo are queries t < j
      if (j > last || lo >= n) continue;   // warp-uniform
      float ds = 0.f, p = 0.f;
      if (lane >= lo && lane < n) {
        const int64_t row = bh * Tn + t0 + lane;
        p = expf(row_dot(qt + lane * st, kt + w * hd, hd) * scale - lse[row]);
        ds = p * (row_dot(gt + lane * st, vt + w * hd, hd) - D[row]) * scale;
      }
      add_weighted_rows(ak, ds, lo, n, qt, st, hd, lane);
      add_weighted_rows(av, p, lo, n, gt, st, hd, lane);
    }
  }
  if (j > last) return;
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

}  // namespace

void rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, const float* rstd, int64_t N, int64_t D) {
  if (N == 0 || D == 0) return;
  rows_limit(N, "rmsnorm_backward");
  TAILOR_LAUNCH(rmsnorm_backward_dx_kernel, unsigned(N), kRowThreads)(dx, dy, x, w, rstd, D);
  check_launch("rmsnorm_backward (dx)");
  if (!dw) return;
  TAILOR_LAUNCH(rmsnorm_backward_dw_kernel, ceil_div(D, 32), dim3(32, kColRows))(dw, dy, x, rstd, N, D);
  check_launch("rmsnorm_backward (dw)");
}

void attention_forward_train(float* out, float* lse, const float* q, const float* k, const float* v, int B, int Tn, int nh, int nkv, int hd) {
  if (!attention_args("attention_forward_train", B, Tn, nh, nkv, hd, tile::usable(hd), tile::kNeeds, kTileRows)) return;
  const float scale = float(1.0 / std::sqrt(double(hd)));
  const unsigned blocks = unsigned(int64_t(B) * nh * ((Tn + kTileRows - 1) / kTileRows));
  TAILOR_LAUNCH(attention_forward_train_kernel, blocks, kTileThreads)(out, lse, q, k, v, Tn, nh, nkv, hd, attention_tile(hd), scale);
  check_launch("attention_forward_train");
}

int64_t attention_saved_floats(int B, int Tn, int nh) { return int64_t(B) * nh * Tn; }

void attention_backward_d(float* D, const float* dout, const float* out, int B, int Tn, int nh, int hd) {
  const int64_t rows = int64_t(B) * nh * Tn;
  if (rows == 0) return;
  TAILOR_LAUNCH(attention_backward_d_kernel, ceil_div(rows, kTileRows), kTileThreads)(D, dout, out, rows, Tn, nh, hd);
  check_launch("attention_backward (D)");
}

// D_t = Σ_j p_tj·dp_tj is taken as dout_t·out_t from the forward's output (FlashAttention-2): O(hd) per row, where
// recomputing it from lse would be a second pass over every key (q·k and dout·v again) before the dq pass
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* out, const float* lse, const float* q, const float* k,
                        const float* v, int B, int Tn, int nh, int nkv, int hd, float* scratch) {
  if (!attention_args("attention_backward", B, Tn, nh, nkv, hd, tile::usable(hd), tile::kNeeds, kTileRows)) return;
  const float scale = float(1.0 / std::sqrt(double(hd)));
  const int nk = attention_tile(hd);
  const int64_t rows = int64_t(B) * nh * Tn, tiles = (Tn + kTileRows - 1) / kTileRows;
  // D[B, nh, Tn]: the caller's scratch (the backend's cache), else one allocation for this call
  const CallScratch d_rows(scratch, rows);
  float* D = d_rows.get();
  attention_backward_d(D, dout, out, B, Tn, nh, hd);
  TAILOR_LAUNCH(attention_backward_dq_kernel, unsigned(int64_t(B) * nh * tiles), kTileThreads)(dq, dout, lse, D, q, k, v, Tn, nh, nkv, hd, nk,
                                                                                             scale);
  check_launch("attention_backward (dq)");
  TAILOR_LAUNCH(attention_backward_dkv_kernel, unsigned(int64_t(B) * nkv * tiles), kTileThreads)(dk, dv, dout, lse, D, q, k, v, Tn, nh, nkv,
                                                                                               hd, nk, scale);
  check_launch("attention_backward (dk, dv)");
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
