// attention.cu — causal GQA attention of a range of query positions against the KV cache, semantics of
// the CPU backend's attention_forward: token t (at position pos[t] of sequence slot[t]) attends to the
// cached positions 0..pos[t] of its slot, query head h to KV head h / (n_head / n_kv), scores scaled by
// 1/√hd. A block takes kTileRows consecutive tokens of the batch and one head, a warp per token:
//  - when the block's tokens are of one slot (a prompt, scored or prefilled), the slot's keys and values up
//    to the block's last position stream through shared memory in tiles that all its warps read (the tile
//    layout of attention_tile.cuh, as the training forward), so the cache is read once per block, not once
//    per token, with an online softmax per row over the tiles;
//  - otherwise (decoding several sequences, a token each) each warp walks its own slot's keys one at a time
//    with an online softmax (running max and sum, the output rescaled as the max grows).
// No score matrix is stored; both paths are exact to float rounding. A call of up to kTileRows tokens over a
// cache of 2·kAttentionSplitKeys positions or more (decoding a long sequence) would be n_head blocks, a few of a
// GPU's SMs, each reading its slot's whole cache: given scratch, its keys split among blocks instead, each
// split's partial softmax merged by a second kernel (flash-decoding).
// attention_forward_tc is the same op on bf16 tensor cores (the backend's bf16 mode, for prompts: scoring and
// prefill): blocks of 64 tokens of one slot run attention_tc.cuh's two-pass forward (q and the cached k, v
// rounded to bf16 as they are staged, p rounded to bf16 for P·V, the rest fp32); a block whose tokens are of
// several slots runs the fp32 path above, a warp per token in turn.
// The cache is fp32, or bf16 in the bf16 mode (KvView::bf16, half the memory): the fp32 paths widen its
// elements as they read them, and the tensor-core path stages them as they are, the values it would have
// rounded them to.
#include "attention_tc.cuh"
#include "attention_tile.cuh"
#include "common.cuh"
#include "kernels.h"

namespace tailor {
namespace cuda {

namespace {

using namespace tile;

// keys j_begin..j_end−1 of one token's slot into its online softmax r, by one warp, one key at a time (dims
// lane, lane+32, … per lane; qr this lane's dims of the query); the cache's elements E fp32 or bf16 bits
template <typename E>
__device__ void walk_keys(OnlineRow& r, const float (&qr)[kMaxPerLane], const E* __restrict__ kb, const E* __restrict__ vb, int j_begin, int j_end,
                          int hd, int kv_stride, float scale, int lane) {
  for (int j = j_begin; j < j_end; j++) {
    const E* kr = kb + int64_t(j) * kv_stride;
    float s = 0.f;
#pragma unroll
    for (int i = 0; i < kMaxPerLane; i++) {
      const int d = lane + 32 * i;
      if (d < hd) s += qr[i] * elem_to_float(kr[d]);
    }
    s = warp_sum(s) * scale;
    const float m_new = fmaxf(r.m, s);
    const float corr = expf(r.m - m_new);  // 0 for the first key (m = -inf)
    const float p = expf(s - m_new);
    r.l = r.l * corr + p;
    const E* vr = vb + int64_t(j) * kv_stride;
#pragma unroll
    for (int i = 0; i < kMaxPerLane; i++) {
      const int d = lane + 32 * i;
      if (d < hd) r.acc[i] = r.acc[i] * corr + p * elem_to_float(vr[d]);
    }
    r.m = m_new;
  }
}

// this lane's dims of a query row (zeros past hd)
__device__ inline void load_query(float (&qr)[kMaxPerLane], const float* __restrict__ qh, int hd, int lane) {
#pragma unroll
  for (int i = 0; i < kMaxPerLane; i++) {
    const int d = lane + 32 * i;
    qr[i] = d < hd ? qh[d] : 0.f;
  }
}

// one token's attention, by one warp: the n keys of its slot one at a time
template <typename E>
__device__ void attend_one(float* __restrict__ o, const float* __restrict__ qh, const E* __restrict__ kb, const E* __restrict__ vb,
                           int n, int hd, int kv_stride, float scale, int lane) {
  float qr[kMaxPerLane];
  load_query(qr, qh, hd, lane);
  OnlineRow r;
  walk_keys(r, qr, kb, vb, 0, n, hd, kv_stride, scale, lane);
  online_store(r, o, hd, lane);
}

// the slot of tokens t0..t0+rows−1 (−1 when they are of more than one), and their last position in *last
__device__ inline int slot_of_rows(const int* __restrict__ slot, const int* __restrict__ pos, int64_t t0, int rows, int* last) {
  int sl = slot[t0], lp = pos[t0];
  for (int r = 1; r < rows; r++) {
    if (slot[t0 + r] != sl) sl = -1;
    lp = pos[t0 + r] > lp ? pos[t0 + r] : lp;
  }
  *last = lp;
  return sl;
}

// The block's tokens of one slot against its keys j_begin..j_end−1 (kb/vb: that slot's rows at their kv head),
// the keys streamed through shared memory (sm) in tiles of nk that all the block's warps read: warp w's query
// row (row w of qrows, stride qs; `rows` of them) into its online softmax r, keys up to its position pt (−1: no
// token). Every thread of the block calls it (it has barriers).
template <typename E>
__device__ void tiled_keys(OnlineRow& r, float* sm, const float* __restrict__ qrows, int64_t qs, int rows, const E* __restrict__ kb,
                           const E* __restrict__ vb, int j_begin, int j_end, int pt, int hd, int kv_stride, int nk, float scale) {
  const int w = threadIdx.x / 32, lane = threadIdx.x % 32, st = hd + 1;
  float* kt = sm;            // key tile [nk][st]
  float* vt = kt + nk * st;  // value tile [nk][st]
  float* qt = vt + nk * st;  // the block's query rows [kTileRows][hd]
  load_rows(qt, hd, qrows, qs, kTileRows, rows, hd);
  for (int j0 = j_begin; j0 < j_end; j0 += nk) {
    const int n = imin(nk, j_end - j0);
    __syncthreads();  // every warp is done with the previous tile (and, the first time, qt is stored)
    load_rows(kt, st, kb + int64_t(j0) * kv_stride, kv_stride, n, n, hd);
    load_rows(vt, st, vb + int64_t(j0) * kv_stride, kv_stride, n, n, hd);
    __syncthreads();
    if (j0 > pt) continue;  // warp-uniform: no key of this tile is visible from this token (or no token)
    online_tile(r, qt + w * hd, kt, vt, st, imin(n, pt + 1 - j0), hd, scale, lane);  // keys j0.. ≤ pos
  }
}

// out[T, n_head*hd], q[T, n_head*hd], kc/vc[slot, n_ctx, kv_stride] (kv head g at columns g*hd..; E fp32 or bf16
// bits, widened to fp32 as tiles are loaded), pos[T], slot[T]. Block: tokens t0..t0+kTileRows−1 (warp w: t0 + w)
// and head blockIdx.y; nk keys per tile (attention_tile(hd)). grid (ceil(T / kTileRows), n_head), block kTileThreads
template <typename E>
__global__ void attention_forward_kernel(float* __restrict__ out, const float* __restrict__ q, const E* __restrict__ kc,
                                         const E* __restrict__ vc, const int* __restrict__ pos, const int* __restrict__ slot,
                                         int64_t T, int n_head, int n_kv, int hd, int n_ctx, int kv_stride, int nk, float scale) {
  __shared__ float sm[kSmemFloats];
  __shared__ int block_slot, block_last;  // the tokens' slot (−1: more than one) and their last position
  const int64_t t0 = int64_t(blockIdx.x) * kTileRows;
  const int h = int(blockIdx.y), g = h / (n_head / n_kv);
  const int w = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t t = t0 + w;
  const int rows = int(T - t0 < kTileRows ? T - t0 : kTileRows);  // the block's tokens
  const int64_t qs = int64_t(n_head) * hd;
  if (threadIdx.x == 0) block_slot = slot_of_rows(slot, pos, t0, rows, &block_last);
  __syncthreads();
  if (block_slot < 0) {  // block-uniform: tokens of several sequences, each warp on its own
    if (t < T) {
      const int64_t base = int64_t(slot[t]) * n_ctx * kv_stride + int64_t(g) * hd;
      attend_one(out + t * qs + int64_t(h) * hd, q + t * qs + int64_t(h) * hd, kc + base, vc + base, pos[t] + 1, hd, kv_stride, scale, lane);
    }
    return;
  }
  const int pt = t < T ? pos[t] : -1;  // this warp's position (−1: no token)
  const int64_t base = int64_t(block_slot) * n_ctx * kv_stride + int64_t(g) * hd;
  OnlineRow r;
  tiled_keys(r, sm, q + t0 * qs + int64_t(h) * hd, qs, rows, kc + base, vc + base, 0, block_last + 1, pt, hd, kv_stride, nk, scale);
  if (pt < 0) return;  // past the last barrier
  online_store(r, out + t * qs + int64_t(h) * hd, hd, lane);
}

// Decoding over a long cache, split (flash-decoding): a call of up to kTileRows tokens would be n_head blocks,
// each reading its slot's whole cache alone, a few of a GPU's SMs. Here block (h, c) takes split c, keys
// c·kAttentionSplitKeys.. of each token's slot, into that token's online softmax, left unnormalised in part: [S][T][n_head]
// rows of hd + 2 floats (acc, then its m and l; m = −∞, l = 0 where none of the split's keys is visible from the
// token); attention_combine_kernel merges the splits. Keys in tiles through shared memory as
// attention_forward_kernel reads them when the tokens are of one slot, else each warp walks its own. grid
// (n_head, S), block kTileThreads; warp w: token w (T ≤ kTileRows)
template <typename E>
__global__ void attention_split_kernel(float* __restrict__ part, const float* __restrict__ q, const E* __restrict__ kc, const E* __restrict__ vc,
                                       const int* __restrict__ pos, const int* __restrict__ slot, int T, int n_head, int n_kv, int hd, int n_ctx,
                                       int kv_stride, int nk, float scale) {
  __shared__ float sm[kSmemFloats];
  __shared__ int block_slot, block_last;  // the tokens' slot (−1: more than one) and their last position
  const int h = int(blockIdx.x), c = int(blockIdx.y), g = h / (n_head / n_kv);
  const int w = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int j_begin = c * kAttentionSplitKeys;
  const int64_t qs = int64_t(n_head) * hd;
  if (threadIdx.x == 0) block_slot = slot_of_rows(slot, pos, 0, T, &block_last);
  __syncthreads();
  const int pt = w < T ? pos[w] : -1;  // this warp's position (−1: no token)
  OnlineRow r;
  if (block_slot < 0) {  // block-uniform: tokens of several sequences, each warp on its own
    if (w < T) {
      float qr[kMaxPerLane];
      load_query(qr, q + w * qs + int64_t(h) * hd, hd, lane);
      const int64_t base = int64_t(slot[w]) * n_ctx * kv_stride + int64_t(g) * hd;
      walk_keys(r, qr, kc + base, vc + base, j_begin, imin(j_begin + kAttentionSplitKeys, pt + 1), hd, kv_stride, scale, lane);
    }
  } else {
    const int j_end = imin(j_begin + kAttentionSplitKeys, block_last + 1);  // block-uniform
    const int64_t base = int64_t(block_slot) * n_ctx * kv_stride + int64_t(g) * hd;
    tiled_keys(r, sm, q + int64_t(h) * hd, qs, T, kc + base, vc + base, j_begin, j_end, pt, hd, kv_stride, nk, scale);
  }
  if (w >= T) return;  // past the last barrier
  float* p = part + ((int64_t(c) * T + w) * n_head + h) * (hd + 2);
#pragma unroll
  for (int i = 0; i < kMaxPerLane; i++) {
    const int d = lane + 32 * i;
    if (d < hd) p[d] = r.acc[i];
  }
  if (lane == 0) p[hd] = r.m, p[hd + 1] = r.l;
}

// out[t, h·hd + d] = Σ_c acc_c[d]·e^(m_c − M) / Σ_c l_c·e^(m_c − M) over the S splits of part, M = max_c m_c (split 0
// holds key 0, which every token sees, so M is finite); grid (T, n_head), block 128
__global__ void attention_combine_kernel(float* __restrict__ out, const float* __restrict__ part, int T, int n_head, int hd, int S) {
  const int t = int(blockIdx.x), h = int(blockIdx.y);
  const int64_t row = hd + 2, split = int64_t(T) * n_head * row;  // floats per (token, head) and per split
  const float* p0 = part + (int64_t(t) * n_head + h) * row;
  float M = -INFINITY, L = 0.f;
  for (int c = 0; c < S; c++) M = fmaxf(M, p0[c * split + hd]);
  for (int c = 0; c < S; c++) {
    const float m = p0[c * split + hd];
    if (m > -INFINITY) L += p0[c * split + hd + 1] * expf(m - M);
  }
  const float inv = 1.f / L;
  for (int d = threadIdx.x; d < hd; d += blockDim.x) {
    float a = 0.f;
    for (int c = 0; c < S; c++) {
      const float m = p0[c * split + hd];
      if (m > -INFINITY) a += p0[c * split + d] * expf(m - M);
    }
    out[int64_t(t) * n_head * hd + int64_t(h) * hd + d] = a * inv;
  }
}

// the same on bf16 tensor cores: tokens t0..t0+63 (warp w: 16 of them) and head blockIdx.y; grid (ceil(T / 64),
// n_head), block tc::kThreads
template <int KF, typename E>
__global__ void __launch_bounds__(tc::kThreads) attention_forward_tc_kernel(float* __restrict__ out, const float* __restrict__ q,
                                                                            const E* __restrict__ kc, const E* __restrict__ vc,
                                                                            const int* __restrict__ pos, const int* __restrict__ slot, int64_t T,
                                                                            int n_head, int n_kv, int n_ctx, int kv_stride, float scale) {
#ifdef TAILOR_ATTENTION_TC
  constexpr int hd = KF * 16, ld = hd + 8;
  __shared__ __align__(32) uint16_t kv[2 * tc::kTile * tc::kLdMax];  // key tile, value tile; first the queries [64][ld]
  __shared__ __align__(32) float sw[tc::kWarps][16 * tc::kLdF];
  __shared__ __align__(32) uint16_t pw[tc::kWarps][16 * tc::kLdP];
  __shared__ int block_slot, block_last;  // the tokens' slot (−1: more than one) and their last position
  const int64_t t0 = int64_t(blockIdx.x) * tc::kRows;
  const int h = int(blockIdx.y), g = h / (n_head / n_kv);
  const int w = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int rows = int(T - t0 < tc::kRows ? T - t0 : tc::kRows);  // the block's tokens
  const int64_t qs = int64_t(n_head) * hd;
  if (threadIdx.x == 0) block_slot = slot_of_rows(slot, pos, t0, rows, &block_last);
  __syncthreads();
  if (block_slot < 0) {  // block-uniform: tokens of several sequences, each warp on its 16 in turn (fp32)
    for (int i = 0; i < 16; i++) {
      const int64_t t = t0 + 16 * w + i;
      if (t >= T) break;
      const int64_t base = int64_t(slot[t]) * n_ctx * kv_stride + int64_t(g) * hd;
      attend_one(out + t * qs + int64_t(h) * hd, q + t * qs + int64_t(h) * hd, kc + base, vc + base, pos[t] + 1, hd, kv_stride, scale, lane);
    }
    return;
  }
  const int64_t tw = t0 + 16 * w, t = tw + lane / 2;  // the warp's first token, this lane's
  const int lim = t < T ? pos[t] : -1;                 // the last key this lane's row sees
  int warp_lim = lim;
  for (int o = 16; o > 0; o >>= 1) {
    const int other = __shfl_xor_sync(0xffffffffu, warp_lim, o);
    warp_lim = other > warp_lim ? other : warp_lim;
  }
  const int64_t base = int64_t(block_slot) * n_ctx * kv_stride + int64_t(g) * hd;
  tc::FragA qa[KF];
  tc::load_block_rows<KF>(qa, kv, ld, q + t0 * qs + int64_t(h) * hd, qs, rows, 16 * w);
  tc::FragC acc[KF];
  tc::forward_rows<KF>(acc, qa, kv, sw[w], pw[w], kc + base, vc + base, kv_stride, block_last, lim, warp_lim, scale);
  if (tw >= T) return;  // past the last barrier
  tc::store_warp_rows<KF>(out + tw * qs + int64_t(h) * hd, qs, int(T - tw < 16 ? T - tw : 16), acc, sw[w], false);
#else
  __trap();  // never launched below sm_80: attention_tc_usable is false there
#endif
}

template <int KF>
struct ForwardTc {
  static void run(dim3 grid, float* out, const float* q, const KvView& kv, const int* pos, const int* slot, int64_t T, int n_head, int n_kv,
                  float scale) {
    if (kv.bf16)
      TAILOR_LAUNCH((attention_forward_tc_kernel<KF, uint16_t>), grid, tc::kThreads)(out, q, kv.k16(), kv.v16(), pos, slot, T, n_head, n_kv, kv.n_ctx,
                                                                                  kv.kv_stride, scale);
    else
      TAILOR_LAUNCH((attention_forward_tc_kernel<KF, float>), grid, tc::kThreads)(out, q, kv.k32(), kv.v32(), pos, slot, T, n_head, n_kv, kv.n_ctx,
                                                                               kv.kv_stride, scale);
  }
};

}  // namespace

void attention_forward_tc(float* out, const float* q, const KvView& kv, const int* pos, const int* slot, int64_t T, int n_head, int n_kv,
                          int hd) {
  if (!attention_args("attention_forward (tensor cores)", 1, T, n_head, n_kv, hd, attention_tc_usable(hd), tc::kNeeds, tc::kRows)) return;
  const int64_t blocks = (T + tc::kRows - 1) / tc::kRows;
  tc::by_head_dim<ForwardTc>(hd, dim3(unsigned(blocks), unsigned(n_head)), out, q, kv, pos, slot, T, n_head, n_kv, 1.f / sqrtf(float(hd)));
  check_launch("attention_forward (tensor cores)");
}

int attention_splits(int n_ctx) { return (n_ctx + kAttentionSplitKeys - 1) / kAttentionSplitKeys; }

int64_t attention_forward_scratch(int64_t T, int n_head, int hd, int n_ctx) {
  if (T < 1 || T > kTileRows || n_ctx < 2 * kAttentionSplitKeys) return 0;
  return int64_t(attention_splits(n_ctx)) * T * n_head * (hd + 2);
}

void attention_forward(float* out, const float* q, const KvView& kv, const int* pos, const int* slot, int64_t T, int n_head, int n_kv,
                       int hd, float* scratch) {
  if (!attention_args("attention_forward", 1, T, n_head, n_kv, hd, tile::usable(hd), tile::kNeeds, kTileRows)) return;
  const float scale = 1.f / sqrtf(float(hd));
  if (scratch && attention_forward_scratch(T, n_head, hd, kv.n_ctx) > 0) {  // decoding over a long cache: split
    const int splits = attention_splits(kv.n_ctx);
    const dim3 grid(static_cast<unsigned>(n_head), static_cast<unsigned>(splits));
    if (kv.bf16)
      TAILOR_LAUNCH(attention_split_kernel<uint16_t>, grid, kTileThreads)(scratch, q, kv.k16(), kv.v16(), pos, slot, int(T), n_head, n_kv, hd,
                                                                          kv.n_ctx, kv.kv_stride, attention_tile(hd), scale);
    else
      TAILOR_LAUNCH(attention_split_kernel<float>, grid, kTileThreads)(scratch, q, kv.k32(), kv.v32(), pos, slot, int(T), n_head, n_kv, hd,
                                                                       kv.n_ctx, kv.kv_stride, attention_tile(hd), scale);
    TAILOR_LAUNCH(attention_combine_kernel, dim3(unsigned(T), unsigned(n_head)), 128)(out, scratch, int(T), n_head, hd, splits);
    check_launch("attention_forward (split)");
    return;
  }
  const dim3 grid(unsigned((T + kTileRows - 1) / kTileRows), unsigned(n_head));
  if (kv.bf16)
    TAILOR_LAUNCH(attention_forward_kernel<uint16_t>, grid, kTileThreads)(out, q, kv.k16(), kv.v16(), pos, slot, T, n_head, n_kv, hd, kv.n_ctx,
                                                                          kv.kv_stride, attention_tile(hd), scale);
  else
    TAILOR_LAUNCH(attention_forward_kernel<float>, grid, kTileThreads)(out, q, kv.k32(), kv.v32(), pos, slot, T, n_head, n_kv, hd, kv.n_ctx,
                                                                       kv.kv_stride, attention_tile(hd), scale);
  check_launch("attention_forward");
}

}  // namespace cuda
}  // namespace tailor
