// matmul.cu — the matrix products of the Linear layers on the GPU, semantics of the CPU backend's
// matmul_forward / matmul_backward:
//   matmul_forward       y[T,out] (+)= x[T,in] · W[out,in]ᵀ in fp32, shared-memory tiles (gemm_tiled_kernel)
//   matmul_forward_bf16  the same from bf16 x and W with fp32 accumulation: tensor cores through WMMA on
//                        sm_80+ (matmul_bf16_wmma_kernel), the tiled kernel on sm_75 (and when forced)
//   matmul_backward      dx[T,in] += dy[T,out] · W[out,in];  dW[out,in] += dyᵀ · x[T,in]
//   matmul_forward_bf16w / matmul_backward_dx_bf16w   the same with W stored in bf16 (the backend's bf16
//                        weights): fp32 x rounded to bf16 for the tensor cores on sm_80+, else the tiled kernel
//                        reading fp32 x and bf16 W; the backward's dx through the tiled kernel
// One strided tile kernel serves every fp32 layout: C[M,N] (+)= A[M,K] · B[K,N] with A(m,k) and B(k,n)
// addressed through strides, so W and dy are read in place, never transposed in memory.
// Straightforward kernels (no double buffering, no vector loads): correct first, fast later. When the build
// has cuBLASLt and lt_enabled() (blaslt.cu), matmul_forward, matmul_backward and the automatic bf16 paths try
// it first and fall back to these kernels when it refuses a call.
#include <mma.h>

#include <cuda_bf16.h>

#include "common.cuh"
#include "kernels.h"

namespace tailor {
namespace cuda {

namespace {

// ---- fp32 (and bf16-input) tiled GEMM ----------------------------------------------------------------
constexpr int TM = 64, TN = 64, TK = 16;  // block tile: 64 rows of C × 64 columns, K in steps of 16
constexpr int TTHREADS = 256;             // 16×16 threads, each owns a 4×4 set of outputs (strided by 16)

__device__ inline float load_elem(const float* p, int64_t i) { return p[i]; }
__device__ inline float load_elem(const uint16_t* p, int64_t i) { return bf16_bits_to_float(p[i]); }

// C[M, N] row-major = (beta ? C : 0) + A·B,  A(m,k) = A[m*sam + k*sak] [M, K],  B(k,n) = B[k*sbk + n*sbn] [K, N]
// (A and B each fp32 or bf16 bits); grid (ceil(N/TN), ceil(M/TM)), block TTHREADS
template <typename TA, typename TB>
__global__ void gemm_tiled_kernel(float* __restrict__ C, const TA* __restrict__ A, const TB* __restrict__ B, int64_t M, int64_t N,
                                  int64_t K, int64_t sam, int64_t sak, int64_t sbk, int64_t sbn, bool beta) {
  __shared__ float As[TK][TM + 1];  // As[k][m] = A(m0+m, k0+k)
  __shared__ float Bs[TK][TN + 1];  // Bs[k][n] = B(k0+k, n0+n)
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  const int64_t m0 = int64_t(blockIdx.y) * TM, n0 = int64_t(blockIdx.x) * TN;
  float acc[4][4] = {};
  for (int64_t k0 = 0; k0 < K; k0 += TK) {
    // load A's tile: consecutive threads walk the unit-stride dimension so the reads coalesce
    for (int i = tid; i < TM * TK; i += TTHREADS) {
      int m, k;
      if (sak == 1) { m = i / TK; k = i % TK; } else { k = i / TM; m = i % TM; }
      int64_t gm = m0 + m, gk = k0 + k;
      As[k][m] = (gm < M && gk < K) ? load_elem(A, gm * sam + gk * sak) : 0.f;
    }
    for (int i = tid; i < TN * TK; i += TTHREADS) {
      int n, k;
      if (sbk == 1) { n = i / TK; k = i % TK; } else { k = i / TN; n = i % TN; }
      int64_t gn = n0 + n, gk = k0 + k;
      Bs[k][n] = (gn < N && gk < K) ? load_elem(B, gk * sbk + gn * sbn) : 0.f;
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < TK; k++) {
      float a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; i++) a[i] = As[k][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; j++) b[j] = Bs[k][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] += a[i] * b[j];
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; i++) {
    int64_t m = m0 + ty + 16 * i;
    if (m >= M) continue;
#pragma unroll
    for (int j = 0; j < 4; j++) {
      int64_t n = n0 + tx + 16 * j;
      if (n >= N) continue;
      float* c = C + m * N + n;
      *c = beta ? *c + acc[i][j] : acc[i][j];
    }
  }
}

template <typename TA, typename TB>
void gemm_tiled(float* C, const TA* A, const TB* B, int64_t M, int64_t N, int64_t K, int64_t sam, int64_t sak, int64_t sbk, int64_t sbn,
                bool beta, const char* what) {
  if (M == 0 || N == 0) return;
  if (ceil_div(M, TM) > 65535) fail(ErrorCode::UNSUPPORTED, std::string(what) + ": more than 4,194,240 rows in one call");
  dim3 grid(ceil_div(N, TN), ceil_div(M, TM));
  TAILOR_LAUNCH((gemm_tiled_kernel<TA, TB>), grid, TTHREADS)(C, A, B, M, N, K, sam, sak, sbk, sbn, beta);
  check_launch(what);
}

// ---- bf16 tensor cores (WMMA) --------------------------------------------------------------------------
// Block tile 64×64 of y, 4 warps in 2×2, each warp 32×32 = 2×2 WMMA tiles of 16×16×16, K in steps of 32.
// Tiles are staged through shared memory (zero-padded at the edges), so any T, in, out work: no alignment
// or multiple-of-16 demands on the caller. The fp32 accumulators go back through shared memory to be
// written with bounds checks (and the accumulate flag).
constexpr int WM = 64, WN = 64, WTHREADS = 128;  // K in steps of WK = 32 (in the kernel)

// y[T, out] (+)= x[T, in] · W[out, in]ᵀ; x, W as bf16 bits. grid (ceil(out/WN), ceil(T/WM)), block WTHREADS.
// W_ROWS_ARE_K (the backward's dx = dy · W): W is [in, out] and the product is y[T, out] (+)= x[T, in] · W —
// only the staging of W's tile from global memory differs (Bs[n][k] = W[k0+k, n0+n]).
template <bool W_ROWS_ARE_K>
__global__ void matmul_bf16_wmma_kernel(float* __restrict__ y, const uint16_t* __restrict__ x, const uint16_t* __restrict__ w, int64_t T,
                                        int64_t in, int64_t out, bool accumulate) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  using namespace nvcuda;
  constexpr int WK = 32;
  constexpr int WLDS = WK + 8;  // bf16 elements per staged row (multiple of 8; rows 32-byte aligned)
  constexpr int WLDC = WN + 4;  // floats per accumulator row (multiple of 4; 16-row blocks 32-byte aligned)
  __shared__ __align__(32) uint16_t As[WM * WLDS];  // As[m][k] = x[m0+m, k0+k]
  __shared__ __align__(32) uint16_t Bs[WN * WLDS];  // Bs[n][k] = W[n0+n, k0+k] (= Wᵀ col-major)
  __shared__ __align__(32) float Cs[WM * WLDC];     // Cs[m][n] the block's result
  const int tid = threadIdx.x, warp = tid / 32, wm = warp / 2, wn = warp % 2;
  const int64_t m0 = int64_t(blockIdx.y) * WM, n0 = int64_t(blockIdx.x) * WN;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
#pragma unroll
  for (int i = 0; i < 2; i++)
#pragma unroll
    for (int j = 0; j < 2; j++) wmma::fill_fragment(acc[i][j], 0.f);
  for (int64_t k0 = 0; k0 < in; k0 += WK) {
    for (int i = tid; i < WM * WK; i += WTHREADS) {
      int r = i / WK, c = i % WK;
      int64_t gr = m0 + r, gc = k0 + c;
      As[r * WLDS + c] = (gr < T && gc < in) ? x[gr * in + gc] : uint16_t(0);
    }
    if (W_ROWS_ARE_K) {
      for (int i = tid; i < WN * WK; i += WTHREADS) {  // consecutive threads walk n: W's rows are contiguous in n
        int c = i / WN, r = i % WN;
        int64_t gr = n0 + r, gc = k0 + c;
        Bs[r * WLDS + c] = (gr < out && gc < in) ? w[gc * out + gr] : uint16_t(0);
      }
    } else {
      for (int i = tid; i < WN * WK; i += WTHREADS) {
        int r = i / WK, c = i % WK;
        int64_t gr = n0 + r, gc = k0 + c;
        Bs[r * WLDS + c] = (gr < out && gc < in) ? w[gr * in + gc] : uint16_t(0);
      }
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < WK; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> a[2];
      wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> b[2];
#pragma unroll
      for (int i = 0; i < 2; i++)
        wmma::load_matrix_sync(a[i], reinterpret_cast<const __nv_bfloat16*>(As + (wm * 32 + i * 16) * WLDS + kk), WLDS);
#pragma unroll
      for (int j = 0; j < 2; j++)
        wmma::load_matrix_sync(b[j], reinterpret_cast<const __nv_bfloat16*>(Bs + (wn * 32 + j * 16) * WLDS + kk), WLDS);
#pragma unroll
      for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 2; j++) wmma::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 2; i++)
#pragma unroll
    for (int j = 0; j < 2; j++)
      wmma::store_matrix_sync(Cs + (wm * 32 + i * 16) * WLDC + wn * 32 + j * 16, acc[i][j], WLDC, wmma::mem_row_major);
  __syncthreads();
  for (int i = tid; i < WM * WN; i += WTHREADS) {
    int r = i / WN, c = i % WN;
    int64_t gr = m0 + r, gc = n0 + c;
    if (gr < T && gc < out) {
      float* d = y + gr * out + gc;
      *d = accumulate ? *d + Cs[r * WLDC + c] : Cs[r * WLDC + c];
    }
  }
#else
  __trap();  // never launched below sm_80: the host picks the tiled kernel there
#endif
}

}  // namespace

void matmul_forward(float* y, const float* x, const float* w, int64_t T, int64_t in, int64_t out, bool accumulate) {
  if (T == 0 || out == 0) return;
  if (lt_enabled() && lt_matmul_f32(y, x, w, T, in, out, accumulate)) return;
  // A = x (m = t, k = i), B(k, n) = W[n, k]
  gemm_tiled<float, float>(y, x, w, T, out, in, in, 1, 1, in, accumulate, "matmul_forward");
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
    if (ceil_div(T, WM) > 65535) fail(ErrorCode::UNSUPPORTED, "matmul_forward_bf16: more than 4,194,240 rows in one call");
    dim3 grid(ceil_div(out, WN), ceil_div(T, WM));
    TAILOR_LAUNCH(matmul_bf16_wmma_kernel<false>, grid, WTHREADS)(y, x, w, T, in, out, accumulate);
    check_launch("matmul_forward_bf16 (tensor cores)");
  } else {
    gemm_tiled<uint16_t, uint16_t>(y, x, w, T, out, in, in, 1, 1, in, accumulate, "matmul_forward_bf16 (tiled)");
  }
}

void matmul_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, int64_t T, int64_t in, int64_t out) {
  if (T == 0 || in == 0 || out == 0) return;
  // dx[T, in] += dy[T, out] · W[out, in]:  A = dy (m = t, k = o), B(k = o, n = i) = W[o, i]
  const bool lt = lt_enabled();
  if (dx && !(lt && lt_matmul_backward_dx_f32(dx, dy, w, T, in, out)))
    gemm_tiled<float, float>(dx, dy, w, T, in, out, out, 1, in, 1, true, "matmul_backward (dx)");
  // dW[out, in] += dyᵀ · x:  A(m = o, k = t) = dy[t, o], B(k = t, n = i) = x[t, i]
  if (dw && !(lt && lt_matmul_backward_dw_f32(dw, dy, x, T, in, out)))
    gemm_tiled<float, float>(dw, dy, x, out, in, T, 1, out, in, 1, true, "matmul_backward (dW)");
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
  gemm_tiled<float, uint16_t>(y, x, w, T, out, in, in, 1, 1, in, accumulate, "matmul_forward_bf16w (tiled)");
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
    if (ceil_div(T, WM) > 65535) fail(ErrorCode::UNSUPPORTED, "matmul_backward_dx_bf16w: more than 4,194,240 rows in one call");
    // dx[T, in] += dy[T, out] · W[out, in]: the kernel's (in, out) are (out, in) here, W's rows run along k
    dim3 grid(ceil_div(in, WN), ceil_div(T, WM));
    TAILOR_LAUNCH(matmul_bf16_wmma_kernel<true>, grid, WTHREADS)(dx, dy_bf16, w, T, out, in, true);
    check_launch("matmul_backward_dx_bf16w (tensor cores)");
    return;
  }
  gemm_tiled<float, uint16_t>(dx, dy, w, T, in, out, out, 1, in, 1, true, "matmul_backward_dx_bf16w (tiled)");
}

}  // namespace cuda
}  // namespace tailor
