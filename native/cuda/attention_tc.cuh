// attention_tc.cuh — what the bf16 tensor-core attention kernels share (attention_tc.cu: training forward and
// backward; attention.cu: the forward over the KV cache): the block layout, the staging of fp32 rows as bf16
// tiles, the warp-level WMMA products over those tiles, and the two-pass forward of a block's query rows.
// A warp owns 16 rows, a block 4 warps = 64 rows of one head; the other side streams through shared memory in
// tiles of 32 rows, as bf16 at a row stride of hd + 8 (rows 32-byte aligned, as WMMA requires). Lane l works
// on row l/2 of its warp's 16, columns (l%2)·16 .. +15 of a tile's 32.
#pragma once
#include <mma.h>

#include <cmath>

#include <cuda_bf16.h>

#include "common.cuh"

namespace tailor {
namespace cuda {
namespace tc {

constexpr int kWarps = 4, kThreads = 32 * kWarps;  // a block: 4 warps of 16 rows
constexpr int kRows = 16 * kWarps;                   // 64 rows per block
constexpr int kPairThreads = 2 * kThreads;           // the backward's blocks: 4 pairs of warps, a pair per 16 rows
constexpr int kMaxKF = 8;                            // hd/16 up to 8 (head_dim 128)
constexpr const char* kNeeds = "sm_80+ and a head_dim that is a multiple of 16 up to 128";  // attention_tc_usable, in words

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
// the same from rows already in bf16 (a bf16 KV cache), 8 elements (16 bytes) at a time: hd, ld and src_stride
// multiples of 8 and both pointers 16-byte aligned (a cache's rows of hd = 16·KF are, at any kv head and slot)
__device__ inline void stage_rows(uint16_t* dst, int ld, const uint16_t* __restrict__ src, int64_t src_stride, int n, int valid, int hd) {
  const int vecs = hd / 8;
  for (int i = threadIdx.x; i < n * vecs; i += blockDim.x) {
    const int r = i / vecs, d = 8 * (i - r * vecs);
    store_vec16(dst + r * ld + d, r < valid ? load_vec16(src + r * src_stride + d) : make_uint4(0, 0, 0, 0));
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

// acc[f] += p[16][32] (bf16, stride kLdP) · tile[32][16f..16f+15] for f < count (≤ KF; warp-uniform)
template <int KF>
__device__ inline void block_by_tile(FragC (&acc)[KF], const uint16_t* p, const uint16_t* tile, int ld, int count = KF) {
  using namespace nvcuda;
#pragma unroll
  for (int kk = 0; kk < 2; kk++) {
    FragA a;
    wmma::load_matrix_sync(a, bf(p + kk * 16), kLdP);
#pragma unroll
    for (int f = 0; f < KF; f++) {
      if (f >= count) break;
      FragBRow b;
      wmma::load_matrix_sync(b, bf(tile + kk * 16 * ld + f * 16), ld);
      wmma::mma_sync(acc[f], a, b, acc[f]);
    }
  }
}

// the block's kRows rows of a head (from src's first, `valid` of them; zeros after), staged through `stage`
// ([kRows][ld] bf16); rows row0..row0+15 become the a fragments of the warps with `mine` (a warp's own 16 rows,
// or its pair's; the others' a are untouched). Ends with a barrier, so `stage` may be reused at once
template <int KF>
__device__ inline void load_block_rows(FragA (&a)[KF], uint16_t* stage, int ld, const float* __restrict__ src, int64_t stride, int valid, int row0,
                                       bool mine = true) {
  using namespace nvcuda;
  stage_rows(stage, ld, src, stride, kRows, valid, KF * 16);
  __syncthreads();
  if (mine)
#pragma unroll
    for (int f = 0; f < KF; f++) wmma::load_matrix_sync(a[f], bf(stage + row0 * ld + f * 16), ld);
  __syncthreads();
}

// dst rows (16 of the warp, columns 0..16·count−1, row stride `stride`) (+)= acc[0..count), count ≤ KF, through
// the warp's [16][kLdF] scratch; rows at or past `valid` are not written
template <int KF>
__device__ inline void store_warp_rows(float* dst, int64_t stride, int valid, const FragC (&acc)[KF], float* scratch, bool add, int count = KF) {
  using namespace nvcuda;
  const int lane = threadIdx.x % 32;
#pragma unroll
  for (int f = 0; f < KF; f++) {
    if (f >= count) break;
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

// keys j0.. of kb (and of vb when not null; row stride ks, up to key `last`; E: fp32 rows or bf16 bits) as bf16
// tiles kv[0] and kv[kTile·ld], between two barriers: every warp is done with the previous tiles before, and
// sees these after
template <int KF, typename E>
__device__ inline void stage_key_tile(uint16_t* kv, const E* __restrict__ kb, const E* __restrict__ vb, int64_t ks, int j0, int last) {
  constexpr int hd = KF * 16, ld = hd + 8;
  const int n = imin(kTile, last + 1 - j0);
  __syncthreads();
  stage_rows(kv, ld, kb + int64_t(j0) * ks, ks, kTile, n, hd);
  if (vb) stage_rows(kv + kTile * ld, ld, vb + int64_t(j0) * ks, ks, kTile, n, hd);
  __syncthreads();
}

// The forward of the block's query rows over keys 0..last of kb/vb (row stride ks, kv-head columns already
// offset), in two passes: the first gives each row's lse = log Σ_j exp(s_j) (s = q·k·scale), the second
// acc = Σ_j exp(s_j − lse)·v_j with p rounded to bf16, so the accumulators never need rescaling. `lim` is the
// last key visible from this lane's row (−1: none, as for a row past the end), `warp_lim` the largest over
// the warp's rows; `kv` holds two tiles [kTile][ld], `s` the warp's [16][kLdF] scores, `p` its [16][kLdP].
// kb/vb are fp32 (rounded as they are staged) or already bf16 (E = uint16_t: a bf16 KV cache, the same values).
// Every thread of the block calls it (it has barriers); it returns this lane's row's lse (−∞ without keys).
template <int KF, typename E>
__device__ inline float forward_rows(FragC (&acc)[KF], const FragA (&qa)[KF], uint16_t* kv, float* s, uint16_t* p, const E* __restrict__ kb,
                                     const E* __restrict__ vb, int64_t ks, int last, int lim, int warp_lim, float scale) {
  using namespace nvcuda;
  constexpr int hd = KF * 16, ld = hd + 8;
  uint16_t* kt = kv;
  uint16_t* vt = kv + kTile * ld;
  const int lane = threadIdx.x % 32, r = lane / 2, c0 = (lane % 2) * 16;
  // pass 1: this lane's running max m and Σ exp(s − m) over its half row
  float m = -INFINITY, l = 0.f;
  for (int j0 = 0; j0 <= last; j0 += kTile) {
    stage_key_tile<KF, E>(kv, kb, nullptr, ks, j0, last);
    if (j0 > warp_lim) continue;  // warp-uniform: no key of this tile is visible from the warp's rows
    rows_by_tile<KF>(s, qa, kt, ld);
    __syncwarp();
    float mt = -INFINITY;
    for (int c = c0; c < c0 + 16; c++)
      if (j0 + c <= lim) mt = fmaxf(mt, s[r * kLdF + c] * scale);
    if (mt > -INFINITY) {
      const float mn = fmaxf(m, mt);
      float sum = 0.f;
      for (int c = c0; c < c0 + 16; c++)
        if (j0 + c <= lim) sum += expf(s[r * kLdF + c] * scale - mn);
      l = l * expf(m - mn) + sum;  // expf(−∞) = 0 on the first visible tile
      m = mn;
    }
    __syncwarp();  // the scores are read before the next tile's are stored
  }
  // the two halves of a row meet (lanes 2r and 2r+1)
  const float mo = __shfl_xor_sync(0xffffffffu, m, 1), lo = __shfl_xor_sync(0xffffffffu, l, 1);
  const float M = fmaxf(m, mo);
  const float L = (m > -INFINITY ? l * expf(m - M) : 0.f) + (mo > -INFINITY ? lo * expf(mo - M) : 0.f);
  const float lse = M + logf(L);
  // pass 2: acc = Σ_j exp(s_j − lse)·v_j, p in bf16
#pragma unroll
  for (int f = 0; f < KF; f++) wmma::fill_fragment(acc[f], 0.f);
  for (int j0 = 0; j0 <= last; j0 += kTile) {
    stage_key_tile<KF, E>(kv, kb, vb, ks, j0, last);
    if (j0 > warp_lim) continue;
    rows_by_tile<KF>(s, qa, kt, ld);
    __syncwarp();
    for (int c = c0; c < c0 + 16; c++) p[r * kLdP + c] = to_bf16_bits(j0 + c <= lim ? expf(s[r * kLdF + c] * scale - lse) : 0.f);
    __syncwarp();
    block_by_tile<KF>(acc, p, vt, ld);
  }
  return lse;
}
#endif

// the kernel for hd = 16·KF: Launch<KF>::run(args...) for KF = hd/16 (1..8)
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

}  // namespace tc
}  // namespace cuda
}  // namespace tailor
