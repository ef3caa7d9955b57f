// attention_tc.cu — the training attention (causal, GQA, flash-style: only lse[B, nh, Tn] is kept) on bf16
// tensor cores (WMMA, sm_80+), for the backend's bf16 mode: the same contract as attention_forward_train /
// attention_backward in train.cu, whose fp32 SIMT kernels spend two shared-memory loads per multiply-add.
//   q, k, v (and dout) are rounded to bf16 as their tiles are staged; every product accumulates in fp32;
//   the scores, the softmax statistics and D_t = dout_t·out_t stay fp32; the probabilities p and the
//   score gradients ds are rounded to bf16 for the products they feed (P·V, Pᵀ·dO, dS·K, dSᵀ·Q).
//   Head dims that are multiples of 16 up to 128 (attention_tc_usable); other shapes take the fp32 kernels.
// Layout: a warp owns 16 rows (queries, or keys in the dk/dv kernel), a block 4 warps = 64 rows of one head;
// the other side streams through shared memory in tiles of 32 rows, as bf16 at a row stride of hd + 8.
//   forward      two passes over the key tiles: the first computes each row's max and Σ exp (so lse), the
//                second p = exp(s − lse) and out = Σ p·v, so the output accumulators never need rescaling
//   backward dq  per block of 64 queries: s and dp = dout·vᵀ per key tile, ds = p·(dp − D)·scale, dq += ds·k
//   backward dkv per block of 64 keys, over the group's heads and the queries t ≥ j in tiles of 32:
//                sᵀ and dpᵀ per tile, dv += pᵀ·dout, dk += dsᵀ·q (fixed order, no atomics)
#include <mma.h>

#include <cmath>

#include <cuda_bf16.h>

#include "common.cuh"
#include "kernels.h"

namespace tailor {
namespace cuda {

namespace {

constexpr int kWarps = 4, kThreads = 32 * kWarps;  // a block: 4 warps of 16 rows
constexpr int kRows = 16 * kWarps;                   // 64 rows per block
constexpr int kMaxKF = 8;                            // hd/16 up to 8 (head_dim 128)

// the tensor-core code exists where it can run: device code for sm_80+ (the CPU emulator is that); the
// kernels' bodies elsewhere are a trap, which the host never launches (attention_tc_usable is false)
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#define TAILOR_ATTENTION_TC 1
constexpr int kTile = 32;                            // streamed rows per tile
constexpr int kLdMax = 16 * kMaxKF + 8;              // bf16 row stride at the largest head_dim
constexpr int kLdF = 36;                             // fp32 stride of a warp's [16][32] score block
constexpr int kLdP = 40;                             // bf16 stride of a warp's [16][32] p / ds block

using FragA = nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, 16, 16, 16, __nv_bfloat16, nvcuda::wmma::row_major>;
using FragBCol = nvcuda::wmma::fragment<nvcuda::wmma::matrix_b, 16, 16, 16, __nv_bfloat16, nvcuda::wmma::col_major>;
using FragBRow = nvcuda::wmma::fragment<nvcuda::wmma::matrix_b, 16, 16, 16, __nv_bfloat16, nvcuda::wmma::row_major>;
using FragC = nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 16, float>;

__device__ inline int imin(int a, int b) { return a < b ? a : b; }
__device__ inline const __nv_bfloat16* bf(const uint16_t* p) { return reinterpret_cast<const __nv_bfloat16*>(p); }
__device__ inline uint16_t to_bf16_bits(float x) { return __bfloat16_as_ushort(__float2bfloat16_rn(x)); }

// dst[r*ld + d] = bf16(src[r*src_stride + d]) for r < n (zeros past `valid`), d < hd; every thread of the block
__device__ inline void stage_rows(uint16_t* dst, int ld, const float* __restrict__ src, int64_t src_stride, int n, int valid, int hd) {
  for (int i = threadIdx.x; i < n * hd; i += blockDim.x) {
    const int r = i / hd, d = i - r * hd;
    dst[r * ld + d] = r < valid ? to_bf16_bits(src[r * src_stride + d]) : uint16_t(0);
  }
}

// a warp's 16 rows (a[KF], row-major [16][hd] fragments) against a tile's 32 rows (tile [32][ld], read as
// its transpose): out[16][kLdF] = a · tileᵀ, columns 0..31, in fp32
template <int KF>
__device__ inline void rows_by_tile(float* out, const FragA (&a)[KF], const uint16_t* tile, int ld) {
  using namespace nvcuda;
#pragma unroll
  for (int n = 0; n < 2; n++) {
    FragC c;
    wmma::fill_fragment(c, 0.f);
#pragma unroll
    for (int f = 0; f < KF; f++) {
      FragBCol b;
      wmma::load_matrix_sync(b, bf(tile + n * 16 * ld + f * 16), ld);
      wmma::mma_sync(c, a[f], b, c);
    }
    wmma::store_matrix_sync(out + n * 16, c, kLdF, wmma::mem_row_major);
  }
}

// acc[f] += p[16][32] (bf16, stride kLdP) · tile[32][16f..16f+15] for every f
template <int KF>
__device__ inline void block_by_tile(FragC (&acc)[KF], const uint16_t* p, const uint16_t* tile, int ld) {
  using namespace nvcuda;
#pragma unroll
  for (int kk = 0; kk < 2; kk++) {
    FragA a;
    wmma::load_matrix_sync(a, bf(p + kk * 16), kLdP);
#pragma unroll
    for (int f = 0; f < KF; f++) {
      FragBRow b;
      wmma::load_matrix_sync(b, bf(tile + kk * 16 * ld + f * 16), ld);
      wmma::mma_sync(acc[f], a, b, acc[f]);
    }
  }
}

// the block's kRows rows of a head (rows r0.. of src, `valid` of them) as the warps' a fragments, staged
// through `stage` ([kRows][ld] bf16); ends with a barrier, so `stage` may be reused at once
template <int KF>
__device__ inline void load_block_rows(FragA (&a)[KF], uint16_t* stage, int ld, const float* __restrict__ src, int64_t stride, int valid) {
  using namespace nvcuda;
  stage_rows(stage, ld, src, stride, kRows, valid, KF * 16);
  __syncthreads();
  const int w = threadIdx.x / 32;
#pragma unroll
  for (int f = 0; f < KF; f++) wmma::load_matrix_sync(a[f], bf(stage + w * 16 * ld + f * 16), ld);
  __syncthreads();
}

// dst rows (16 of the warp, hd columns, row stride `stride`) (+)= acc, through the warp's [16][kLdF] scratch;
// rows at or past `valid` are not written
template <int KF>
__device__ inline void store_warp_rows(float* dst, int64_t stride, int valid, const FragC (&acc)[KF], float* scratch, bool add) {
  using namespace nvcuda;
  const int lane = threadIdx.x % 32;
#pragma unroll
  for (int f = 0; f < KF; f++) {
    __syncwarp();  // the previous fragment's values are read
    wmma::store_matrix_sync(scratch, acc[f], kLdF, wmma::mem_row_major);
    __syncwarp();
    for (int i = lane; i < 256; i += 32) {
      const int r = i / 16, c = i % 16;
      if (r >= valid) continue;
      float* d = dst + r * stride + f * 16 + c;
      *d = add ? *d + scratch[r * kLdF + c] : scratch[r * kLdF + c];
    }
  }
}

#endif

// out, lse: see attention_forward_train. grid B*nh*ceil(Tn/kRows), block kThreads
template <int KF>
__global__ void __launch_bounds__(kThreads) attention_tc_forward_kernel(float* __restrict__ out, float* __restrict__ lse,
                                                                        const float* __restrict__ q, const float* __restrict__ k,
                                                                        const float* __restrict__ v, int Tn, int nh, int nkv, float scale) {
#ifdef TAILOR_ATTENTION_TC
  using namespace nvcuda;
  constexpr int hd = KF * 16, ld = hd + 8;
  __shared__ __align__(32) uint16_t kv[2 * kTile * kLdMax];     // key tile [32][ld], value tile [32][ld]; first the queries [64][ld]
  __shared__ __align__(32) float sw[kWarps][16 * kLdF];         // each warp's scores [16][32]
  __shared__ __align__(32) uint16_t pw[kWarps][16 * kLdP];      // each warp's p [16][32] in bf16
  uint16_t* kt = kv;
  uint16_t* vt = kv + kTile * ld;
  const int tiles = (Tn + kRows - 1) / kRows;
  const int64_t bh = blockIdx.x / tiles;
  const int h = int(bh % nh), b = int(bh / nh), g = h / (nh / nkv);
  const int t0 = int(blockIdx.x % tiles) * kRows, last = imin(t0 + kRows, Tn) - 1;
  const int w = threadIdx.x / 32, lane = threadIdx.x % 32, tw = t0 + 16 * w;  // the warp's rows tw..tw+15
  const int r = lane / 2, c0 = (lane % 2) * 16, t = tw + r;                   // this lane: row t, columns c0..c0+15
  const bool active = tw <= last;
  const int64_t qs = int64_t(nh) * hd, ks = int64_t(nkv) * hd;
  const float* kb = k + int64_t(b) * Tn * ks + int64_t(g) * hd;
  const float* vb = v + int64_t(b) * Tn * ks + int64_t(g) * hd;
  FragA qa[KF];
  load_block_rows<KF>(qa, kv, ld, q + (int64_t(b) * Tn + t0) * qs + int64_t(h) * hd, qs, last + 1 - t0);
  float* s = sw[w];
  // pass 1: each lane's running max m and Σ exp(s − m) over its half row
  float m = -INFINITY, l = 0.f;
  for (int j0 = 0; j0 <= last; j0 += kTile) {
    const int n = imin(kTile, last + 1 - j0);
    __syncthreads();  // every warp is done with the previous tile
    stage_rows(kt, ld, kb + int64_t(j0) * ks, ks, kTile, n, hd);
    __syncthreads();
    if (!active || j0 > tw + 15) continue;  // warp-uniform: no key of this tile is visible from the warp's rows
    rows_by_tile<KF>(s, qa, kt, ld);
    __syncwarp();
    float mt = -INFINITY;
    for (int c = c0; c < c0 + 16; c++)
      if (t <= last && j0 + c <= t) mt = fmaxf(mt, s[r * kLdF + c] * scale);
    if (mt > -INFINITY) {
      const float mn = fmaxf(m, mt);
      float sum = 0.f;
      for (int c = c0; c < c0 + 16; c++)
        if (t <= last && j0 + c <= t) sum += expf(s[r * kLdF + c] * scale - mn);
      l = l * expf(m - mn) + sum;  // expf(−∞) = 0 on the first visible tile
      m = mn;
    }
    __syncwarp();  // the scores are read before the next tile's are stored
  }
  // the two halves of a row meet (lanes 2r and 2r+1)
  const float mo = __shfl_xor_sync(0xffffffffu, m, 1), lo = __shfl_xor_sync(0xffffffffu, l, 1);
  const float M = fmaxf(m, mo);
  const float L = (m > -INFINITY ? l * expf(m - M) : 0.f) + (mo > -INFINITY ? lo * expf(mo - M) : 0.f);
  const float lse_t = M + logf(L);  // finite on every row t ≤ last (key 0 is visible from it)
  if (active && lane % 2 == 0 && t <= last) lse[bh * Tn + t] = lse_t;
  // pass 2: out = Σ_j exp(s_tj − lse_t)·v_j, p in bf16
  FragC acc[KF];
#pragma unroll
  for (int f = 0; f < KF; f++) wmma::fill_fragment(acc[f], 0.f);
  for (int j0 = 0; j0 <= last; j0 += kTile) {
    const int n = imin(kTile, last + 1 - j0);
    __syncthreads();
    stage_rows(kt, ld, kb + int64_t(j0) * ks, ks, kTile, n, hd);
    stage_rows(vt, ld, vb + int64_t(j0) * ks, ks, kTile, n, hd);
    __syncthreads();
    if (!active || j0 > tw + 15) continue;
    rows_by_tile<KF>(s, qa, kt, ld);
    __syncwarp();
    for (int c = c0; c < c0 + 16; c++) {
      const bool vis = t <= last && j0 + c <= t;
      pw[w][r * kLdP + c] = to_bf16_bits(vis ? expf(s[r * kLdF + c] * scale - lse_t) : 0.f);
    }
    __syncwarp();
    block_by_tile<KF>(acc, pw[w], vt, ld);
  }
  if (!active) return;  // past the last barrier
  store_warp_rows<KF>(out + (int64_t(b) * Tn + tw) * qs + int64_t(h) * hd, qs, last + 1 - tw, acc, s, false);
#else
  __trap();  // never launched below sm_80: attention_tc_usable is false there
#endif
}

// dq += Σ_j ds_tj·k_j, ds_tj = p_tj·(dout_t·v_j − D_t)·scale; blocks, warps and tiles as the forward's
template <int KF>
__global__ void __launch_bounds__(kThreads) attention_tc_dq_kernel(float* __restrict__ dq, const float* __restrict__ dout,
                                                                   const float* __restrict__ lse, const float* __restrict__ D,
                                                                   const float* __restrict__ q, const float* __restrict__ k,
                                                                   const float* __restrict__ v, int Tn, int nh, int nkv, float scale) {
#ifdef TAILOR_ATTENTION_TC
  using namespace nvcuda;
  constexpr int hd = KF * 16, ld = hd + 8;
  __shared__ __align__(32) uint16_t kv[2 * kTile * kLdMax];  // key tile, value tile; first the queries, then dout
  __shared__ __align__(32) float sw[kWarps][16 * kLdF];      // scores
  __shared__ __align__(32) float gw[kWarps][16 * kLdF];      // dp = dout · vᵀ
  __shared__ __align__(32) uint16_t pw[kWarps][16 * kLdP];   // ds in bf16
  uint16_t* kt = kv;
  uint16_t* vt = kv + kTile * ld;
  const int tiles = (Tn + kRows - 1) / kRows;
  const int64_t bh = blockIdx.x / tiles;
  const int h = int(bh % nh), b = int(bh / nh), g = h / (nh / nkv);
  const int t0 = int(blockIdx.x % tiles) * kRows, last = imin(t0 + kRows, Tn) - 1;
  const int w = threadIdx.x / 32, lane = threadIdx.x % 32, tw = t0 + 16 * w;
  const int r = lane / 2, c0 = (lane % 2) * 16, t = tw + r;
  const bool active = tw <= last;
  const int64_t qs = int64_t(nh) * hd, ks = int64_t(nkv) * hd;
  const float* kb = k + int64_t(b) * Tn * ks + int64_t(g) * hd;
  const float* vb = v + int64_t(b) * Tn * ks + int64_t(g) * hd;
  const int64_t first = (int64_t(b) * Tn + t0) * qs + int64_t(h) * hd;
  FragA qa[KF], ga[KF];
  load_block_rows<KF>(qa, kv, ld, q + first, qs, last + 1 - t0);
  load_block_rows<KF>(ga, kv, ld, dout + first, qs, last + 1 - t0);
  const float L = t <= last ? lse[bh * Tn + t] : 0.f, Dt = t <= last ? D[bh * Tn + t] : 0.f;
  FragC acc[KF];
#pragma unroll
  for (int f = 0; f < KF; f++) wmma::fill_fragment(acc[f], 0.f);
  float* s = sw[w];
  float* dp = gw[w];
  for (int j0 = 0; j0 <= last; j0 += kTile) {
    const int n = imin(kTile, last + 1 - j0);
    __syncthreads();
    stage_rows(kt, ld, kb + int64_t(j0) * ks, ks, kTile, n, hd);
    stage_rows(vt, ld, vb + int64_t(j0) * ks, ks, kTile, n, hd);
    __syncthreads();
    if (!active || j0 > tw + 15) continue;
    rows_by_tile<KF>(s, qa, kt, ld);
    rows_by_tile<KF>(dp, ga, vt, ld);
    __syncwarp();
    for (int c = c0; c < c0 + 16; c++) {
      const bool vis = t <= last && j0 + c <= t;
      const float p = vis ? expf(s[r * kLdF + c] * scale - L) : 0.f;
      pw[w][r * kLdP + c] = to_bf16_bits(p * (dp[r * kLdF + c] - Dt) * scale);
    }
    __syncwarp();
    block_by_tile<KF>(acc, pw[w], kt, ld);
  }
  if (!active) return;
  store_warp_rows<KF>(dq + (int64_t(b) * Tn + tw) * qs + int64_t(h) * hd, qs, last + 1 - tw, acc, s, true);
#else
  __trap();
#endif
}

// dk/dv += Σ_{h of group g} Σ_{t≥j} (ds_tj·q_t, p_tj·dout_t). Block: (b, g) and the keys j0..j0+63, warp w keys
// j0+16w..+15; the group's heads in order, each with its queries t ≥ j0 in tiles of 32. grid B*nkv*ceil(Tn/kRows)
template <int KF>
__global__ void __launch_bounds__(kThreads) attention_tc_dkv_kernel(float* __restrict__ dk, float* __restrict__ dv, const float* __restrict__ dout,
                                                                    const float* __restrict__ lse, const float* __restrict__ D,
                                                                    const float* __restrict__ q, const float* __restrict__ k,
                                                                    const float* __restrict__ v, int Tn, int nh, int nkv, float scale) {
#ifdef TAILOR_ATTENTION_TC
  using namespace nvcuda;
  constexpr int hd = KF * 16, ld = hd + 8;
  __shared__ __align__(32) uint16_t qg[2 * kTile * kLdMax];  // query tile [32][ld], its dout tile [32][ld]; first keys, then values
  __shared__ __align__(32) float sw[kWarps][16 * kLdF];      // sᵀ [16 keys][32 queries]
  __shared__ __align__(32) float gw[kWarps][16 * kLdF];      // dpᵀ
  __shared__ __align__(32) uint16_t pw[kWarps][16 * kLdP];   // pᵀ in bf16
  __shared__ __align__(32) uint16_t dw[kWarps][16 * kLdP];   // dsᵀ in bf16
  __shared__ float tl[kTile], td[kTile];                      // lse and D of the tile's queries
  uint16_t* qt = qg;
  uint16_t* gt = qg + kTile * ld;
  const int tiles = (Tn + kRows - 1) / kRows, group = nh / nkv;
  const int64_t bg = blockIdx.x / tiles;
  const int g = int(bg % nkv), b = int(bg / nkv);
  const int j0 = int(blockIdx.x % tiles) * kRows, last = imin(j0 + kRows, Tn) - 1;  // the block's keys j0..last
  const int w = threadIdx.x / 32, lane = threadIdx.x % 32, jw = j0 + 16 * w;       // the warp's keys jw..jw+15
  const int r = lane / 2, c0 = (lane % 2) * 16, j = jw + r;                         // this lane: key j, queries c0..c0+15 of a tile
  const bool active = jw <= last;
  const int64_t qs = int64_t(nh) * hd, ks = int64_t(nkv) * hd;
  const int64_t kfirst = (int64_t(b) * Tn + j0) * ks + int64_t(g) * hd;
  FragA ka[KF], va[KF];
  load_block_rows<KF>(ka, qg, ld, k + kfirst, ks, last + 1 - j0);
  load_block_rows<KF>(va, qg, ld, v + kfirst, ks, last + 1 - j0);
  FragC ak[KF], av[KF];
#pragma unroll
  for (int f = 0; f < KF; f++) {
    wmma::fill_fragment(ak[f], 0.f);
    wmma::fill_fragment(av[f], 0.f);
  }
  float* s = sw[w];
  float* dp = gw[w];
  for (int h = g * group; h < (g + 1) * group; h++) {
    const int64_t bh = int64_t(b) * nh + h;
    for (int t0 = j0; t0 < Tn; t0 += kTile) {
      const int n = imin(kTile, Tn - t0);
      __syncthreads();
      const int64_t qfirst = (int64_t(b) * Tn + t0) * qs + int64_t(h) * hd;
      stage_rows(qt, ld, q + qfirst, qs, kTile, n, hd);
      stage_rows(gt, ld, dout + qfirst, qs, kTile, n, hd);
      if (threadIdx.x < kTile) {
        tl[threadIdx.x] = int(threadIdx.x) < n ? lse[bh * Tn + t0 + threadIdx.x] : 0.f;
        td[threadIdx.x] = int(threadIdx.x) < n ? D[bh * Tn + t0 + threadIdx.x] : 0.f;
      }
      __syncthreads();
      if (!active || t0 + n - 1 < jw) continue;  // warp-uniform: every query of the tile comes before the warp's keys
      rows_by_tile<KF>(s, ka, qt, ld);
      rows_by_tile<KF>(dp, va, gt, ld);
      __syncwarp();
      for (int c = c0; c < c0 + 16; c++) {
        const bool vis = j <= last && c < n && t0 + c >= j;
        const float p = vis ? expf(s[r * kLdF + c] * scale - tl[c]) : 0.f;
        pw[w][r * kLdP + c] = to_bf16_bits(p);
        dw[w][r * kLdP + c] = to_bf16_bits(p * (dp[r * kLdF + c] - td[c]) * scale);
      }
      __syncwarp();
      block_by_tile<KF>(av, pw[w], gt, ld);
      block_by_tile<KF>(ak, dw[w], qt, ld);
    }
  }
  if (!active) return;
  const int64_t off = (int64_t(b) * Tn + jw) * ks + int64_t(g) * hd;
  store_warp_rows<KF>(dk + off, ks, last + 1 - jw, ak, s, true);
  store_warp_rows<KF>(dv + off, ks, last + 1 - jw, av, s, true);
#else
  __trap();
#endif
}

// the kernel for hd = 16·KF: the launches below pick it by a switch over KF = 1..8
template <template <int> class Launch, typename... Args>
void by_head_dim(int hd, Args&&... args) {
  switch (hd / 16) {
    case 1: return Launch<1>::run(args...);
    case 2: return Launch<2>::run(args...);
    case 3: return Launch<3>::run(args...);
    case 4: return Launch<4>::run(args...);
    case 5: return Launch<5>::run(args...);
    case 6: return Launch<6>::run(args...);
    case 7: return Launch<7>::run(args...);
    case 8: return Launch<8>::run(args...);
    default: fail(ErrorCode::INTERNAL, "attention (tensor cores): head_dim " + std::to_string(hd));
  }
}

template <int KF>
struct Forward {
  static void run(unsigned blocks, float* out, float* lse, const float* q, const float* k, const float* v, int Tn, int nh, int nkv, float scale) {
    TAILOR_LAUNCH(attention_tc_forward_kernel<KF>, blocks, kThreads)(out, lse, q, k, v, Tn, nh, nkv, scale);
  }
};
template <int KF>
struct Dq {
  static void run(unsigned blocks, float* dq, const float* dout, const float* lse, const float* D, const float* q, const float* k, const float* v,
                  int Tn, int nh, int nkv, float scale) {
    TAILOR_LAUNCH(attention_tc_dq_kernel<KF>, blocks, kThreads)(dq, dout, lse, D, q, k, v, Tn, nh, nkv, scale);
  }
};
template <int KF>
struct Dkv {
  static void run(unsigned blocks, float* dk, float* dv, const float* dout, const float* lse, const float* D, const float* q, const float* k,
                  const float* v, int Tn, int nh, int nkv, float scale) {
    TAILOR_LAUNCH(attention_tc_dkv_kernel<KF>, blocks, kThreads)(dk, dv, dout, lse, D, q, k, v, Tn, nh, nkv, scale);
  }
};

// the checks both ops make (attention_shape's, plus the tensor cores' own); false when there is nothing to do
bool tc_shape(const char* what, int B, int Tn, int nh, int nkv, int hd) {
  if (B < 0 || Tn < 0 || nh < 0 || hd < 0) fail(ErrorCode::ARG, std::string(what) + ": negative size");
  if (B == 0 || Tn == 0 || nh == 0 || hd == 0) return false;
  if (!attention_tc_usable(hd))
    fail(ErrorCode::UNSUPPORTED, std::string(what) + ": needs sm_80+ and a head_dim that is a multiple of 16 up to 128 (head_dim " +
                                     std::to_string(hd) + ", sm_" + std::to_string(compute_capability()) + ")");
  if (nkv <= 0 || nh % nkv != 0) fail(ErrorCode::ARG, std::string(what) + ": n_head must be a multiple of n_kv");
  rows_limit(int64_t(B) * nh * ((Tn + kRows - 1) / kRows), what);
  return true;
}

}  // namespace

bool attention_tc_usable(int hd) { return hd > 0 && hd % 16 == 0 && hd <= 16 * kMaxKF && compute_capability() >= 80; }

void attention_forward_train_tc(float* out, float* lse, const float* q, const float* k, const float* v, int B, int Tn, int nh, int nkv, int hd) {
  if (!tc_shape("attention_forward_train (tensor cores)", B, Tn, nh, nkv, hd)) return;
  const float scale = float(1.0 / std::sqrt(double(hd)));
  const unsigned blocks = unsigned(int64_t(B) * nh * ((Tn + kRows - 1) / kRows));
  by_head_dim<Forward>(hd, blocks, out, lse, q, k, v, Tn, nh, nkv, scale);
  check_launch("attention_forward_train (tensor cores)");
}

void attention_backward_tc(float* dq, float* dk, float* dv, const float* dout, const float* out, const float* lse, const float* q, const float* k,
                           const float* v, int B, int Tn, int nh, int nkv, int hd, float* scratch) {
  if (!tc_shape("attention_backward (tensor cores)", B, Tn, nh, nkv, hd)) return;
  const float scale = float(1.0 / std::sqrt(double(hd)));
  const int64_t rows = int64_t(B) * nh * Tn, tiles = (Tn + kRows - 1) / kRows;
  float* D = scratch;
  float* owned = nullptr;
  if (!D) D = owned = static_cast<float*>(device_malloc(sizeof(float) * size_t(rows)));
  try {
    attention_backward_d(D, dout, out, B, Tn, nh, hd);
    by_head_dim<Dq>(hd, unsigned(int64_t(B) * nh * tiles), dq, dout, lse, D, q, k, v, Tn, nh, nkv, scale);
    check_launch("attention_backward (tensor cores, dq)");
    by_head_dim<Dkv>(hd, unsigned(int64_t(B) * nkv * tiles), dk, dv, dout, lse, D, q, k, v, Tn, nh, nkv, scale);
    check_launch("attention_backward (tensor cores, dk, dv)");
  } catch (...) {
    device_free(owned);
    throw;
  }
  device_free(owned);
}

}  // namespace cuda
}  // namespace tailor
