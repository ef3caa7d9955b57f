// attention_tile.cuh — what the tiled attention kernels share (train.cu's forward and backward, attention.cu's
// inference kernel): the block layout and the helpers over tiles in shared memory.
// A block owns kTileRows query rows (or key rows) of one head, one per warp, in shared memory; the other side
// streams through shared memory in tiles of nk rows (attention_tile) that all the block's warps read. In a
// tile lane l owns row l: its score is one thread's dot product over the head (rows at stride hd+1, so lanes
// hit distinct banks, no shuffles), and the sums over the tile's rows go per dimension (dims lane, lane+32,
// …) with row l's weight passed from lane l by a shuffle. Every kernel computes s_tj with the same code in the
// same order (q·k over d = 0..hd−1, then ×scale), so a backward rebuilds its forward's scores exactly.
#pragma once
#include <algorithm>

#include "common.cuh"

namespace tailor {
namespace cuda {
namespace tile {

constexpr int kTileRows = 8;                  // query (or key) rows per block, one per warp
constexpr int kTileThreads = 32 * kTileRows;
constexpr int kSmemFloats = 11264;            // 44 KiB of static shared memory per block (the limit is 48)
constexpr int kMaxPerLane = 8;                // head_dim ≤ 32 × 8 = 256
constexpr const char* kNeeds = "head_dim up to 256";  // usable(hd), in words (attention_args)
inline bool usable(int hd) { return hd <= 32 * kMaxPerLane; }

__device__ inline int imin(int a, int b) { return a < b ? a : b; }

// Σ_d a[d]·b[d] in order, by one thread
__device__ inline float row_dot(const float* a, const float* b, int hd) {
  float s = 0.f;
  for (int d = 0; d < hd; d++) s += a[d] * b[d];
  return s;
}

// acc[i] (dimension lane + 32i) += Σ_{r0 ≤ r < n} c_r · rows[r*stride + d], where c_r is lane r's c: the
// whole warp takes part (the coefficients travel by shuffles), rows added in order
__device__ inline void add_weighted_rows(float (&acc)[kMaxPerLane], float c, int r0, int n, const float* rows, int stride, int hd, int lane) {
  for (int r = r0; r < n; r++) {
    const float cr = __shfl_sync(0xffffffffu, c, r);
    const float* row = rows + r * stride;
#pragma unroll
    for (int i = 0; i < kMaxPerLane; i++) {
      const int d = lane + 32 * i;
      if (d < hd) acc[i] += cr * row[d];
    }
  }
}

// dst[r*stride + d] = src[r*src_stride + d] for the n rows r (0 past the first `valid`), d < hd, src fp32 or bf16
// bits (a bf16 KV cache); every thread of the block
template <typename S>
__device__ inline void load_rows(float* dst, int stride, const S* __restrict__ src, int64_t src_stride, int n, int valid, int hd) {
  for (int i = threadIdx.x; i < n * hd; i += blockDim.x) {
    const int r = i / hd, d = i - r * hd;
    dst[r * stride + d] = r < valid ? elem_to_float(src[r * src_stride + d]) : 0.f;
  }
}


// One query row's online softmax over the key tiles (the warp's row): the running max m of its scores, l =
// Σ exp(s − m), and acc = Σ exp(s − m)·v (dims lane, lane+32, …), rescaled as m grows.
struct OnlineRow {
  float m = -INFINITY, l = 0.f;
  float acc[kMaxPerLane] = {};
};
// takes in keys 0..nj−1 of a tile (kt, vt at stride st; lane l scores key l): s = q·k·scale. nj ≥ 1 (lane 0's
// key is visible), so m stays finite
__device__ inline void online_tile(OnlineRow& r, const float* qrow, const float* kt, const float* vt, int st, int nj, int hd, float scale, int lane) {
  const float s = lane < nj ? row_dot(qrow, kt + lane * st, hd) * scale : -INFINITY;
  const float m_new = fmaxf(r.m, warp_max(s));
  const float corr = expf(r.m - m_new);  // 0 on the first tile (m = −∞)
  const float p = lane < nj ? expf(s - m_new) : 0.f;
  r.l = r.l * corr + warp_sum(p);
#pragma unroll
  for (int i = 0; i < kMaxPerLane; i++) r.acc[i] *= corr;
  add_weighted_rows(r.acc, p, 0, nj, vt, st, hd, lane);
  r.m = m_new;
}
// o[d] = acc[d] / l
__device__ inline void online_store(const OnlineRow& r, float* o, int hd, int lane) {
  const float inv = 1.f / r.l;
#pragma unroll
  for (int i = 0; i < kMaxPerLane; i++) {
    const int d = lane + 32 * i;
    if (d < hd) o[d] = r.acc[i] * inv;
  }
}

// rows per streamed tile: two tiles [nk][hd+1] and two row sets [kTileRows][hd] fit in kSmemFloats.
// 32 (a row per lane) up to hd = 128, 13 at hd = 256 (lanes past nk idle while scoring)
inline int attention_tile(int hd) { return std::min(32, (kSmemFloats - 2 * kTileRows * hd) / (2 * (hd + 1))); }

}  // namespace tile
}  // namespace cuda
}  // namespace tailor
