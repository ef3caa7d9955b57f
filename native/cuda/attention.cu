// attention.cu — causal GQA attention of a range of query positions against the KV cache, semantics of
// the CPU backend's attention_forward: token t (at position pos[t] of sequence slot[t]) attends to the
// cached positions 0..pos[t] of its slot, query head h to KV head h / (n_head / n_kv), scores scaled by
// 1/√hd. One warp per (token, head) walks the keys once with an online softmax (running max and sum,
// the output rescaled as the max grows), so no score matrix is stored. Straightforward and exact to
// float rounding; one key per step, so long contexts are latency-bound (a tiled flash kernel comes later).
#include "common.cuh"
#include "kernels.h"

namespace tailor {
namespace cuda {

namespace {

constexpr int kWarps = 4;       // (token, head) pairs per block
constexpr int kMaxPerLane = 8;  // head_dim ≤ 32 × 8 = 256

// out[T, n_head*hd], q[T, n_head*hd], kc/vc[slot, n_ctx, kv_stride] (kv head g at columns g*hd..), pos[T], slot[T]
// grid ceil(T*n_head / kWarps), block 32*kWarps
__global__ void attention_forward_kernel(float* __restrict__ out, const float* __restrict__ q, const float* __restrict__ kc,
                                         const float* __restrict__ vc, const int* __restrict__ pos, const int* __restrict__ slot,
                                         int64_t T, int n_head, int n_kv, int hd, int n_ctx, int kv_stride, float scale) {
  const int64_t pair = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (pair >= T * n_head) return;  // whole warps leave together
  const int64_t t = pair / n_head;
  const int h = int(pair % n_head);
  const int g = h / (n_head / n_kv);
  const float* qh = q + pair * hd;                                                  // q[t, h, :]
  const int64_t base = int64_t(slot[t]) * n_ctx * kv_stride + int64_t(g) * hd;
  const float* kb = kc + base;                                                      // k[slot, 0.., g, :]
  const float* vb = vc + base;                                                      // v[slot, 0.., g, :]
  float qr[kMaxPerLane], acc[kMaxPerLane];                                          // dims lane, lane+32, …
#pragma unroll
  for (int i = 0; i < kMaxPerLane; i++) {
    const int d = lane + 32 * i;
    qr[i] = d < hd ? qh[d] : 0.f;
    acc[i] = 0.f;
  }
  float m = -INFINITY, l = 0.f;  // running max of the scores and Σ exp(score - m)
  const int n = pos[t] + 1;
  for (int j = 0; j < n; j++) {
    const float* kr = kb + int64_t(j) * kv_stride;
    float s = 0.f;
#pragma unroll
    for (int i = 0; i < kMaxPerLane; i++) {
      const int d = lane + 32 * i;
      if (d < hd) s += qr[i] * kr[d];
    }
    s = warp_sum(s) * scale;
    const float m_new = fmaxf(m, s);
    const float corr = expf(m - m_new);  // 0 for the first key (m = -inf)
    const float p = expf(s - m_new);
    l = l * corr + p;
    const float* vr = vb + int64_t(j) * kv_stride;
#pragma unroll
    for (int i = 0; i < kMaxPerLane; i++) {
      const int d = lane + 32 * i;
      if (d < hd) acc[i] = acc[i] * corr + p * vr[d];
    }
    m = m_new;
  }
  const float inv = 1.f / l;
  float* o = out + pair * hd;
#pragma unroll
  for (int i = 0; i < kMaxPerLane; i++) {
    const int d = lane + 32 * i;
    if (d < hd) o[d] = acc[i] * inv;
  }
}

}  // namespace

void attention_forward(float* out, const float* q, const KvView& kv, const int* pos, const int* slot, int64_t T, int n_head, int n_kv,
                       int hd) {
  if (T == 0 || n_head == 0) return;
  if (hd > 32 * kMaxPerLane) fail(ErrorCode::UNSUPPORTED, "CUDA attention supports head_dim up to 256 (got " + std::to_string(hd) + ")");
  if (n_kv <= 0 || n_head % n_kv != 0) fail(ErrorCode::ARG, "attention_forward: n_head must be a multiple of n_kv");
  const int64_t pairs = T * n_head;
  if ((pairs + kWarps - 1) / kWarps > 2147483647) fail(ErrorCode::UNSUPPORTED, "attention_forward: too many tokens in one call");
  TAILOR_LAUNCH(attention_forward_kernel, ceil_div(pairs, kWarps), 32 * kWarps)(out, q, kv.k, kv.v, pos, slot, T, n_head, n_kv, hd, kv.n_ctx,
                                                                    kv.kv_stride, 1.f / sqrtf(float(hd)));
  check_launch("attention_forward");
}

}  // namespace cuda
}  // namespace tailor
