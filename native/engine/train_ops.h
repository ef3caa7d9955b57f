// train_ops.h — the training core's op pairs, llm.c style: every x_forward has its x_backward, both
// templated on the scalar type so the same code runs in float (training) and double (the finite-
// difference checks of native/test/gradcheck.cpp). Backward functions ACCUMULATE into their gradient
// outputs (+=), so a tensor used twice (the residual stream) just receives both contributions.
// Row-major throughout; N = rows (tokens of a packed batch), shapes in the comments.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace tailor {
namespace ops {

// ---- embedding ----------------------------------------------------------------------------------
// out[N, D] = table[ids[n]]
template <typename T>
void embedding_forward(T* out, const T* table, const int* ids, int64_t N, int64_t D) {
  for (int64_t n = 0; n < N; n++) std::memcpy(out + n * D, table + int64_t(ids[n]) * D, sizeof(T) * D);
}
// dtable[V, D] += scatter of dout[N, D]
template <typename T>
void embedding_backward(T* dtable, const T* dout, const int* ids, int64_t N, int64_t D) {
  for (int64_t n = 0; n < N; n++) {
    T* d = dtable + int64_t(ids[n]) * D;
    const T* g = dout + n * D;
    for (int64_t i = 0; i < D; i++) d[i] += g[i];
  }
}

// ---- RMSNorm ------------------------------------------------------------------------------------
// y[N, D] = x * rstd * w,  rstd[N] = 1/sqrt(mean(x²) + eps) (saved for backward)
template <typename T>
void rmsnorm_forward(T* y, T* rstd, const T* x, const T* w, int64_t N, int64_t D, double eps) {
  for (int64_t n = 0; n < N; n++) {
    const T* xr = x + n * D;
    double ss = 0;
    for (int64_t i = 0; i < D; i++) ss += double(xr[i]) * double(xr[i]);
    T r = T(1.0 / std::sqrt(ss / double(D) + eps));
    rstd[n] = r;
    T* yr = y + n * D;
    for (int64_t i = 0; i < D; i++) yr[i] = xr[i] * r * w[i];
  }
}
// dx[N, D] += ..., dw[D] += Σ_n dy·x·rstd (dw may be null)
template <typename T>
void rmsnorm_backward(T* dx, T* dw, const T* dy, const T* x, const T* w, const T* rstd, int64_t N, int64_t D) {
  for (int64_t n = 0; n < N; n++) {
    const T* xr = x + n * D;
    const T* g = dy + n * D;
    const T r = rstd[n];
    // y_i = w_i x_i r;  dL/dx_j = r w_j g_j − r³ x_j / D · Σ_i g_i w_i x_i
    double dot = 0;
    for (int64_t i = 0; i < D; i++) dot += double(g[i]) * double(w[i]) * double(xr[i]);
    T c = T(dot * double(r) * double(r) * double(r) / double(D));
    T* d = dx + n * D;
    for (int64_t i = 0; i < D; i++) d[i] += r * w[i] * g[i] - c * xr[i];
    if (dw)
      for (int64_t i = 0; i < D; i++) dw[i] += g[i] * xr[i] * r;
  }
}

// ---- linear -------------------------------------------------------------------------------------
// y[N, out] = x[N, in] · W[out, in]ᵀ  (+= when accumulate)
template <typename T>
void matmul_forward(T* y, const T* x, const T* w, int64_t N, int64_t in, int64_t out, bool accumulate = false) {
  for (int64_t n = 0; n < N; n++)
    for (int64_t o = 0; o < out; o++) {
      T s = 0;
      const T* xr = x + n * in;
      const T* wr = w + o * in;
      for (int64_t i = 0; i < in; i++) s += xr[i] * wr[i];
      y[n * out + o] = accumulate ? y[n * out + o] + s : s;
    }
}
// dx[N, in] += dy · W;  dW[out, in] += dyᵀ · x  (either may be null)
template <typename T>
void matmul_backward(T* dx, T* dw, const T* dy, const T* x, const T* w, int64_t N, int64_t in, int64_t out) {
  if (dx)
    for (int64_t n = 0; n < N; n++)
      for (int64_t o = 0; o < out; o++) {
        T g = dy[n * out + o];
        if (g == T(0)) continue;
        const T* wr = w + o * in;
        T* d = dx + n * in;
        for (int64_t i = 0; i < in; i++) d[i] += g * wr[i];
      }
  if (dw)
    for (int64_t n = 0; n < N; n++)
      for (int64_t o = 0; o < out; o++) {
        T g = dy[n * out + o];
        if (g == T(0)) continue;
        const T* xr = x + n * in;
        T* d = dw + o * in;
        for (int64_t i = 0; i < in; i++) d[i] += g * xr[i];
      }
}

// ---- RoPE ---------------------------------------------------------------------------------------
// x[N, nh*hd] rotated in place by angle pos[n]·pos_scale·inv_freq[j]; sign = -1 applies the inverse
// rotation, which is the backward (a rotation's Jacobian is the rotation itself, transposed).
template <typename T>
void rope_apply(T* x, const int* pos, int64_t N, int nh, int hd, const double* inv_freq, double pos_scale, bool interleaved, int sign) {
  const int half = hd / 2;
  for (int64_t n = 0; n < N; n++) {
    double p = double(pos[n]) * pos_scale;
    for (int j = 0; j < half; j++) {
      double a = p * inv_freq[j];
      T c = T(std::cos(a)), s = T(sign * std::sin(a));
      for (int h = 0; h < nh; h++) {
        T* v = x + (n * nh + h) * hd;
        int i0 = interleaved ? 2 * j : j, i1 = interleaved ? 2 * j + 1 : j + half;
        T a0 = v[i0], a1 = v[i1];
        v[i0] = a0 * c - a1 * s;
        v[i1] = a0 * s + a1 * c;
      }
    }
  }
}

// ---- causal attention with GQA over B padded sequences of length Tn -------------------------------
// q[B*Tn, nh*hd], k/v[B*Tn, nkv*hd] → out[B*Tn, nh*hd]; att[B, nh, Tn, Tn] keeps the softmax
// probabilities (row t uses columns 0..t) for the backward.
// Work splits into B·nkv independent tasks (a sequence × a KV head with its query heads): the
// [task0, task1) overloads let a caller run tasks in parallel without two writing the same dk/dv rows.
template <typename T>
void attention_forward(T* out, T* att, const T* q, const T* k, const T* v, int B, int Tn, int nh, int nkv, int hd, int64_t task0 = 0,
                       int64_t task1 = -1) {
  const int group = nh / nkv;
  const T scale = T(1.0 / std::sqrt(double(hd)));
  const int64_t qs = int64_t(nh) * hd, ks = int64_t(nkv) * hd;
  if (task1 < 0) task1 = int64_t(B) * nkv;
  for (int64_t task = task0; task < task1; task++)
    for (int h = int(task % nkv) * group; h < int(task % nkv + 1) * group; h++) {
      const int b = int(task / nkv), g = h / group;
      for (int t = 0; t < Tn; t++) {
        const T* qr = q + (int64_t(b) * Tn + t) * qs + int64_t(h) * hd;
        T* ar = att + ((int64_t(b) * nh + h) * Tn + t) * Tn;
        T mx = -INFINITY;
        for (int j = 0; j <= t; j++) {
          const T* kr = k + (int64_t(b) * Tn + j) * ks + int64_t(g) * hd;
          T s = 0;
          for (int i = 0; i < hd; i++) s += qr[i] * kr[i];
          ar[j] = s * scale;
          mx = std::max(mx, ar[j]);
        }
        double sum = 0;
        for (int j = 0; j <= t; j++) {
          ar[j] = std::exp(ar[j] - mx);  // float exp in float builds, double in the checks
          sum += double(ar[j]);
        }
        T inv = T(1.0 / sum);
        for (int j = 0; j <= t; j++) ar[j] *= inv;
        for (int j = t + 1; j < Tn; j++) ar[j] = 0;
        T* o = out + (int64_t(b) * Tn + t) * qs + int64_t(h) * hd;
        for (int i = 0; i < hd; i++) o[i] = 0;
        for (int j = 0; j <= t; j++) {
          const T* vr = v + (int64_t(b) * Tn + j) * ks + int64_t(g) * hd;
          for (int i = 0; i < hd; i++) o[i] += ar[j] * vr[i];
        }
      }
    }
}
// dq, dk, dv += ... given dout and the saved probabilities
template <typename T>
void attention_backward(T* dq, T* dk, T* dv, const T* dout, const T* att, const T* q, const T* k, const T* v, int B, int Tn, int nh,
                        int nkv, int hd, int64_t task0 = 0, int64_t task1 = -1) {
  const int group = nh / nkv;
  const T scale = T(1.0 / std::sqrt(double(hd)));
  const int64_t qs = int64_t(nh) * hd, ks = int64_t(nkv) * hd;
  std::vector<T> dp(static_cast<size_t>(Tn));
  if (task1 < 0) task1 = int64_t(B) * nkv;
  for (int64_t task = task0; task < task1; task++)
    for (int h = int(task % nkv) * group; h < int(task % nkv + 1) * group; h++) {
      const int b = int(task / nkv), g = h / group;
      for (int t = 0; t < Tn; t++) {
        const T* ar = att + ((int64_t(b) * nh + h) * Tn + t) * Tn;
        const T* go = dout + (int64_t(b) * Tn + t) * qs + int64_t(h) * hd;
        // o = Σ_j p_j v_j:  dp_j = go·v_j;  dv_j += p_j go
        T pdp = 0;
        for (int j = 0; j <= t; j++) {
          const T* vr = v + (int64_t(b) * Tn + j) * ks + int64_t(g) * hd;
          T* dvr = dv + (int64_t(b) * Tn + j) * ks + int64_t(g) * hd;
          T s = 0;
          for (int i = 0; i < hd; i++) {
            s += go[i] * vr[i];
            dvr[i] += ar[j] * go[i];
          }
          dp[j] = s;
          pdp += ar[j] * s;
        }
        // softmax: ds_j = p_j (dp_j − Σ p dp);  s_j = scale q·k_j
        const T* qr = q + (int64_t(b) * Tn + t) * qs + int64_t(h) * hd;
        T* dqr = dq + (int64_t(b) * Tn + t) * qs + int64_t(h) * hd;
        for (int j = 0; j <= t; j++) {
          T ds = ar[j] * (dp[j] - pdp) * scale;
          if (ds == T(0)) continue;
          const T* kr = k + (int64_t(b) * Tn + j) * ks + int64_t(g) * hd;
          T* dkr = dk + (int64_t(b) * Tn + j) * ks + int64_t(g) * hd;
          for (int i = 0; i < hd; i++) {
            dqr[i] += ds * kr[i];
            dkr[i] += ds * qr[i];
          }
        }
      }
    }
}

// ---- SwiGLU -------------------------------------------------------------------------------------
// h[n] = silu(g) · u
template <typename T>
void swiglu_forward(T* h, const T* g, const T* u, int64_t n) {
  for (int64_t i = 0; i < n; i++) h[i] = g[i] / (T(1) + std::exp(-g[i])) * u[i];
}
template <typename T>
void swiglu_backward(T* dg, T* du, const T* dh, const T* g, const T* u, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    T sig = T(1) / (T(1) + std::exp(-g[i]));
    T silu = g[i] * sig;
    du[i] += dh[i] * silu;
    dg[i] += dh[i] * u[i] * sig * (T(1) + g[i] * (T(1) - sig));
  }
}

// ---- cross-entropy ------------------------------------------------------------------------------
// loss = Σ_n weight[n] · (−log softmax(logits[n])[target[n]]) / Σ weight; dlogits = ∂loss/∂logits
// (rows with weight 0 get zero gradient). Returns the loss in double.
template <typename T>
double crossentropy_forward_backward(T* dlogits, const T* logits, const int* target, const float* weight, int64_t N, int64_t V) {
  double wsum = 0;
  for (int64_t n = 0; n < N; n++) wsum += weight[n];
  double loss = 0;
  for (int64_t n = 0; n < N; n++) {
    const T* lr = logits + n * V;
    T* d = dlogits ? dlogits + n * V : nullptr;
    if (weight[n] == 0.f || wsum == 0) {
      if (d) std::fill(d, d + V, T(0));
      continue;
    }
    T mx = lr[0];
    for (int64_t v = 1; v < V; v++) mx = std::max(mx, lr[v]);
    double sum = 0;
    for (int64_t v = 0; v < V; v++) sum += std::exp(double(lr[v] - mx));
    double lse = double(mx) + std::log(sum);
    double wn = double(weight[n]) / wsum;
    loss += wn * (lse - double(lr[target[n]]));
    if (d) {
      for (int64_t v = 0; v < V; v++) d[v] = T(wn * std::exp(double(lr[v]) - lse));
      d[target[n]] -= T(wn);
    }
  }
  return loss;
}

}  // namespace ops
}  // namespace tailor
