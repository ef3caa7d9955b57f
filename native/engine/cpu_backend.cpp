// cpu_backend.cpp — the reference backend: matmul through BLAS (OpenBLAS / MKL / Accelerate when the
// build found one) or a portable blocked kernel, the other ops as threaded loops with AVX2 where present.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "backend.h"
#include "errors.h"
#include "lora_hash.h"
#include "runtime.h"  // sampler_order
#include "train_ops.h"
#include "vec.h"

#if defined(TAILOR_HAVE_CBLAS)
#include <cblas.h>
#endif

namespace tailor {

void Backend::bind_weights(const Model& m) {
  bind_begin(m);
  bind_part(m, m.arena.data(), m.arena.size());
  bind_end(m);
}

void CancelToken::check() const {
  if (cancelled()) fail(ErrorCode::CANCELLED, "cancelled");
}

bool cpu_has_blas() {
#if defined(TAILOR_HAVE_CBLAS)
  return true;
#else
  return false;
#endif
}

std::string cpu_blas_name() {
#if defined(TAILOR_BLAS_NAME)
  return TAILOR_BLAS_NAME;
#else
  return "none";
#endif
}

namespace {

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(const BackendOptions& o)
      : pool_(o.threads > 0 ? o.threads : std::max(1u, std::thread::hardware_concurrency())), blas_(o.blas && cpu_has_blas()) {
#if defined(TAILOR_OPENBLAS)
    if (blas_) openblas_set_num_threads(1);
#endif
  }
  std::string name() const override { return blas_ ? "cpu (" + cpu_blas_name() + ")" : "cpu (built-in gemm)"; }
  int threads() const override { return pool_.size(); }

  void matmul_forward(float* y, const float* x, const float* w, int64_t T, int64_t in, int64_t out, bool acc) override {
    if (T == 0 || out == 0) return;
    if (in == 0) {
      if (!acc) std::memset(y, 0, sizeof(float) * T * out);
      return;
    }
#if defined(TAILOR_HAVE_CBLAS)
    if (blas_) {
      // one threading system: OpenBLAS runs single-threaded and our pool splits the output columns
      const int64_t work = T * in * out;
      const int64_t col_grain = 64;
      int64_t slices = work < (int64_t(1) << 18) ? 1 : std::min<int64_t>(pool_.size(), (out + col_grain - 1) / col_grain);
      pool_.parallel_for(slices, 1, [&](int64_t s0, int64_t s1, int) {
        for (int64_t s = s0; s < s1; s++) {
          int64_t per = (out + slices - 1) / slices;
          per = (per + 15) / 16 * 16;
          int64_t o0 = s * per, o1 = std::min(out, o0 + per);
          if (o0 >= o1) continue;
          if (T == 1)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, int(o1 - o0), int(in), 1.f, w + o0 * in, int(in), x, 1, acc ? 1.f : 0.f, y + o0, 1);
          else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(T), int(o1 - o0), int(in), 1.f, x, int(in), w + o0 * in, int(in),
                        acc ? 1.f : 0.f, y + o0, int(out));
        }
      });
      return;
    }
#endif
    // built-in: each task owns a block of output columns and walks all rows in tiles of 4×4 dots
    const int64_t OB = 16;
    int64_t nblk = (out + OB - 1) / OB;
    pool_.parallel_for(nblk, std::max<int64_t>(1, (int64_t(1) << 16) / (T * in * OB)), [&](int64_t b0, int64_t b1, int) {
      for (int64_t t0 = 0; t0 < T; t0 += 4) {
        int64_t t1 = std::min(T, t0 + 4);
        for (int64_t o = b0 * OB; o < std::min(out, b1 * OB); o++) {
          const float* wr = w + o * in;
          for (int64_t t = t0; t < t1; t++) {
            float s = dot(x + t * in, wr, in);
            float* d = y + t * out + o;
            *d = acc ? *d + s : s;
          }
        }
      }
    });
  }

  void matmul_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, int64_t T, int64_t in, int64_t out) override {
    if (T == 0 || in == 0 || out == 0) return;
#if defined(TAILOR_HAVE_CBLAS)
    if (blas_) {
      const int64_t work = T * in * out;
      if (dx) {  // split dx's columns: dx[:, i0:i1] += dy · W[:, i0:i1]
        int64_t slices = work < (int64_t(1) << 18) ? 1 : std::min<int64_t>(pool_.size(), (in + 63) / 64);
        pool_.parallel_for(slices, 1, [&](int64_t s0, int64_t s1, int) {
          int64_t per = ((in + slices - 1) / slices + 15) / 16 * 16;
          for (int64_t s = s0; s < s1; s++) {
            int64_t i0 = s * per, i1 = std::min(in, i0 + per);
            if (i0 < i1)
              cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(T), int(i1 - i0), int(out), 1.f, dy, int(out), w + i0, int(in), 1.f, dx + i0, int(in));
          }
        });
      }
      if (dw) {  // split dW's rows: dW[o0:o1, :] += dy[:, o0:o1]ᵀ · x
        int64_t slices = work < (int64_t(1) << 18) ? 1 : std::min<int64_t>(pool_.size(), (out + 63) / 64);
        pool_.parallel_for(slices, 1, [&](int64_t s0, int64_t s1, int) {
          int64_t per = ((out + slices - 1) / slices + 15) / 16 * 16;
          for (int64_t s = s0; s < s1; s++) {
            int64_t o0 = s * per, o1 = std::min(out, o0 + per);
            if (o0 < o1)
              cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(o1 - o0), int(in), int(T), 1.f, dy + o0, int(out), x, int(in), 1.f, dw + o0 * in, int(in));
          }
        });
      }
      return;
    }
#endif
    if (dx)
      pool_.parallel_for(T, std::max<int64_t>(1, 65536 / (in * out + 1)), [&](int64_t t0, int64_t t1, int) {
        for (int64_t t = t0; t < t1; t++)
          for (int64_t o = 0; o < out; o++) {
            float g = dy[t * out + o];
            if (g != 0.f) axpy(dx + t * in, g, w + o * in, in);
          }
      });
    if (dw)
      pool_.parallel_for(out, std::max<int64_t>(1, 65536 / (in * T + 1)), [&](int64_t o0, int64_t o1, int) {
        for (int64_t o = o0; o < o1; o++)
          for (int64_t t = 0; t < T; t++) {
            float g = dy[t * out + o];
            if (g != 0.f) axpy(dw + o * in, g, x + t * in, in);
          }
      });
  }

  double crossentropy_forward_backward(float* dlogits, const float* logits, const int* target, const float* weight, int64_t N, int64_t V,
                                       double scale) override {
    double wsum = 0;
    for (int64_t n = 0; n < N; n++) wsum += weight[n];
    std::vector<double> part(size_t(pool_.size()), 0.0);
    pool_.parallel_for(N, std::max<int64_t>(1, 65536 / V), [&](int64_t n0, int64_t n1, int th) {
      double loss = 0;
      for (int64_t n = n0; n < n1; n++) {
        const float* lr = logits + n * V;
        float* d = dlogits ? dlogits + n * V : nullptr;
        if (weight[n] == 0.f || wsum == 0) {
          if (d) std::memset(d, 0, sizeof(float) * V);
          continue;
        }
        float mx = lr[0];
        for (int64_t v = 1; v < V; v++) mx = std::max(mx, lr[v]);
        double wn = double(weight[n]) / wsum;
        if (d) {
          std::memcpy(d, lr, sizeof(float) * V);
          double sum = exp_shift_sum(d, V, mx);  // d = exp(l - mx)
          float k = float(wn * scale / sum);
          for (int64_t v = 0; v < V; v++) d[v] *= k;
          d[target[n]] -= float(wn * scale);
          loss += wn * (double(mx) + std::log(sum) - double(lr[target[n]]));
        } else {
          double sum = exp_shift_sum_const(lr, V, mx);
          loss += wn * (double(mx) + std::log(sum) - double(lr[target[n]]));
        }
      }
      part[size_t(th)] += loss;
    });
    double loss = 0;
    for (double p : part) loss += p;
    return loss;
  }

  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) override {
    pool_.parallel_for(n, 1, [&](int64_t a, int64_t b, int) { fn(a, b); });
  }

  void rmsnorm_forward(float* y, const float* x, const float* w, int64_t T, int64_t dim, float eps) override {
    pool_.parallel_for(T, std::max<int64_t>(1, 16384 / dim), [&](int64_t t0, int64_t t1, int) {
      for (int64_t t = t0; t < t1; t++) {
        const float* xr = x + t * dim;
        float* yr = y + t * dim;
        double ss = 0;
        for (int64_t i = 0; i < dim; i++) ss += double(xr[i]) * xr[i];
        float inv = float(1.0 / std::sqrt(ss / double(dim) + double(eps)));
        for (int64_t i = 0; i < dim; i++) yr[i] = xr[i] * inv * w[i];
      }
    });
  }

  void rope_forward(float* x, const int* pos, int64_t T, int n_heads, const RopeTable& r) override {
    const int hd = r.head_dim, half = hd / 2;
    pool_.parallel_for(T, std::max<int64_t>(1, 2048 / (int64_t(n_heads) * hd + 1)), [&](int64_t t0, int64_t t1, int) {
      std::vector<float> c(half), s(half);
      for (int64_t t = t0; t < t1; t++) {
        double p = double(pos[t]) * r.pos_scale;
        for (int j = 0; j < half; j++) {
          double a = p * r.inv_freq[j];
          c[j] = float(std::cos(a));
          s[j] = float(std::sin(a));
        }
        for (int h = 0; h < n_heads; h++) {
          float* v = x + (t * n_heads + h) * hd;
          for (int j = 0; j < half; j++) {
            int i0 = r.interleaved ? 2 * j : j, i1 = r.interleaved ? 2 * j + 1 : j + half;
            float a = v[i0], b = v[i1];
            v[i0] = a * c[j] - b * s[j];
            v[i1] = a * s[j] + b * c[j];
          }
        }
      }
    });
  }

  // this backend's caches are fp32 (kv_bf16() is false): a bf16 view is a caller's bug
  static void fp32_cache(const KvView& kv) {
    if (kv.bf16) fail(ErrorCode::INTERNAL, "the CPU backend was handed a bf16 KV cache");
  }

  void kv_store(const KvView& kv, const float* k, const float* v, const int* pos, const int* slot, int64_t T) override {
    fp32_cache(kv);
    for (int64_t t = 0; t < T; t++) {
      int64_t off = (int64_t(slot[t]) * kv.n_ctx + pos[t]) * kv.kv_stride;
      std::memcpy(kv.k32() + off, k + t * kv.kv_stride, sizeof(float) * kv.kv_stride);
      std::memcpy(kv.v32() + off, v + t * kv.kv_stride, sizeof(float) * kv.kv_stride);
    }
  }

  void kv_copy(const KvView& kv, const KvCopy* copies, int n, int) override {
    fp32_cache(kv);
    for (int i = 0; i < n; i++) {
      const KvCopy& c = copies[i];
      const size_t bytes = sizeof(float) * size_t(c.rows) * size_t(kv.kv_stride);
      std::memcpy(kv.k32() + int64_t(c.dst) * kv.kv_stride, kv.k32() + int64_t(c.src) * kv.kv_stride, bytes);
      std::memcpy(kv.v32() + int64_t(c.dst) * kv.kv_stride, kv.v32() + int64_t(c.src) * kv.kv_stride, bytes);
    }
  }

  void attention_forward(float* out, const float* q, const KvView& kv, const int* pos, const int* slot, int64_t T, int n_head,
                         int n_kv, int hd) override {
    fp32_cache(kv);
    // tasks: (run of consecutive positions of one slot) × head × tile of up to QT queries; each task walks
    // its keys once in blocks of 8 (scores for 8 keys at a time), then softmax, then P·V
    const int QT = 32;
    struct Task { int64_t t0, t1; int h; };
    std::vector<Task> tasks;
    for (int64_t t = 0; t < T;) {
      int64_t e = t + 1;
      while (e < T && slot[e] == slot[t] && pos[e] == pos[e - 1] + 1) e++;
      for (int64_t q0 = t; q0 < e; q0 += QT)
        for (int h = 0; h < n_head; h++) tasks.push_back({q0, std::min(e, q0 + QT), h});
      t = e;
    }
    const int group = n_head / n_kv;
    const float scale = 1.f / std::sqrt(float(hd));
    int64_t work = 0;
    for (auto& tk : tasks) work += (tk.t1 - tk.t0) * (pos[tk.t1 - 1] + 1) * hd;
    int64_t grain = std::max<int64_t>(1, int64_t(tasks.size()) * 32768 / std::max<int64_t>(1, work));
    pool_.parallel_for(int64_t(tasks.size()), grain, [&](int64_t i0, int64_t i1, int) {
      std::vector<float> S, Kt(size_t(hd) * 8);
      for (int64_t i = i0; i < i1; i++) {
        const Task& tk = tasks[size_t(i)];
        const int64_t nq = tk.t1 - tk.t0;
        const int nk = pos[tk.t1 - 1] + 1;  // keys seen by the last query of the tile
        const int g = tk.h / group;
        const float* kb = kv.k32() + int64_t(slot[tk.t0]) * kv.n_ctx * kv.kv_stride + int64_t(g) * hd;
        const float* vb = kv.v32() + int64_t(slot[tk.t0]) * kv.n_ctx * kv.kv_stride + int64_t(g) * hd;
        S.resize(size_t(nq) * size_t(nk));
        int j = 0;
#if TAILOR_AVX2
        for (; j + 8 <= nk; j += 8) {
          for (int d = 0; d < hd; d++)
            for (int c = 0; c < 8; c++) Kt[size_t(d) * 8 + c] = kb[int64_t(j + c) * kv.kv_stride + d];
          for (int64_t r = 0; r < nq; r++) {
            int64_t t = tk.t0 + r;
            if (pos[t] < j) continue;  // all 8 keys are in this query's future
            const float* qh = q + (t * n_head + tk.h) * hd;
            __m256 acc = _mm256_setzero_ps();
            for (int d = 0; d < hd; d++) acc = _mm256_fmadd_ps(_mm256_set1_ps(qh[d]), _mm256_loadu_ps(&Kt[size_t(d) * 8]), acc);
            _mm256_storeu_ps(&S[size_t(r) * nk + j], _mm256_mul_ps(acc, _mm256_set1_ps(scale)));
          }
        }
#endif
        for (; j < nk; j++)
          for (int64_t r = 0; r < nq; r++) {
            int64_t t = tk.t0 + r;
            if (pos[t] < j) continue;
            S[size_t(r) * nk + j] = dot(q + (t * n_head + tk.h) * hd, kb + int64_t(j) * kv.kv_stride, hd) * scale;
          }
        for (int64_t r = 0; r < nq; r++) {
          int64_t t = tk.t0 + r;
          int n = pos[t] + 1;
          float* sr = &S[size_t(r) * nk];
          float mx = sr[0];
          for (int k = 1; k < n; k++) mx = std::max(mx, sr[k]);
          float inv = float(1.0 / exp_shift_sum(sr, n, mx));
          float* o = out + (t * n_head + tk.h) * hd;
          std::memset(o, 0, sizeof(float) * hd);
          for (int k = 0; k < n; k++) axpy(o, sr[k] * inv, vb + int64_t(k) * kv.kv_stride, hd);
        }
      }
    });
  }

  void swiglu_forward(float* h, const float* g, const float* u, int64_t n) override {
    pool_.parallel_for(n, 16384, [&](int64_t a, int64_t b, int) {
      int64_t i = a;
#if TAILOR_AVX2
      const __m256 one = _mm256_set1_ps(1.f), zero = _mm256_setzero_ps();
      for (; i + 8 <= b; i += 8) {
        __m256 gv = _mm256_loadu_ps(g + i);
        __m256 sig = _mm256_div_ps(one, _mm256_add_ps(one, expf8(_mm256_sub_ps(zero, gv))));
        _mm256_storeu_ps(h + i, _mm256_mul_ps(_mm256_mul_ps(gv, sig), _mm256_loadu_ps(u + i)));
      }
#endif
      for (; i < b; i++) h[i] = g[i] / (1.f + std::exp(-g[i])) * u[i];
    });
  }

  void logprob_forward(const float* logits, int64_t R, int64_t V, const int* target, double* logprob, int* am) override {
    pool_.parallel_for(R, std::max<int64_t>(1, 65536 / V), [&](int64_t r0, int64_t r1, int) {
      for (int64_t r = r0; r < r1; r++) {
        const float* lg = logits + r * V;
        int64_t best = 0;
        for (int64_t k = 1; k < V; k++)
          if (lg[k] > lg[best]) best = k;
        am[r] = int(best);
        if (target[r] >= 0) {
          float mx = lg[best];
          double sum = exp_shift_sum_const(lg, V, mx);
          logprob[r] = double(lg[target[r]]) - double(mx) - std::log(sum);
        }
      }
    });
  }

  void topk_scaled(float* vals, int* ids, const float* x, int64_t n, int k, float temperature) override {
    std::vector<std::pair<float, int>> c(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; i++) c[size_t(i)] = {x[i] / temperature, int(i)};
    std::partial_sort(c.begin(), c.begin() + k, c.end(), sampler_order);
    for (int i = 0; i < k; i++) vals[i] = c[size_t(i)].first, ids[i] = c[size_t(i)].second;
  }
  void add_inplace(float* y, const float* x, int64_t n) override {
    for (int64_t i = 0; i < n; i++) y[i] += x[i];
  }

  // ---- training ops: the reference templates of train_ops.h, so CPU training is what the float64 gradient
  // checks verified (attention split over the pool by (sequence, KV head), which writes disjoint rows) ----
  void rmsnorm_forward_train(float* y, float* rstd, const float* x, const float* w, int64_t N, int64_t D, double eps) override {
    ops::rmsnorm_forward(y, rstd, x, w, N, D, eps);
  }
  void rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, const float* rstd, int64_t N, int64_t D) override {
    ops::rmsnorm_backward(dx, dw, dy, x, w, rstd, N, D);
  }
  void rope_apply(float* x, const int* pos, int64_t N, int n_heads, const RopeTable& r, int sign) override {
    ops::rope_apply(x, pos, N, n_heads, r.head_dim, r.inv_freq.data(), r.pos_scale, r.interleaved, sign);
  }
  void attention_forward_train(float* out, float* att, const float* q, const float* k, const float* v, int B, int Tn, int nh, int nkv,
                               int hd) override {
    pool_.parallel_for(int64_t(B) * nkv, 1, [&](int64_t a, int64_t b, int) { ops::attention_forward(out, att, q, k, v, B, Tn, nh, nkv, hd, a, b); });
  }
  // the probabilities themselves: att[B, nh, Tn, Tn]
  int64_t attention_saved_floats(int B, int Tn, int nh) const override { return int64_t(B) * nh * Tn * Tn; }
  void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* /*out: p is saved*/, const float* att, const float* q,
                          const float* k, const float* v, int B, int Tn, int nh, int nkv, int hd) override {
    pool_.parallel_for(int64_t(B) * nkv, 1,
                       [&](int64_t a, int64_t b, int) { ops::attention_backward(dq, dk, dv, dout, att, q, k, v, B, Tn, nh, nkv, hd, a, b); });
  }
  void swiglu_backward(float* dg, float* du, const float* dh, const float* g, const float* u, int64_t n) override {
    ops::swiglu_backward(dg, du, dh, g, u, n);
  }
  void embedding_backward(float* dtable, const float* dout, const int* ids, int64_t N, int64_t D) override {
    ops::embedding_backward(dtable, dout, ids, N, D);
  }
  void scale_inplace(float* x, float s, int64_t n) override {
    for (int64_t i = 0; i < n; i++) x[i] *= s;
  }
  void lora_dropout(float* y, const float* x, int64_t n, double p, uint64_t seed, uint64_t step, int layer, int target) override {
    const float inv = float(1.0 / (1.0 - p));
    const uint64_t key = dropout_key(seed, step, layer, target);
    for (int64_t i = 0; i < n; i++) y[i] = dropout_draw(key, uint64_t(i)) < p ? 0.f : x[i] * inv;
  }
  void wg_term_sums(double* sums, const float* w, const float* g, int64_t rows, int64_t cols, WgTerm term, bool by_column) override {
    auto f = [term](float wi, float gi) {
      const double wg = double(wi) * double(gi);
      return term == WgTerm::AbsWG ? std::fabs(wg) : term == WgTerm::WG ? wg : wg * wg;
    };
    if (!by_column) {
      parallel_for(rows, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; r++) {
          double s = 0;
          for (int64_t j = 0, i = r * cols; j < cols; j++, i++) s += f(w[i], g[i]);
          sums[r] = s;
        }
      });
      return;
    }
    parallel_for(cols, [&](int64_t c0, int64_t c1) {  // each thread a band of columns, rows in order
      for (int64_t j = c0; j < c1; j++) sums[j] = 0;
      for (int64_t r = 0; r < rows; r++)
        for (int64_t j = c0, i = r * cols + c0; j < c1; j++, i++) sums[j] += f(w[i], g[i]);
    });
  }
  double sum_squares(const float* x, int64_t n) override {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += double(x[i]) * x[i];
    return s;
  }
  void adamw_step(float* p, const float* grad, float* m, float* v, int64_t n, float clip, float beta1, float beta2, float eps, float wd,
                  double lr, double bc1, double bc2) override {
    for (int64_t i = 0; i < n; i++) {
      float g = grad[i] * clip;
      m[i] = beta1 * m[i] + (1 - beta1) * g;
      v[i] = beta2 * v[i] + (1 - beta2) * g * g;
      double mh = m[i] / bc1, vh = v[i] / bc2;
      p[i] = float(double(p[i]) * (1 - lr * wd) - lr * mh / (std::sqrt(vh) + eps));
    }
  }

  // buffers are host memory: upload/download/copy are memcpy, weights are the host arena itself
  bool host_memory() const override { return true; }
  void* alloc(size_t bytes) override {
    size_t n = (std::max<size_t>(bytes, 1) + 63) / 64 * 64;
#ifdef _WIN32
    void* p = _aligned_malloc(n, 64);  // (Windows' C runtime has no aligned_alloc)
#else
    void* p = std::aligned_alloc(64, n);
#endif
    if (!p) fail(ErrorCode::OOM, "out of memory: " + std::to_string(bytes) + " bytes of host memory");
    return p;
  }
  void free(void* p) noexcept override {
#ifdef _WIN32
    _aligned_free(p);
#else
    std::free(p);
#endif
  }
  void upload(void* dst, const void* src, size_t bytes) override {
    if (bytes) std::memcpy(dst, src, bytes);
  }
  void download(void* dst, const void* src, size_t bytes) override {
    if (bytes) std::memcpy(dst, src, bytes);
  }
  void copy(void* dst, const void* src, size_t bytes) override {
    if (bytes) std::memmove(dst, src, bytes);
  }
  void memset0(void* p, size_t bytes) override {
    if (bytes) std::memset(p, 0, bytes);
  }
  void bind_begin(const Model&) override {}
  void bind_part(const Model&, const float*, size_t) override {}
  void bind_end(const Model&) override {}
  const float* weight(const float* host) const override { return host; }
  void embed_rows(float* x, const float* emb, const int* tokens, int64_t T, int64_t D) override {
    for (int64_t t = 0; t < T; t++) std::memcpy(x + t * D, emb + int64_t(tokens[t]) * D, sizeof(float) * size_t(D));
  }

 private:
  ThreadPool pool_;
  bool blas_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(const BackendOptions& opt) { return std::make_unique<CpuBackend>(opt); }

}  // namespace tailor
