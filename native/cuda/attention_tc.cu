// attention_tc.cu — the training attention (causal, GQA, flash-style: only lse[B, nh, Tn] is kept) on bf16
// tensor cores (WMMA, sm_80+), for the backend's bf16 mode: the same contract as attention_forward_train /
// attention_backward in train.cu, whose fp32 SIMT kernels spend two shared-memory loads per multiply-add.
//   q, k, v (and dout) are rounded to bf16 as their tiles are staged; every product accumulates in fp32;
//   the scores, the softmax statistics and D_t = dout_t·out_t stay fp32; the probabilities p and the
//   score gradients ds are rounded to bf16 for the products they feed (P·V, Pᵀ·dO, dS·K, dSᵀ·Q).
//   Head dims that are multiples of 16 up to 128 (attention_tc_usable); other shapes take the fp32 kernels.
// Layout: a warp owns 16 rows (queries), a block 4 warps = 64 rows of one head (the backward's kernels: a pair of
// warps owns 16 queries or keys, a block 8 warps = 64, each warp of a pair one of the two products per tile);
// the other side streams through shared memory in tiles of 32 rows, as bf16 at a row stride of hd + 8.
//   forward      two passes over the key tiles: the first computes each row's max and Σ exp (so lse), the
//                second p = exp(s − lse) and out = Σ p·v, so the output accumulators never need rescaling
//   backward dq  per block of 64 queries: s and dp = dout·vᵀ per key tile, ds = p·(dp − D)·scale, dq += ds·k
//                (one warp of a pair computing s and dq's first half of columns, the other dp and the rest)
//   backward dkv per block of 64 keys, over the group's heads and the queries t ≥ j in tiles of 32:
//                sᵀ and dpᵀ per tile, dv += pᵀ·dout, dk += dsᵀ·q (fixed order, no atomics), one warp of a pair
//                computing sᵀ and dv, the other dpᵀ and dk
#include "attention_tc.cuh"
#include "kernels.h"

namespace tailor {
namespace cuda {

namespace {

using namespace tc;

#ifdef TAILOR_ATTENTION_TC
// Where a forward block works (grid B*nh*ceil(Tn/kRows), block kThreads): head h of batch row b (key and
// value group g); query rows t0..last; warp w's rows tw..tw+15 (active: it has some); lane `lane`'s row
// t = tw + lane/2. Offsets: q_block of row t0's head h in q (and dout, out, dq), q_warp of row tw's, kv of row
// b's token 0 in group g of k (and v); qs, ks: a token's stride in q and in k.
struct QueryBlock {
  int64_t bh, qs, ks, q_block, q_warp, kv;
  int t0, last, w, lane, tw, t;
  bool active;
  __device__ QueryBlock(int Tn, int nh, int nkv, int hd) {
    const int tiles = (Tn + kRows - 1) / kRows;
    bh = blockIdx.x / tiles;
    const int h = int(bh % nh), b = int(bh / nh), g = h / (nh / nkv);
    t0 = int(blockIdx.x % tiles) * kRows;
    last = imin(t0 + kRows, Tn) - 1;
    w = threadIdx.x / 32;
    lane = threadIdx.x % 32;
    tw = t0 + 16 * w;
    t = tw + lane / 2;
    active = tw <= last;
    qs = int64_t(nh) * hd;
    ks = int64_t(nkv) * hd;
    q_block = (int64_t(b) * Tn + t0) * qs + int64_t(h) * hd;
    q_warp = q_block + 16 * w * qs;
    kv = int64_t(b) * Tn * ks + int64_t(g) * hd;
  }
};
#endif

// out, lse: see attention_forward_train. grid B*nh*ceil(Tn/kRows), block kThreads
template <int KF>
__global__ void __launch_bounds__(kThreads) attention_tc_forward_kernel(float* __restrict__ out, float* __restrict__ lse,
                                                                        const float* __restrict__ q, const float* __restrict__ k,
                                                                        const float* __restrict__ v, int Tn, int nh, int nkv, float scale) {
#ifdef TAILOR_ATTENTION_TC
  constexpr int hd = KF * 16, ld = hd + 8;
  __shared__ __align__(32) uint16_t kv[2 * kTile * kLdMax];  // key tile [32][ld], value tile [32][ld]; first the queries [64][ld]
  __shared__ __align__(32) float sw[kWarps][16 * kLdF];      // each warp's scores [16][32]
  __shared__ __align__(32) uint16_t pw[kWarps][16 * kLdP];   // each warp's p [16][32] in bf16
  const QueryBlock qb(Tn, nh, nkv, hd);
  const int w = qb.w, t = qb.t, last = qb.last;
  FragA qa[KF];
  load_block_rows<KF>(qa, kv, ld, q + qb.q_block, qb.qs, last + 1 - qb.t0, 16 * w);
  FragC acc[KF];
  const float lse_t = forward_rows<KF>(acc, qa, kv, sw[w], pw[w], k + qb.kv, v + qb.kv, qb.ks, last, t <= last ? t : -1, qb.active ? qb.tw + 15 : -1,
                                       scale);
  if (qb.active && qb.lane % 2 == 0 && t <= last) lse[qb.bh * Tn + t] = lse_t;
  if (!qb.active) return;  // past the last barrier
  store_warp_rows<KF>(out + qb.q_warp, qb.qs, last + 1 - qb.tw, acc, sw[w], false);
#else
  __trap();  // never launched below sm_80: attention_tc_usable is false there
#endif
}

// dq += Σ_j ds_tj·k_j, ds_tj = p_tj·(dout_t·v_j − D_t)·scale. Blocks and tiles as the forward's, in 8 warps:
// pair p (warps 2p, 2p+1) queries t0+16p..+15. A pair splits each key tile: warp 2p keeps the queries'
// fragments and computes s = q·kᵀ, warp 2p+1 keeps dout's and computes dp = dout·vᵀ; the pair's 64 threads turn
// them into ds; then warp 2p accumulates dq's first ⌈hd/32⌉ 16-column blocks and warp 2p+1 the rest. So a warp
// holds one [16][hd] operand and half an accumulator: 64 registers of fragments at hd = 128, not 128.
// grid B*nh*ceil(Tn/kRows), block kPairThreads
template <int KF>
__global__ void __launch_bounds__(kPairThreads) attention_tc_dq_kernel(float* __restrict__ dq, const float* __restrict__ dout,
                                                                       const float* __restrict__ lse, const float* __restrict__ D,
                                                                       const float* __restrict__ q, const float* __restrict__ k,
                                                                       const float* __restrict__ v, int Tn, int nh, int nkv, float scale) {
#ifdef TAILOR_ATTENTION_TC
  using namespace nvcuda;
  constexpr int hd = KF * 16, ld = hd + 8, KH = (KF + 1) / 2;
  __shared__ __align__(32) uint16_t kv[2 * kTile * kLdMax];  // key tile, value tile; first the queries, then dout [64][ld]
  __shared__ __align__(32) float sw[kWarps][16 * kLdF];      // each pair's scores
  __shared__ __align__(32) float gw[kWarps][16 * kLdF];      // each pair's dp = dout · vᵀ
  __shared__ __align__(32) uint16_t pw[kWarps][16 * kLdP];   // each pair's ds in bf16
  uint16_t* kt = kv;
  uint16_t* vt = kv + kTile * ld;
  const int tiles = (Tn + kRows - 1) / kRows;
  const int64_t bh = blockIdx.x / tiles;
  const int h = int(bh % nh), b = int(bh / nh), g = h / (nh / nkv);
  const int t0 = int(blockIdx.x % tiles) * kRows, last = imin(t0 + kRows, Tn) - 1;  // the block's queries t0..last
  const int pair = threadIdx.x / 64, role = (threadIdx.x / 32) % 2;                 // role 0: q, s, dq's first KH blocks
  const int tw = t0 + 16 * pair;                                                    // the pair's queries tw..tw+15
  const int i = threadIdx.x % 64, r = i / 4, c0 = (i % 4) * 8, t = tw + r;          // this thread: query t, keys c0..c0+7 of a tile
  const bool active = tw <= last;
  const int64_t qs = int64_t(nh) * hd, ks = int64_t(nkv) * hd;
  const int64_t q_block = (int64_t(b) * Tn + t0) * qs + int64_t(h) * hd, kvo = int64_t(b) * Tn * ks + int64_t(g) * hd;
  FragA own[KF];  // the pair's 16 rows [16][hd] of q (role 0) or dout (role 1)
  load_block_rows<KF>(own, kv, ld, q + q_block, qs, last + 1 - t0, 16 * pair, role == 0);
  load_block_rows<KF>(own, kv, ld, dout + q_block, qs, last + 1 - t0, 16 * pair, role == 1);
  const float L = t <= last ? lse[bh * Tn + t] : 0.f, Dt = t <= last ? D[bh * Tn + t] : 0.f;
  const int f0 = role == 0 ? 0 : KH, nf = role == 0 ? KH : KF - KH;  // this warp's 16-column blocks of dq
  FragC acc[KH];
#pragma unroll
  for (int f = 0; f < KH; f++) wmma::fill_fragment(acc[f], 0.f);
  float* s = sw[pair];
  float* dp = gw[pair];
  for (int j0 = 0; j0 <= last; j0 += kTile) {
    stage_key_tile<KF>(kv, k + kvo, v + kvo, ks, j0, last);
    const bool work = active && j0 <= tw + 15;  // pair-uniform: some key of the tile is visible from the pair's queries
    if (work) rows_by_tile<KF>(role == 0 ? s : dp, own, role == 0 ? kt : vt, ld);
    __syncthreads();  // the pair's s and dp are in place
    if (work)
      for (int c = c0; c < c0 + 8; c++) {
        const bool vis = t <= last && j0 + c <= t;
        const float p = vis ? expf(s[r * kLdF + c] * scale - L) : 0.f;
        pw[pair][r * kLdP + c] = to_bf16_bits(p * (dp[r * kLdF + c] - Dt) * scale);
      }
    __syncthreads();  // the pair's ds is in place
    if (work) block_by_tile<KH>(acc, pw[pair], kt + f0 * 16, ld, nf);
  }
  if (!active || nf == 0) return;
  store_warp_rows<KH>(dq + q_block + int64_t(16 * pair) * qs + f0 * 16, qs, last + 1 - tw, acc, role == 0 ? s : dp, true, nf);
#else
  __trap();
#endif
}

// dk/dv += Σ_{h of group g} Σ_{t≥j} (ds_tj·q_t, p_tj·dout_t). Block: (b, g) and the keys j0..j0+63, in 8 warps,
// pair p (warps 2p, 2p+1) keys j0+16p..+15; the group's heads in order, each with its queries t ≥ j0 in tiles of
// 32. A pair splits each tile: warp 2p keeps the keys' fragments, computes sᵀ = k·qᵀ and accumulates dv += pᵀ·dout;
// warp 2p+1 keeps the values', computes dpᵀ = v·doutᵀ and accumulates dk += dsᵀ·q; between, the pair's 64 threads
// turn (sᵀ, dpᵀ) into (pᵀ, dsᵀ). So a warp holds one [16][hd] operand and one accumulator, 96 registers of
// fragments at hd = 128 where one warp holding both took 192 (and ran out of registers at hd = 112).
// grid B*nkv*ceil(Tn/kRows), block kPairThreads

template <int KF>
__global__ void __launch_bounds__(kPairThreads) attention_tc_dkv_kernel(float* __restrict__ dk, float* __restrict__ dv, const float* __restrict__ dout,
                                                                       const float* __restrict__ lse, const float* __restrict__ D,
                                                                       const float* __restrict__ q, const float* __restrict__ k,
                                                                       const float* __restrict__ v, int Tn, int nh, int nkv, float scale) {
#ifdef TAILOR_ATTENTION_TC
  using namespace nvcuda;
  constexpr int hd = KF * 16, ld = hd + 8;
  __shared__ __align__(32) uint16_t qg[2 * kTile * kLdMax];  // query tile [32][ld], its dout tile [32][ld]; first keys, then values [64][ld]
  __shared__ __align__(32) float sw[kWarps][16 * kLdF];      // each pair's sᵀ [16 keys][32 queries]
  __shared__ __align__(32) float gw[kWarps][16 * kLdF];      // each pair's dpᵀ
  __shared__ __align__(32) uint16_t pw[kWarps][16 * kLdP];   // each pair's pᵀ in bf16
  __shared__ __align__(32) uint16_t dw[kWarps][16 * kLdP];   // each pair's dsᵀ in bf16
  __shared__ float tl[kTile], td[kTile];                      // lse and D of the tile's queries
  uint16_t* qt = qg;
  uint16_t* gt = qg + kTile * ld;
  const int tiles = (Tn + kRows - 1) / kRows, group = nh / nkv;
  const int64_t bg = blockIdx.x / tiles;
  const int g = int(bg % nkv), b = int(bg / nkv);
  const int j0 = int(blockIdx.x % tiles) * kRows, last = imin(j0 + kRows, Tn) - 1;  // the block's keys j0..last
  const int pair = threadIdx.x / 64, role = (threadIdx.x / 32) % 2;                 // role 0: keys, sᵀ, dv; 1: values, dpᵀ, dk
  const int jw = j0 + 16 * pair;                                                    // the pair's keys jw..jw+15
  const int i = threadIdx.x % 64, r = i / 4, c0 = (i % 4) * 8, j = jw + r;          // this thread: key j, queries c0..c0+7 of a tile
  const bool active = jw <= last;
  const int64_t qs = int64_t(nh) * hd, ks = int64_t(nkv) * hd;
  const int64_t kfirst = (int64_t(b) * Tn + j0) * ks + int64_t(g) * hd;
  FragA own[KF];  // the pair's 16 rows [16][hd] of k (role 0) or v (role 1)
  load_block_rows<KF>(own, qg, ld, k + kfirst, ks, last + 1 - j0, 16 * pair, role == 0);
  load_block_rows<KF>(own, qg, ld, v + kfirst, ks, last + 1 - j0, 16 * pair, role == 1);
  FragC acc[KF];  // dv (role 0) or dk (role 1) of the pair's keys
#pragma unroll
  for (int f = 0; f < KF; f++) wmma::fill_fragment(acc[f], 0.f);
  float* s = sw[pair];
  float* dp = gw[pair];
  for (int h = g * group; h < (g + 1) * group; h++) {
    const int64_t bh = int64_t(b) * nh + h;
    for (int t0 = j0; t0 < Tn; t0 += kTile) {
      const int n = imin(kTile, Tn - t0);
      __syncthreads();  // the previous tile's products are done with qt, gt, pw, dw
      const int64_t qfirst = (int64_t(b) * Tn + t0) * qs + int64_t(h) * hd;
      stage_rows(qt, ld, q + qfirst, qs, kTile, n, hd);
      stage_rows(gt, ld, dout + qfirst, qs, kTile, n, hd);
      if (threadIdx.x < kTile) {
        tl[threadIdx.x] = int(threadIdx.x) < n ? lse[bh * Tn + t0 + threadIdx.x] : 0.f;
        td[threadIdx.x] = int(threadIdx.x) < n ? D[bh * Tn + t0 + threadIdx.x] : 0.f;
      }
      __syncthreads();
      const bool work = active && t0 + n - 1 >= jw;  // pair-uniform: some query of the tile sees some key of the pair's
      if (work) rows_by_tile<KF>(role == 0 ? s : dp, own, role == 0 ? qt : gt, ld);
      __syncthreads();  // the pair's sᵀ and dpᵀ are in place
      if (work)
        for (int c = c0; c < c0 + 8; c++) {
          const bool vis = j <= last && c < n && t0 + c >= j;
          const float p = vis ? expf(s[r * kLdF + c] * scale - tl[c]) : 0.f;
          pw[pair][r * kLdP + c] = to_bf16_bits(p);
          dw[pair][r * kLdP + c] = to_bf16_bits(p * (dp[r * kLdF + c] - td[c]) * scale);
        }
      __syncthreads();  // the pair's pᵀ and dsᵀ are in place
      if (work) block_by_tile<KF>(acc, role == 0 ? pw[pair] : dw[pair], role == 0 ? gt : qt, ld);
    }
  }
  if (!active) return;
  const int64_t off = (int64_t(b) * Tn + jw) * ks + int64_t(g) * hd;
  store_warp_rows<KF>((role == 0 ? dv : dk) + off, ks, last + 1 - jw, acc, role == 0 ? s : dp, true);
#else
  __trap();
#endif
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
    TAILOR_LAUNCH(attention_tc_dq_kernel<KF>, blocks, kPairThreads)(dq, dout, lse, D, q, k, v, Tn, nh, nkv, scale);
  }
};
template <int KF>
struct Dkv {
  static void run(unsigned blocks, float* dk, float* dv, const float* dout, const float* lse, const float* D, const float* q, const float* k,
                  const float* v, int Tn, int nh, int nkv, float scale) {
    TAILOR_LAUNCH(attention_tc_dkv_kernel<KF>, blocks, kPairThreads)(dk, dv, dout, lse, D, q, k, v, Tn, nh, nkv, scale);
  }
};

}  // namespace

bool attention_tc_usable(int hd) { return hd > 0 && hd % 16 == 0 && hd <= 16 * kMaxKF && compute_capability() >= 80; }

void attention_forward_train_tc(float* out, float* lse, const float* q, const float* k, const float* v, int B, int Tn, int nh, int nkv, int hd) {
  if (!attention_args("attention_forward_train (tensor cores)", B, Tn, nh, nkv, hd, attention_tc_usable(hd), kNeeds, kRows)) return;
  const float scale = float(1.0 / std::sqrt(double(hd)));
  const unsigned blocks = unsigned(int64_t(B) * nh * ((Tn + kRows - 1) / kRows));
  by_head_dim<Forward>(hd, blocks, out, lse, q, k, v, Tn, nh, nkv, scale);
  check_launch("attention_forward_train (tensor cores)");
}

void attention_backward_tc(float* dq, float* dk, float* dv, const float* dout, const float* out, const float* lse, const float* q, const float* k,
                           const float* v, int B, int Tn, int nh, int nkv, int hd, float* scratch) {
  if (!attention_args("attention_backward (tensor cores)", B, Tn, nh, nkv, hd, attention_tc_usable(hd), kNeeds, kRows)) return;
  const float scale = float(1.0 / std::sqrt(double(hd)));
  const int64_t rows = int64_t(B) * nh * Tn, tiles = (Tn + kRows - 1) / kRows;
  const CallScratch d_rows(scratch, rows);
  float* D = d_rows.get();
  attention_backward_d(D, dout, out, B, Tn, nh, hd);
  by_head_dim<Dq>(hd, unsigned(int64_t(B) * nh * tiles), dq, dout, lse, D, q, k, v, Tn, nh, nkv, scale);
  check_launch("attention_backward (tensor cores, dq)");
  by_head_dim<Dkv>(hd, unsigned(int64_t(B) * nkv * tiles), dk, dv, dout, lse, D, q, k, v, Tn, nh, nkv, scale);
  check_launch("attention_backward (tensor cores, dk, dv)");
}

}  // namespace cuda
}  // namespace tailor
