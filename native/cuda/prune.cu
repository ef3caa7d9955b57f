// prune.cu — the pruner's statistics on the device: per-row or per-column float64 sums of an elementwise
// term of a weight and its gradient (|w·g|, w·g, (w·g)²), which group_importance and taylor_tensor_stats
// turn into group shares on the host. Only these sums leave the device, not the gradients: about 60 thousand
// doubles (0.5 MB) per 7B layer instead of its 810 MB of fp32 gradients. Weights may be fp32 or bf16 (the backend's
// copy); each sum is added in index order by one thread or one block, so the result is deterministic.
#include "common.cuh"
#include "kernels.h"

namespace tailor {
namespace cuda {

namespace {

__device__ inline float load_w(const float* w, int64_t i) { return w[i]; }
__device__ inline float load_w(const uint16_t* w, int64_t i) { return bf16_bits_to_float(w[i]); }

__device__ inline double wg_term(float w, float g, int term) {
  const double wg = double(w) * double(g);
  return term == 0 ? fabs(wg) : term == 1 ? wg : wg * wg;
}

// sums[r] = Σ_j term(w[r, j], g[r, j]); w/g[rows, cols]; grid rows, block kRowThreads (strided partial
// sums per thread, then the block's tree: deterministic, not the CPU's order)
template <typename W>
__global__ void wg_row_sums_kernel(double* __restrict__ sums, const W* __restrict__ w, const float* __restrict__ g, int64_t cols, int term) {
  __shared__ double scratch[32];
  const int64_t off = int64_t(blockIdx.x) * cols;
  double s = 0;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) s += wg_term(load_w(w, off + j), g[off + j], term);
  s = block_sum(s, scratch);
  if (threadIdx.x == 0) sums[blockIdx.x] = s;
}

// sums[j] = Σ_r term(w[r, j], g[r, j]) in row order, one thread per column (a warp reads 32 neighbouring
// columns of a row: coalesced); grid ceil(cols/256)
template <typename W>
__global__ void wg_col_sums_kernel(double* __restrict__ sums, const W* __restrict__ w, const float* __restrict__ g, int64_t rows, int64_t cols,
                                   int term) {
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= cols) return;
  double s = 0;
  for (int64_t r = 0, i = j; r < rows; r++, i += cols) s += wg_term(load_w(w, i), g[i], term);
  sums[j] = s;
}

template <typename W>
void launch_sums(double* sums, const W* w, const float* g, int64_t rows, int64_t cols, int term, bool by_column) {
  if (!by_column) {
    rows_limit(rows, "wg_term_sums");
    TAILOR_LAUNCH(wg_row_sums_kernel<W>, unsigned(rows), kRowThreads)(sums, w, g, cols, term);
  } else {
    if ((cols + 255) / 256 > 2147483647) fail(ErrorCode::UNSUPPORTED, "wg_term_sums: too many columns in one call");
    TAILOR_LAUNCH(wg_col_sums_kernel<W>, ceil_div(cols, 256), 256)(sums, w, g, rows, cols, term);
  }
  check_launch("wg_term_sums");
}

}  // namespace

void wg_term_sums(double* sums, const float* w, const uint16_t* w_bf16, const float* g, int64_t rows, int64_t cols, WgTerm term, bool by_column) {
  if (rows <= 0 || cols <= 0) return;
  const int t = term == WgTerm::AbsWG ? 0 : term == WgTerm::WG ? 1 : 2;
  if (w_bf16) launch_sums(sums, w_bf16, g, rows, cols, t, by_column);
  else launch_sums(sums, w, g, rows, cols, t, by_column);
}

}  // namespace cuda
}  // namespace tailor
