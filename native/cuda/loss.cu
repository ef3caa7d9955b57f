// loss.cu — the output-side ops on the GPU, semantics of the CPU backend's:
//   logprob_forward                argmax of each row of logits (the first maximum) and, for rows with a
//                                  target, log softmax at the target with a float64 normaliser (scoring)
//   crossentropy_forward_backward  the weighted mean cross-entropy (weights normalised by their sum, weight
//                                  0 = ignored) and dlogits = scale · ∂loss/∂logits (training)
// One block per row; the exponentials in float (as the CPU's), their sums in float64.
#include "common.cuh"
#include "kernels.h"

namespace tailor {
namespace cuda {

namespace {

constexpr int kThreads = 256;

// logits[R, V], target[R], logprob[R] (float64; written only where target >= 0), argmax[R]; grid R, block kThreads
__global__ void logprob_forward_kernel(const float* __restrict__ logits, int64_t V, const int* __restrict__ target,
                                       double* __restrict__ logprob, int* __restrict__ argmax) {
  __shared__ float best_v[kThreads];
  __shared__ int64_t best_i[kThreads];
  __shared__ double scratch[32];
  const int64_t r = blockIdx.x;
  const float* lg = logits + r * V;
  // argmax: each thread's first maximum over its strided columns, then a tree that keeps the lower index on ties
  float bv = -INFINITY;
  int64_t bi = -1;
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x)
    if (bi < 0 || lg[v] > bv) { bv = lg[v]; bi = v; }
  best_v[threadIdx.x] = bv;
  best_i[threadIdx.x] = bi;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (int(threadIdx.x) < s) {
      const float ov = best_v[threadIdx.x + s];
      const int64_t oi = best_i[threadIdx.x + s];
      const int64_t mi = best_i[threadIdx.x];
      if (oi >= 0 && (mi < 0 || ov > best_v[threadIdx.x] || (ov == best_v[threadIdx.x] && oi < mi))) {
        best_v[threadIdx.x] = ov;
        best_i[threadIdx.x] = oi;
      }
    }
    __syncthreads();
  }
  const float mx = best_v[0];
  const int64_t am = best_i[0];
  if (threadIdx.x == 0) argmax[r] = int(am);
  const int tg = target[r];
  if (tg < 0) return;  // uniform over the block
  double sum = 0;
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) sum += double(expf(lg[v] - mx));
  sum = block_sum(sum, scratch);
  if (threadIdx.x == 0) logprob[r] = double(lg[tg]) - double(mx) - log(sum);
}

// out[0] = Σ w[n] in float64; one block of kThreads
__global__ void sum_weights_kernel(const float* __restrict__ w, int64_t N, double* __restrict__ out) {
  __shared__ double scratch[32];
  double s = 0;
  for (int64_t n = threadIdx.x; n < N; n += blockDim.x) s += double(w[n]);
  s = block_sum(s, scratch);
  if (threadIdx.x == 0) *out = s;
}

// rowloss[N] = w[n]/Σw · (max + log Σ exp(l - max) - l[target]); dlogits[N, V] (may be null) = scale · (w[n]/Σw) ·
// (softmax - onehot(target)), zero rows for ignored tokens. logits[N, V], target[N], weight[N], wsum[1] (device);
// grid N, block kThreads
__global__ void crossentropy_kernel(float* __restrict__ dlogits, double* __restrict__ rowloss, const float* __restrict__ logits,
                                    const int* __restrict__ target, const float* __restrict__ weight, const double* __restrict__ wsum_p,
                                    int64_t V, double scale) {
  __shared__ double dscratch[32];
  __shared__ float fscratch[32];
  const int64_t n = blockIdx.x;
  const float* lr = logits + n * V;
  float* d = dlogits ? dlogits + n * V : nullptr;
  const double wsum = *wsum_p;
  if (weight[n] == 0.f || wsum == 0) {  // uniform over the block
    if (d)
      for (int64_t v = threadIdx.x; v < V; v += blockDim.x) d[v] = 0.f;
    if (threadIdx.x == 0) rowloss[n] = 0;
    return;
  }
  float mx = -INFINITY;
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) mx = fmaxf(mx, lr[v]);
  mx = block_max(mx, fscratch);
  double sum = 0;
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) sum += double(expf(lr[v] - mx));
  sum = block_sum(sum, dscratch);
  const double wn = double(weight[n]) / wsum;
  const int tg = target[n];
  if (d) {
    const float k = float(wn * scale / sum);
    for (int64_t v = threadIdx.x; v < V; v += blockDim.x) d[v] = expf(lr[v] - mx) * k;
    __syncthreads();  // the target's entry was written by some thread above
    if (threadIdx.x == 0) d[tg] -= float(wn * scale);
  }
  if (threadIdx.x == 0) rowloss[n] = wn * (double(mx) + log(sum) - double(lr[tg]));
}

// out[0] = Σ rowloss[N]; one block of kThreads
__global__ void sum_doubles_kernel(const double* __restrict__ x, int64_t N, double* __restrict__ out) {
  __shared__ double scratch[32];
  double s = 0;
  for (int64_t n = threadIdx.x; n < N; n += blockDim.x) s += x[n];
  s = block_sum(s, scratch);
  if (threadIdx.x == 0) *out = s;
}

}  // namespace

void logprob_forward(const float* logits, int64_t R, int64_t V, const int* target, double* logprob, int* argmax) {
  if (R == 0) return;
  if (V <= 0) fail(ErrorCode::ARG, "logprob_forward: empty vocabulary");
  rows_limit(R, "logprob_forward");
  TAILOR_LAUNCH(logprob_forward_kernel, unsigned(R), kThreads)(logits, V, target, logprob, argmax);
  check_launch("logprob_forward");
}

double crossentropy_forward_backward(float* dlogits, const float* logits, const int* target, const float* weight, int64_t N, int64_t V,
                                     double scale) {
  if (N == 0) return 0.0;
  rows_limit(N, "crossentropy_forward_backward");
  // scratch: [0] Σ weights, [1] the loss, [2..2+N) per-row losses (no allocator yet: one cudaMalloc per call)
  double* scratch = static_cast<double*>(device_malloc(sizeof(double) * size_t(N + 2)));
  double loss = 0;
  try {
    TAILOR_LAUNCH(sum_weights_kernel, 1, kThreads)(weight, N, scratch);
    check_launch("crossentropy (Σ weights)");
    TAILOR_LAUNCH(crossentropy_kernel, unsigned(N), kThreads)(dlogits, scratch + 2, logits, target, weight, scratch, V, scale);
    check_launch("crossentropy_forward_backward");
    TAILOR_LAUNCH(sum_doubles_kernel, 1, kThreads)(scratch + 2, N, scratch + 1);
    check_launch("crossentropy (Σ rows)");
    to_host(&loss, scratch + 1, sizeof(double));
  } catch (...) {
    device_free(scratch);
    throw;
  }
  device_free(scratch);
  return loss;
}

}  // namespace cuda
}  // namespace tailor
