// matmul.cu — the matrix products of the Linear layers on the GPU, semantics of the CPU backend's
// matmul_forward / matmul_backward:
//   matmul_forward       y[T,out] (+)= x[T,in] · W[out,in]ᵀ in fp32, shared-memory tiles (gemm_tiled_kernel)
//   matmul_forward_bf16  the same from bf16 x and W with fp32 accumulation: tensor cores through WMMA on
//                        sm_80+ (matmul_bf16_tc_kernel), the tiled kernel on sm_75 (and when forced)
//   matmul_backward      dx[T,in] += dy[T,out] · W[out,in];  dW[out,in] += dyᵀ · x[T,in]
//   matmul_forward_bf16w / matmul_backward_dx_bf16w   the same with W stored in bf16 (the backend's bf16
//                        weights): fp32 x rounded to bf16 for the tensor cores on sm_80+, else the tiled kernel
//                        reading fp32 x and bf16 W; the backward's dx on the tensor cores too (bf16 dy)
// One strided tile kernel serves every fp32 layout: C[M,N] (+)= A[M,K] · B[K,N] with A(m,k) and B(k,n)
// addressed through strides, so W and dy are read in place, never transposed in memory. Both it and the
// tensor-core kernel have two block tiles (product_tile_for) and fetch the next K step's operands while the
// current one is multiplied (into registers; the tensor-core kernel's 16-byte chunks by cp.async straight
// into shared memory); both read 16 bytes at a time where the shapes allow.
// When the build has cuBLASLt and lt_enabled() (blaslt.cu), matmul_forward, matmul_backward and the
// automatic bf16 paths (the backend's) try it first and fall back to these kernels when it refuses a call.
#include <cuda_pipeline_primitives.h>
#include <mma.h>

#include <atomic>
#include <type_traits>

#include <cuda_bf16.h>

#include "common.cuh"
#include "kernels.h"

namespace tailor {
namespace cuda {

namespace {

// ---- fp32 (and bf16-input) tiled GEMM ----------------------------------------------------------------
// 16×16 threads; with R = 8 a block computes 128×128 of C and each thread an 8×8 set of outputs (strided by
// 16), with R = 4 64×64 and 4×4 (the tile is picked as the tensor-core kernel's is: product_tile_for). K runs
// in steps of 16 through two shared-memory buffers: each thread's share of the next step is loaded into
// registers while the current step is multiplied, and stored to the other buffer after it (one barrier a step).
constexpr int TK = 16;          // K step
constexpr int TTHREADS = 256;   // 16×16 threads

__device__ inline float load_elem(const float* p, int64_t i) { return p[i]; }
__device__ inline float load_elem(const uint16_t* p, int64_t i) { return bf16_bits_to_float(p[i]); }
// p[0..3] (16-byte aligned) into out[0..3] with one 16-byte load, or zeros when !in
__device__ inline void load_float4(const float* p, bool in, float* out) {
  const uint4 v = in ? load_vec16(p) : make_uint4(0, 0, 0, 0);
  out[0] = __uint_as_float(v.x), out[1] = __uint_as_float(v.y), out[2] = __uint_as_float(v.z), out[3] = __uint_as_float(v.w);
}

// C[M, N] row-major = (beta ? C : 0) + A·B,  A(m,k) = A[m*sam + k*sak] [M, K],  B(k,n) = B[k*sbk + n*sbn] [K, N]
// (A and B each fp32 or bf16 bits); A_K1: sak == 1 (else sam == 1), B_K1: sbk == 1 (else sbn == 1), so that
// the tile's index arithmetic is fixed at compile time; grid (ceil(N/16R), ceil(M/16R)), block TTHREADS.
// VEC (fp32 A and B only): each operand read 4 elements at a time along its unit-stride dimension (16-byte
// loads): that dimension's extent and the other stride multiples of 4 and the pointers 16-byte aligned
// (gemm_tiled checks), so that a vector whose first element is in bounds is whole.
template <int R, typename TA, typename TB, bool A_K1, bool B_K1, bool VEC>
__global__ void __launch_bounds__(TTHREADS, 2)
    gemm_tiled_kernel(float* __restrict__ C, const TA* __restrict__ A, const TB* __restrict__ B, int64_t M, int64_t N, int64_t K,
                      int64_t sam, int64_t sak, int64_t sbk, int64_t sbn, bool beta) {
  static_assert(!VEC || (std::is_same<TA, float>::value && std::is_same<TB, float>::value), "vector loads read fp32 operands");
  constexpr int BT = 16 * R;             // the block's rows and columns of C
  constexpr int W = VEC ? 4 : 1;         // elements per load
  __shared__ float As[2][TK][BT + 1];    // As[b][k][m] = A(m0+m, k0+k)
  __shared__ float Bs[2][TK][BT + 1];    // Bs[b][k][n] = B(k0+k, n0+n)
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  const int64_t m0 = int64_t(blockIdx.y) * BT, n0 = int64_t(blockIdx.x) * BT;
  // load j of this thread's share of a step (W elements along the unit-stride dimension): the tile's
  // W-element group tid + 256·j, walked so that consecutive threads read along that dimension (the reads
  // coalesce); its first element at (m, k) of A's tile, (k, n) of B's
  auto a_at = [&](int j, int& m, int& k) {
    const int i = tid + j * TTHREADS;
    if (A_K1) m = i / (TK / W), k = i % (TK / W) * W;
    else k = i / (BT / W), m = i % (BT / W) * W;
  };
  auto b_at = [&](int j, int& n, int& k) {
    const int i = tid + j * TTHREADS;
    if (B_K1) n = i / (TK / W), k = i % (TK / W) * W;
    else k = i / (BT / W), n = i % (BT / W) * W;
  };
  // Load j sits JS rows of the tile past load j − 1 along the operand's strided dimension (m for A_K1, else k;
  // n for B_K1, else k) at the same place along the other. So each operand's loads in a step are one running
  // pointer (load 0's, advanced a step at a time) plus j times a fixed stride: far fewer live registers (and
  // spills) than each load's 64-bit index recomputed every step.
  constexpr int A_JS = TTHREADS / (A_K1 ? TK / W : BT / W), B_JS = TTHREADS / (B_K1 ? TK / W : BT / W);
  static_assert(TTHREADS % (TK / W) == 0 && TTHREADS % (BT / W) == 0, "load j + 1 lies a whole number of rows past load j");
  int am, ak, bn, bk;  // load 0's place in A's tile (m, k) and in B's (n, k)
  a_at(0, am, ak);
  b_at(0, bn, bk);
  const TA* a_next = A + (A_K1 ? (m0 + am) * sam + ak : (m0 + am) + int64_t(ak) * sak);  // load 0 of the next step
  const TB* b_next = B + (B_K1 ? int64_t(bk) + (n0 + bn) * sbn : int64_t(bk) * sbk + (n0 + bn));
  const int64_t a_js = A_K1 ? A_JS * sam : A_JS * sak, b_js = B_K1 ? B_JS * sbn : B_JS * sbk;  // from load j to j + 1
  const int64_t a_step = A_K1 ? TK : TK * sak, b_step = B_K1 ? TK : TK * sbk;                 // from a step to the next
  float pa[R], pb[R];  // the next step's share, global memory → registers (R / W loads of W elements)
  auto load = [&](int64_t k0) {
    const TA* qa = a_next;  // load j's first element: walked a load at a time (fewer live 64-bit addresses than
    const TB* qb = b_next;  // a_next + j·a_js for every j)
#pragma unroll
    for (int j = 0; j < R / W; j++, qa += a_js, qb += b_js) {
      const bool ina = A_K1 ? m0 + am + j * A_JS < M && k0 + ak < K : m0 + am < M && k0 + ak + j * A_JS < K;
      const bool inb = B_K1 ? n0 + bn + j * B_JS < N && k0 + bk < K : n0 + bn < N && k0 + bk + j * B_JS < K;
      if constexpr (VEC) {
        load_float4(reinterpret_cast<const float*>(ina ? qa : A), ina, pa + W * j);
        load_float4(reinterpret_cast<const float*>(inb ? qb : B), inb, pb + W * j);
      } else {
        pa[j] = ina ? load_elem(qa, 0) : 0.f;
        pb[j] = inb ? load_elem(qb, 0) : 0.f;
      }
    }
    a_next += a_step;
    b_next += b_step;
  };
  auto store = [&](int b) {  // registers → buffer b
#pragma unroll
    for (int j = 0; j < R / W; j++) {
      int m, n, k, kb;
      a_at(j, m, k);
      b_at(j, n, kb);
#pragma unroll
      for (int e = 0; e < W; e++) {
        As[b][A_K1 ? k + e : k][A_K1 ? m : m + e] = pa[W * j + e];
        Bs[b][B_K1 ? kb + e : kb][B_K1 ? n : n + e] = pb[W * j + e];
      }
    }
  };
  float acc[R][R] = {};
  const int64_t steps = (K + TK - 1) / TK;
  if (steps > 0) {
    load(0);
    store(0);
  }
  __syncthreads();
  for (int64_t s = 0; s < steps; s++) {
    const int b = int(s & 1);
    if (s + 1 < steps) load((s + 1) * TK);  // in flight while this step is multiplied
#pragma unroll
    for (int k = 0; k < TK; k++) {
      float a[R], bv[R];
#pragma unroll
      for (int i = 0; i < R; i++) a[i] = As[b][k][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < R; j++) bv[j] = Bs[b][k][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < R; i++)
#pragma unroll
        for (int j = 0; j < R; j++) acc[i][j] += a[i] * bv[j];
    }
    if (s + 1 < steps) store(b ^ 1);  // buffer b^1 was last read in step s − 1, before the barrier that ended it
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < R; i++) {
    const int64_t m = m0 + ty + 16 * i;
    if (m >= M) continue;
#pragma unroll
    for (int j = 0; j < R; j++) {
      const int64_t n = n0 + tx + 16 * j;
      if (n >= N) continue;
      float* c = C + m * N + n;
      *c = beta ? *c + acc[i][j] : acc[i][j];
    }
  }
}

std::atomic<int> g_tile{0};  // product_tile_override: 0 automatic, else the tile to use

// the caller names A's and B's layouts (A_K1: sak == 1, else sam == 1; B_K1: sbk == 1, else sbn == 1), so
// that only the layouts the products use are compiled: x·Wᵀ (k, k), dy·W (k, n), dyᵀ·x (m, n)
template <typename TA, typename TB, bool A_K1, bool B_K1>
void gemm_tiled(float* C, const TA* A, const TB* B, int64_t M, int64_t N, int64_t K, int64_t sam, int64_t sak, int64_t sbk, int64_t sbn,
                bool beta, const char* what) {
  if (M == 0 || N == 0) return;
  if ((A_K1 ? sak : sam) != 1 || (B_K1 ? sbk : sbn) != 1) fail(ErrorCode::INTERNAL, std::string(what) + ": the operands' layout is not the one named");
  const int forced = g_tile.load();
  const int tile = forced ? forced : product_tile_for(M, N);
  if (ceil_div(M, tile) > 65535) fail(ErrorCode::UNSUPPORTED, std::string(what) + ": more than " + std::to_string(65535 * tile) + " rows in one call");
  dim3 grid(ceil_div(N, tile), ceil_div(M, tile));
  // 16-byte loads where both operands are fp32, aligned, and each one's unit-stride extent and other stride
  // are multiples of 4 (every LLaMA shape); else element by element
  bool vec = false;
  if constexpr (std::is_same<TA, float>::value && std::is_same<TB, float>::value) {
    const bool a4 = A_K1 ? K % 4 == 0 && sam % 4 == 0 : M % 4 == 0 && sak % 4 == 0;
    const bool b4 = B_K1 ? K % 4 == 0 && sbn % 4 == 0 : N % 4 == 0 && sbk % 4 == 0;
    vec = a4 && b4 && reinterpret_cast<uintptr_t>(A) % 16 == 0 && reinterpret_cast<uintptr_t>(B) % 16 == 0;
    if (vec) {
      if (tile == 128) TAILOR_LAUNCH((gemm_tiled_kernel<8, TA, TB, A_K1, B_K1, true>), grid, TTHREADS)(C, A, B, M, N, K, sam, sak, sbk, sbn, beta);
      else TAILOR_LAUNCH((gemm_tiled_kernel<4, TA, TB, A_K1, B_K1, true>), grid, TTHREADS)(C, A, B, M, N, K, sam, sak, sbk, sbn, beta);
    }
  }
  if (!vec) {
    if (tile == 128) TAILOR_LAUNCH((gemm_tiled_kernel<8, TA, TB, A_K1, B_K1, false>), grid, TTHREADS)(C, A, B, M, N, K, sam, sak, sbk, sbn, beta);
    else TAILOR_LAUNCH((gemm_tiled_kernel<4, TA, TB, A_K1, B_K1, false>), grid, TTHREADS)(C, A, B, M, N, K, sam, sak, sbk, sbn, beta);
  }
  check_launch(what);
}

// ---- bf16 tensor cores (WMMA) --------------------------------------------------------------------------
// y[M, N] (+)= A[M, K] · B, A = x (bf16, rows contiguous in K), B = Wᵀ with W[N, K] (the forward), or B = W
// with W[K, N] (W_ROWS_ARE_K: the backward's dx = dy · W). Two block tiles (TcTile): 128×128 with 8 warps
// in 2×4, each warp 64×32 of y (4×2 WMMA tiles of 16×16×16), for products that fill the GPU with them; 64×64
// with 4 warps in 2×2 (32×32 each) for the others. K runs in steps of 32 through two shared-memory buffers:
// while the warps multiply one step's tiles, each thread's share of the next step is already on its way to
// the other buffer (one barrier a step). COPY, the bytes one asynchronous copy (cp.async) moves from global to
// shared memory, so that no registers hold the operands: 16 (8 bf16) where K (and N for W_ROWS_ARE_K) is a
// multiple of 8 and the pointers 16-byte aligned, as every unpruned LLaMA shape is; 4 (2 bf16) where they are
// even and 4-byte aligned, as LLM-Pruner's channel counts often are (7,444 at 5B); else 0: element by element
// through registers, stored to the other buffer after the multiply.
// Edges are zero-filled, so any M, N, K work. Each warp writes its fp32 results through a 16×16 staging tile
// in the (by then free) shared memory, with bounds checks and the accumulate flag.
constexpr int TK16 = 32;  // K step
constexpr int TPAD = 8;   // bf16 elements of padding per staged row (rows stay 16-byte aligned)

template <int BM, int BN>
struct TcTile {
  static constexpr int WARPS_M = 2, WARPS_N = BN == 128 ? 4 : 2;
  static constexpr int THREADS = 32 * WARPS_M * WARPS_N;  // 256 or 128
  static constexpr int FM = BM / WARPS_M / 16, FN = BN / WARPS_N / 16;  // WMMA tiles per warp: 4×2 or 2×2
  static constexpr int A_LD = TK16 + TPAD;                             // As[m][k]
  static constexpr int A_ELEMS = BM * A_LD;
  static constexpr int B_ELEMS = BN * (TK16 + TPAD) > TK16 * (BN + TPAD) ? BN * (TK16 + TPAD) : TK16 * (BN + TPAD);
  static constexpr int SMEM = 2 * 2 * (A_ELEMS + B_ELEMS);  // bytes: two buffers of A's and B's tiles
  static constexpr int STAGE_LD = 16 + 4;                   // floats per row of a warp's 16×16 staging tile
  static_assert(SMEM >= (THREADS / 32) * 16 * STAGE_LD * 4, "the staging tiles fit in the operand buffers");
  static_assert(BM * TK16 / 8 == 2 * THREADS && BN * TK16 / 8 == 2 * THREADS, "two 8-element chunks of A and of B per thread");
  static_assert(FM * 16 * WARPS_M == BM && FN * 16 * WARPS_N == BN, "the warps' WMMA tiles cover the block tile");
};

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
// the BYTES (16 or 4) at src (aligned to them) to dst in shared memory by an asynchronous copy (cp.async) in
// this thread's current group, or as many zero bytes when !in (src is then only an aligned address: nothing is read)
template <int BYTES = 16>
__device__ inline void copy_chunk_async(uint16_t* dst, const uint16_t* src, bool in, const uint16_t* fallback) {
  __pipeline_memcpy_async(dst, in ? src : fallback, BYTES, in ? 0 : BYTES);
}

// 8 consecutive elements p[0..7] of a row whose first `avail` exist (avail ≤ 0: none), zeros past them, as
// one 16-byte value (element j in bits 16·j of the little-endian words), element by element
__device__ inline uint4 load_chunk(const uint16_t* p, int64_t avail) {
  unsigned v[8];
#pragma unroll
  for (int j = 0; j < 8; j++) v[j] = j < avail ? p[j] : 0u;
  return make_uint4(v[0] | v[1] << 16, v[2] | v[3] << 16, v[4] | v[5] << 16, v[6] | v[7] << 16);
}
#endif

template <int BM, int BN, bool W_ROWS_ARE_K, int COPY>
__global__ void __launch_bounds__(TcTile<BM, BN>::THREADS, 2)
    matmul_bf16_tc_kernel(float* __restrict__ y, const uint16_t* __restrict__ x, const uint16_t* __restrict__ w, int64_t M, int64_t K,
                          int64_t N, bool accumulate) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  using namespace nvcuda;
  using Tile = TcTile<BM, BN>;
  constexpr int THREADS = Tile::THREADS, FM = Tile::FM, FN = Tile::FN, A_LD = Tile::A_LD;
  constexpr int B_LD = W_ROWS_ARE_K ? BN + TPAD : TK16 + TPAD;  // Bs[k][n] (W's rows are k) or Bs[n][k]
  __shared__ __align__(128) unsigned char smem[Tile::SMEM];
  uint16_t* const As = reinterpret_cast<uint16_t*>(smem);  // [2][BM][A_LD]: As[b][m][k] = x[m0+m, k0+k]
  uint16_t* const Bs = As + 2 * Tile::A_ELEMS;             // [2][B_ELEMS]
  const int tid = threadIdx.x, warp = tid / 32, wm = warp / Tile::WARPS_N, wn = warp % Tile::WARPS_N;
  const int64_t m0 = int64_t(blockIdx.y) * BM, n0 = int64_t(blockIdx.x) * BN;

  // This thread's two 8-element chunks of A and of B in each K step. A's (and B's when W's rows are n) lie in
  // rows r and r + CHUNK_ROWS of the tile at column c of the step; B's when W's rows are k in rows rk and
  // rk + 16 of the step at column cn. xa and wb point at those of the first step (k0 = 0).
  constexpr int CHUNK_ROWS = THREADS / (TK16 / 8);  // 64 or 32
  const int r = tid / (TK16 / 8), c = (tid % (TK16 / 8)) * 8;
  const int rk = tid / (BN / 8), cn = (tid % (BN / 8)) * 8;
  static_assert(THREADS / (BN / 8) == 16, "two chunks of B's 32 rows per thread when W's rows are k");
  const uint16_t* const xa = x + (m0 + r) * K + c;
  const bool a0 = m0 + r < M, a1 = m0 + r + CHUNK_ROWS < M;
  const uint16_t* const wb = W_ROWS_ARE_K ? w + int64_t(rk) * N + n0 + cn : w + (n0 + r) * K + c;
  const bool b0 = W_ROWS_ARE_K || n0 + r < N, b1 = W_ROWS_ARE_K || n0 + r + CHUNK_ROWS < N;
  // where B's two chunks go in its buffer: rows b_row0 and b_row0 + b_step, column b_col
  const int b_row0 = W_ROWS_ARE_K ? rk : r, b_step = W_ROWS_ARE_K ? 16 : CHUNK_ROWS, b_col = W_ROWS_ARE_K ? cn : c;
  const bool b_cols = n0 + cn < N;  // (W's rows are k, COPY 16) B's chunk columns exist
  // Each K step's tiles go to buffer b in two halves: fetch(k0, b) starts them, land(b) finishes them. COPY 16
  // or 4: fetch issues asynchronous copies (cp.async, zero-filled past the edges) straight to shared memory and
  // land waits for them, so no registers hold the next step. Else fetch loads into registers and land stores them.
  static_assert(COPY == 0 || COPY == 4 || COPY == 16, "copies of 16 or 4 bytes, or through registers");
  uint4 ra[COPY ? 1 : 2], rb[COPY ? 1 : 2];
  // the chunks' sources in the step fetch is called for next (steps in order): running pointers, which spill
  // less than xa + k0 and wb + k0·N recomputed each step
  const uint16_t* pa = xa;
  const uint16_t* pb = wb;
  const int64_t b_advance = W_ROWS_ARE_K ? TK16 * N : TK16;
  auto fetch = [&](int64_t k0, int b) {
    const int64_t b_next = W_ROWS_ARE_K ? 16 * N : CHUNK_ROWS * K;  // from B's first chunk to its second
    if constexpr (COPY == 16) {
      // a chunk is whole or past the edge (K, and N when W's rows are k, are multiples of 8): past it, nothing is
      // read (all 16 bytes zero-filled) and its source stays an aligned address
      const bool kin = k0 + c < K;
      const bool bin0 = W_ROWS_ARE_K ? b_cols && k0 + rk < K : b0 && kin, bin1 = W_ROWS_ARE_K ? b_cols && k0 + rk + 16 < K : b1 && kin;
      uint16_t* const A = As + b * Tile::A_ELEMS;
      uint16_t* const B = Bs + b * Tile::B_ELEMS;
      copy_chunk_async(A + r * A_LD + c, pa, a0 && kin, x);
      copy_chunk_async(A + (r + CHUNK_ROWS) * A_LD + c, pa + CHUNK_ROWS * K, a1 && kin, x);
      copy_chunk_async(B + b_row0 * B_LD + b_col, pb, bin0, w);
      copy_chunk_async(B + (b_row0 + b_step) * B_LD + b_col, pb + b_next, bin1, w);
      __pipeline_commit();
    } else if constexpr (COPY == 4) {
      // each chunk as four pieces of two elements, each whole or past the edge (K, and N when W's rows are k, are
      // even; the rows start 4-byte aligned): past it nothing is read and its source stays an aligned address.
      // (One loop over pieces for both widths reads shorter, but costs the 16-byte 128-tile dx kernel a 4-byte
      // spill on sm_90 by ptxas: the two stay apart.)
      uint16_t* const A = As + b * Tile::A_ELEMS;
      uint16_t* const B = Bs + b * Tile::B_ELEMS;
      const bool brow0 = W_ROWS_ARE_K ? k0 + rk < K : b0, brow1 = W_ROWS_ARE_K ? k0 + rk + 16 < K : b1;
#pragma unroll
      for (int j = 0; j < 8; j += 2) {
        const bool kin = k0 + c + j < K;
        const bool bin = W_ROWS_ARE_K ? n0 + cn + j < N : kin;
        copy_chunk_async<4>(A + r * A_LD + c + j, pa + j, a0 && kin, x);
        copy_chunk_async<4>(A + (r + CHUNK_ROWS) * A_LD + c + j, pa + CHUNK_ROWS * K + j, a1 && kin, x);
        copy_chunk_async<4>(B + b_row0 * B_LD + b_col + j, pb + j, brow0 && bin, w);
        copy_chunk_async<4>(B + (b_row0 + b_step) * B_LD + b_col + j, pb + b_next + j, brow1 && bin, w);
      }
      __pipeline_commit();
    } else {
      const int64_t ka = K - k0 - c, kb = W_ROWS_ARE_K ? N - n0 - cn : ka;
      ra[0] = load_chunk(pa, a0 ? ka : 0);
      ra[1] = load_chunk(pa + CHUNK_ROWS * K, a1 ? ka : 0);
      rb[0] = load_chunk(pb, (W_ROWS_ARE_K ? k0 + rk < K : b0) ? kb : 0);
      rb[1] = load_chunk(pb + b_next, (W_ROWS_ARE_K ? k0 + rk + 16 < K : b1) ? kb : 0);
    }
    pa += TK16;
    pb += b_advance;
  };
  auto land = [&](int b) {
    if constexpr (COPY != 0) {
      __pipeline_wait_prior(0);
    } else {
      uint16_t* const A = As + b * Tile::A_ELEMS;
      uint16_t* const B = Bs + b * Tile::B_ELEMS;
      store_vec16(A + r * A_LD + c, ra[0]);
      store_vec16(A + (r + CHUNK_ROWS) * A_LD + c, ra[1]);
      store_vec16(B + b_row0 * B_LD + b_col, rb[0]);
      store_vec16(B + (b_row0 + b_step) * B_LD + b_col, rb[1]);
    }
  };

  using BLayout = typename std::conditional<W_ROWS_ARE_K, wmma::row_major, wmma::col_major>::type;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[FM][FN];
#pragma unroll
  for (int i = 0; i < FM; i++)
#pragma unroll
    for (int j = 0; j < FN; j++) wmma::fill_fragment(acc[i][j], 0.f);

  const int64_t steps = (K + TK16 - 1) / TK16;
  fetch(0, 0);
  land(0);
  for (int64_t s = 0; s < steps; s++) {
    const int b = int(s & 1);
    // every thread's share of step s is in buffer b, and every warp is done with buffer b^1 (step s − 1)
    __syncthreads();
    if (s + 1 < steps) fetch((s + 1) * TK16, b ^ 1);  // in flight while the tensor cores work on buffer b
    const uint16_t* const A = As + b * Tile::A_ELEMS;
    const uint16_t* const B = Bs + b * Tile::B_ELEMS;
#pragma unroll
    for (int kk = 0; kk < TK16; kk += 16) {
      wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, BLayout> fb[FN];
#pragma unroll
      for (int j = 0; j < FN; j++) {
        const int n = wn * FN * 16 + j * 16;
        // b(k, n): Bs[k][n] row-major, or Bs[n][k] = column-major
        wmma::load_matrix_sync(fb[j], reinterpret_cast<const __nv_bfloat16*>(B + (W_ROWS_ARE_K ? kk * B_LD + n : n * B_LD + kk)), B_LD);
      }
#pragma unroll
      for (int i = 0; i < FM; i++) {  // one a fragment at a time: fewer registers
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa;
        wmma::load_matrix_sync(fa, reinterpret_cast<const __nv_bfloat16*>(A + (wm * FM * 16 + i * 16) * A_LD + kk), A_LD);
#pragma unroll
        for (int j = 0; j < FN; j++) wmma::mma_sync(acc[i][j], fa, fb[j], acc[i][j]);
      }
    }
    if (s + 1 < steps) land(b ^ 1);
  }
  __syncthreads();  // every warp is done with the operand buffers

  // the results: each warp through its own 16×16 staging tile (the operand buffers are free after the last barrier)
  float* const stage = reinterpret_cast<float*>(smem) + warp * 16 * Tile::STAGE_LD;
  const int lane = tid % 32;
#pragma unroll
  for (int i = 0; i < FM; i++)
#pragma unroll
    for (int j = 0; j < FN; j++) {
      wmma::store_matrix_sync(stage, acc[i][j], Tile::STAGE_LD, wmma::mem_row_major);
      __syncwarp();
      const int64_t r0 = m0 + wm * FM * 16 + i * 16, c0 = n0 + wn * FN * 16 + j * 16;
#pragma unroll 1
      for (int e = lane; e < 256; e += 32) {
        const int r = e / 16, c = e % 16;
        if (r0 + r < M && c0 + c < N) {
          float* d = y + (r0 + r) * N + (c0 + c);
          *d = accumulate ? *d + stage[r * Tile::STAGE_LD + c] : stage[r * Tile::STAGE_LD + c];
        }
      }
      __syncwarp();  // the stage is written again by the next tile's store
    }
#else
  __trap();  // never launched below sm_80: the host picks the tiled kernel there
#endif
}

// the tensor-core kernel of one block tile for operands moved `copy` bytes at a time (tc_copy_bytes)
template <int BM, int BN, bool W_ROWS_ARE_K>
void launch_tc(int copy, dim3 grid, float* y, const uint16_t* x, const uint16_t* w, int64_t M, int64_t K, int64_t N, bool accumulate) {
  constexpr int T = TcTile<BM, BN>::THREADS;
  if (copy == 16) TAILOR_LAUNCH((matmul_bf16_tc_kernel<BM, BN, W_ROWS_ARE_K, 16>), grid, T)(y, x, w, M, K, N, accumulate);
  else if (copy == 4) TAILOR_LAUNCH((matmul_bf16_tc_kernel<BM, BN, W_ROWS_ARE_K, 4>), grid, T)(y, x, w, M, K, N, accumulate);
  else TAILOR_LAUNCH((matmul_bf16_tc_kernel<BM, BN, W_ROWS_ARE_K, 0>), grid, T)(y, x, w, M, K, N, accumulate);
}

// y[M, N] (+)= x[M, K] · (W_ROWS_ARE_K ? W[K, N] : W[N, K]ᵀ) on the tensor cores: picks the tile and how the
// operands reach shared memory (16- or 4-byte asynchronous copies, or element by element)
template <bool W_ROWS_ARE_K>
void tc_product(float* y, const uint16_t* x, const uint16_t* w, int64_t M, int64_t K, int64_t N, bool accumulate, const char* what) {
  const int forced = g_tile.load();
  const int tile = forced ? forced : product_tile_for(M, N);
  if (ceil_div(M, tile) > 65535) fail(ErrorCode::UNSUPPORTED, std::string(what) + ": more than " + std::to_string(65535 * tile) + " rows in one call");
  const int copy = tc_copy_bytes(x, w, K, N, W_ROWS_ARE_K);
  const dim3 grid(ceil_div(N, tile), ceil_div(M, tile));
  if (tile == 128) launch_tc<128, 128, W_ROWS_ARE_K>(copy, grid, y, x, w, M, K, N, accumulate);
  else launch_tc<64, 64, W_ROWS_ARE_K>(copy, grid, y, x, w, M, K, N, accumulate);
  check_launch(what);
}

}  // namespace

int tc_copy_bytes(const void* x, const void* w, int64_t K, int64_t N, bool w_rows_are_k) {
  auto aligned = [x, w](uintptr_t a) { return reinterpret_cast<uintptr_t>(x) % a == 0 && reinterpret_cast<uintptr_t>(w) % a == 0; };
  if (K % 8 == 0 && (!w_rows_are_k || N % 8 == 0) && aligned(16)) return 16;
  if (K % 2 == 0 && (!w_rows_are_k || N % 2 == 0) && aligned(4)) return 4;
  return 0;
}

int product_tile_for(int64_t M, int64_t N) {
  // the large tile where it makes at least one block per multiprocessor; the small one spreads smaller products
  return int64_t(ceil_div(M, 128)) * int64_t(ceil_div(N, 128)) >= multiprocessor_count() ? 128 : 64;
}

void product_tile_override(int tile) { g_tile = tile == 64 || tile == 128 ? tile : 0; }

void matmul_forward(float* y, const float* x, const float* w, int64_t T, int64_t in, int64_t out, bool accumulate) {
  if (T == 0 || out == 0) return;
  if (lt_enabled() && lt_matmul_f32(y, x, w, T, in, out, accumulate)) return;
  // A = x (m = t, k = i), B(k, n) = W[n, k]
  gemm_tiled<float, float, true, true>(y, x, w, T, out, in, in, 1, 1, in, accumulate, "matmul_forward");
}

void matmul_forward_bf16(float* y, const uint16_t* x, const uint16_t* w, int64_t T, int64_t in, int64_t out, bool accumulate,
                         Bf16Path path) {
  if (T == 0 || out == 0) return;
  const int cc = compute_capability();
  // cuBLASLt only on the automatic path (a forced path runs the kernel it names), and only where bf16 has tensor cores
  if (path == Bf16Path::Auto && cc >= 80 && lt_enabled() && lt_matmul_bf16w(y, x, w, T, in, out, accumulate)) return;
  if (path == Bf16Path::Auto) path = cc >= 80 ? Bf16Path::TensorCores : Bf16Path::Fallback;
  if (path == Bf16Path::TensorCores) {
    if (cc < 80) fail(ErrorCode::UNSUPPORTED, "bf16 tensor cores need sm_80 or newer (this device is sm_" + std::to_string(cc) + ")");
    tc_product<false>(y, x, w, T, in, out, accumulate, "matmul_forward_bf16 (tensor cores)");
  } else {
    gemm_tiled<uint16_t, uint16_t, true, true>(y, x, w, T, out, in, in, 1, 1, in, accumulate, "matmul_forward_bf16 (tiled)");
  }
}

void matmul_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, int64_t T, int64_t in, int64_t out) {
  if (T == 0 || in == 0 || out == 0) return;
  // dx[T, in] += dy[T, out] · W[out, in]:  A = dy (m = t, k = o), B(k = o, n = i) = W[o, i]
  const bool lt = lt_enabled();
  if (dx && !(lt && lt_matmul_backward_dx_f32(dx, dy, w, T, in, out)))
    gemm_tiled<float, float, true, false>(dx, dy, w, T, in, out, out, 1, in, 1, true, "matmul_backward (dx)");
  // dW[out, in] += dyᵀ · x:  A(m = o, k = t) = dy[t, o], B(k = t, n = i) = x[t, i]
  if (dw && !(lt && lt_matmul_backward_dw_f32(dw, dy, x, T, in, out)))
    gemm_tiled<float, float, false, false>(dw, dy, x, out, in, T, 1, out, in, 1, true, "matmul_backward (dW)");
}

void matmul_forward_bf16w(float* y, const float* x, const uint16_t* w, int64_t T, int64_t in, int64_t out, bool accumulate,
                          uint16_t* x_bf16, Bf16Path path) {
  if (T == 0 || out == 0) return;
  const bool automatic = path == Bf16Path::Auto;
  if (path == Bf16Path::Auto) path = compute_capability() >= 80 ? Bf16Path::TensorCores : Bf16Path::Fallback;
  if (path == Bf16Path::TensorCores) {
    if (!x_bf16) fail(ErrorCode::INTERNAL, "matmul_forward_bf16w: the tensor-core path needs a T×in bf16 scratch buffer");
    f32_to_bf16(x_bf16, x, T * in);
    // the automatic path goes through matmul_forward_bf16's (cuBLASLt first, then WMMA)
    return matmul_forward_bf16(y, x_bf16, w, T, in, out, accumulate, automatic ? Bf16Path::Auto : Bf16Path::TensorCores);
  }
  gemm_tiled<float, uint16_t, true, true>(y, x, w, T, out, in, in, 1, 1, in, accumulate, "matmul_forward_bf16w (tiled)");
}

void matmul_backward_dx_bf16w(float* dx, const float* dy, const uint16_t* w, int64_t T, int64_t in, int64_t out, uint16_t* dy_bf16,
                              Bf16Path path) {
  if (T == 0 || in == 0 || out == 0) return;
  const bool automatic = path == Bf16Path::Auto;
  if (path == Bf16Path::Auto) path = compute_capability() >= 80 ? Bf16Path::TensorCores : Bf16Path::Fallback;
  if (path == Bf16Path::TensorCores) {
    if (!dy_bf16) fail(ErrorCode::INTERNAL, "matmul_backward_dx_bf16w: the tensor-core path needs a T×out bf16 scratch buffer");
    f32_to_bf16(dy_bf16, dy, T * out);
    // the automatic path: cuBLASLt first, when it is on
    if (automatic && lt_enabled() && lt_matmul_backward_dx_bf16(dx, dy_bf16, w, T, in, out)) return;
    // dx[T, in] += dy[T, out] · W[out, in]: K is out and N is in here, W's rows run along k
    tc_product<true>(dx, dy_bf16, w, T, out, in, true, "matmul_backward_dx_bf16w (tensor cores)");
    return;
  }
  gemm_tiled<float, uint16_t, true, false>(dx, dy, w, T, in, out, out, 1, in, 1, true, "matmul_backward_dx_bf16w (tiled)");
}

}  // namespace cuda
}  // namespace tailor
