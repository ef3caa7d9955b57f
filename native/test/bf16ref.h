// bf16ref.h — the CPU references of tailor_cudacheck's bf16 rows (cudamodel.cpp, cudatrain.cpp): bf16
// rounding, a model's weights rounded in place (norm vectors kept fp32, as the CUDA backend keeps them), and
// a CPU backend that rounds the inputs of the weight products as the tensor cores do.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "backend.h"
#include "bf16.h"
#include "model.h"

namespace tailor {

// The cache attention on tensor cores (attention_forward_tc, attention.cu) as a model: out[T, nh*hd] (written)
// from q[T, nh*hd] and the cache. In a block of 64 tokens of one slot, q and the cached k, v are rounded to
// bf16 and p is rounded to bf16 for P·V; scores, lse and the sums are in Acc (Σ exp in double). A block whose
// tokens are of several slots runs the fp32 path on the GPU: `mixed(b0, b1)` computes its tokens b0..b1−1 when
// given, else it is modelled here unrounded. cudacheck.cpp checks the kernel against it in double;
// Bf16InputsCpu is the CPU reference of whole models with it in float and the CPU's attention for `mixed`.
template <typename Acc>
void attention_tc_model(Acc* out, const float* q, const KvView& kv, const int* pos, const int* slot, int64_t T, int nh, int nkv, int hd,
                        const std::function<void(int64_t b0, int64_t b1)>& mixed = nullptr) {
  const int64_t qs = int64_t(nh) * hd;
  std::vector<Acc> sc;
  for (int64_t b0 = 0; b0 < T; b0 += 64) {
    const int64_t b1 = std::min<int64_t>(T, b0 + 64);
    bool tc = true;
    for (int64_t t = b0; t < b1; t++) tc = tc && slot[t] == slot[b0];
    if (!tc && mixed) {
      mixed(b0, b1);
      continue;
    }
    auto r = [tc](float x) { return Acc(tc ? bf16_round(x) : x); };
    for (int64_t t = b0; t < b1; t++)
      for (int h = 0; h < nh; h++) {
        const float* qr = q + t * qs + int64_t(h) * hd;
        const int64_t base = int64_t(slot[t]) * kv.n_ctx * kv.kv_stride + int64_t(h / (nh / nkv)) * hd;
        sc.assign(size_t(pos[t]) + 1, Acc(0));
        Acc mx = -INFINITY;
        for (int j = 0; j <= pos[t]; j++) {
          const float* kr = kv.k32() + base + int64_t(j) * kv.kv_stride;
          Acc d = 0;
          for (int i = 0; i < hd; i++) d += r(qr[i]) * r(kr[i]);
          sc[size_t(j)] = d / std::sqrt(Acc(hd));
          mx = std::max(mx, sc[size_t(j)]);
        }
        double sum = 0;
        for (Acc x : sc) sum += std::exp(double(x - mx));
        const Acc lse = mx + Acc(std::log(sum));
        Acc* o = out + t * qs + int64_t(h) * hd;
        std::fill(o, o + hd, Acc(0));
        for (int j = 0; j <= pos[t]; j++) {
          const Acc e = std::exp(sc[size_t(j)] - lse), pj = tc ? Acc(bf16_round(float(e))) : e;
          const float* vr = kv.v32() + base + int64_t(j) * kv.kv_stride;
          for (int i = 0; i < hd; i++) o[i] += pj * r(vr[i]);
        }
      }
  }
}

// whether a CUDA backend with bf16 weights multiplies on tensor cores (sm_80 and newer; its name says the sm)
inline bool on_tensor_cores(const Backend& gpu) { return gpu.name().find("sm_7") == std::string::npos; }

// rounds m's weights to bf16 except the norm vectors; returns the fp32 arena to put back
inline Arena round_weights_bf16(Model& m) {
  Arena saved = m.arena;
  std::vector<std::pair<float*, std::vector<float>>> norms;
  for (auto& L : m.layers)
    for (float* p : {L.attn_norm, L.ffn_norm})
      if (p) norms.push_back({p, std::vector<float>(p, p + m.cfg.dim)});
  norms.push_back({m.out_norm, std::vector<float>(m.out_norm, m.out_norm + m.cfg.dim)});
  for (float& w : m.arena) w = bf16_round(w);
  for (auto& n : norms) std::copy(n.second.begin(), n.second.end(), n.first);
  return saved;
}

// The CPU backend computing what the CUDA backend's bf16 mode computes. Where its KV cache holds bf16
// (`kv_rounded`: Backend::kv_bf16) the keys and values are rounded as they are stored (in an fp32 cache here,
// so the CPU's kernels read them). On tensor cores (`products`) the input rows of every product with a model weight (inside `m`'s arena; all products
// when m is null) are rounded to bf16 first — the weights themselves are rounded by the caller; LoRA products
// stay fp32, as on the GPU. Where `tc_attention(hd)` says the GPU's
// training attention runs on tensor cores (attention_tc.cu), its q, k, v (and dout) are rounded too, and the
// forward's output is taken from the probabilities rounded to bf16, as the kernels' P·V takes them (the
// backward's rounding of p and ds is not modelled: it is checked op by op in cudacheck_train.cpp); so is the
// attention over the KV cache for calls of `tc_min_tokens` tokens or more (attention_forward_tc).
// Everything else is forwarded.
class Bf16InputsCpu final : public Backend {
 public:
  explicit Bf16InputsCpu(Backend& cpu, const Model* m = nullptr, bool (*tc_attention)(int hd) = nullptr, int64_t tc_min_tokens = 0,
                         bool products = true, bool kv_rounded = false)
      : c_(cpu), m_(m), tc_att_(tc_attention), tc_min_tokens_(tc_min_tokens), products_(products), kv_rounded_(kv_rounded) {}
  void matmul_forward(float* y, const float* x, const float* w, int64_t T, int64_t in, int64_t out, bool acc) override {
    if (!products_ || (m_ && (w < m_->arena.data() || w >= m_->arena.data() + m_->arena.size()))) return c_.matmul_forward(y, x, w, T, in, out, acc);
    std::vector<float> xr(x, x + T * in);
    for (float& v : xr) v = bf16_round(v);
    c_.matmul_forward(y, xr.data(), w, T, in, out, acc);
  }
  std::string name() const override { return std::string("cpu, bf16 ") + (products_ ? "products" : "weights") + (kv_rounded_ ? ", bf16 KV cache" : ""); }
  int threads() const override { return c_.threads(); }
  bool host_memory() const override { return true; }
  void* alloc(size_t b) override { return c_.alloc(b); }
  void free(void* p) noexcept override { c_.free(p); }
  void upload(void* d, const void* s, size_t b) override { c_.upload(d, s, b); }
  void download(void* d, const void* s, size_t b) override { c_.download(d, s, b); }
  void copy(void* d, const void* s, size_t b) override { c_.copy(d, s, b); }
  void memset0(void* p, size_t b) override { c_.memset0(p, b); }
  void bind_begin(const Model& m) override { c_.bind_begin(m); }
  void bind_part(const Model& m, const float* p, size_t n) override { c_.bind_part(m, p, n); }
  void bind_end(const Model& m) override { c_.bind_end(m); }
  const float* weight(const float* h) const override { return c_.weight(h); }
  void embed_rows(float* x, const float* e, const int* t, int64_t T, int64_t d) override { c_.embed_rows(x, e, t, T, d); }
  void rmsnorm_forward(float* y, const float* x, const float* w, int64_t T, int64_t d, float e) override { c_.rmsnorm_forward(y, x, w, T, d, e); }
  void rope_forward(float* x, const int* p, int64_t T, int h, const RopeTable& r) override { c_.rope_forward(x, p, T, h, r); }
  void kv_store(const KvView& kv, const float* k, const float* v, const int* p, const int* s, int64_t T) override {
    if (!kv_rounded_) return c_.kv_store(kv, k, v, p, s, T);
    const int64_t n = T * kv.kv_stride;
    c_.kv_store(kv, rounded_bf16(k, size_t(n)).data(), rounded_bf16(v, size_t(n)).data(), p, s, T);
  }
  void kv_copy(const KvView& kv, const KvCopy* c, int n, int max_rows) override { c_.kv_copy(kv, c, n, max_rows); }
  void attention_forward(float* o, const float* q, const KvView& kv, const int* p, const int* s, int64_t T, int nh, int nkv, int hd) override {
    if (!tc_att_ || !tc_att_(hd) || T < tc_min_tokens_) return c_.attention_forward(o, q, kv, p, s, T, nh, nkv, hd);
    const int64_t qs = int64_t(nh) * hd;
    attention_tc_model(o, q, kv, p, s, T, nh, nkv, hd,
                       [&](int64_t b0, int64_t b1) { c_.attention_forward(o + b0 * qs, q + b0 * qs, kv, p + b0, s + b0, b1 - b0, nh, nkv, hd); });
  }
  void swiglu_forward(float* h, const float* g, const float* u, int64_t n) override { c_.swiglu_forward(h, g, u, n); }
  void logprob_forward(const float* l, int64_t R, int64_t V, const int* t, double* lp, int* am) override { c_.logprob_forward(l, R, V, t, lp, am); }
  void matmul_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, int64_t T, int64_t in, int64_t out) override {
    c_.matmul_backward(dx, dw, dy, x, w, T, in, out);
  }
  double crossentropy_forward_backward(float* d, const float* l, const int* t, const float* w, int64_t N, int64_t V, double s) override {
    return c_.crossentropy_forward_backward(d, l, t, w, N, V, s);
  }
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) override { c_.parallel_for(n, fn); }
  void add_inplace(float* y, const float* x, int64_t n) override { c_.add_inplace(y, x, n); }
  void rmsnorm_forward_train(float* y, float* r, const float* x, const float* w, int64_t N, int64_t D, double e) override {
    c_.rmsnorm_forward_train(y, r, x, w, N, D, e);
  }
  void rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, const float* r, int64_t N, int64_t D) override {
    c_.rmsnorm_backward(dx, dw, dy, x, w, r, N, D);
  }
  void rope_apply(float* x, const int* p, int64_t N, int h, const RopeTable& r, int s) override { c_.rope_apply(x, p, N, h, r, s); }
  void attention_forward_train(float* o, float* a, const float* q, const float* k, const float* v, int B, int Tn, int nh, int nkv, int hd) override {
    if (!tc_att_ || !tc_att_(hd)) return c_.attention_forward_train(o, a, q, k, v, B, Tn, nh, nkv, hd);
    const int64_t nq = int64_t(B) * Tn * nh * hd, nk = int64_t(B) * Tn * nkv * hd;
    const auto qr = rounded_bf16(q, size_t(nq)), kr = rounded_bf16(k, size_t(nk)), vr = rounded_bf16(v, size_t(nk));
    c_.attention_forward_train(o, a, qr.data(), kr.data(), vr.data(), B, Tn, nh, nkv, hd);
    // out again from the probabilities a[B, nh, Tn, Tn] rounded to bf16, as the kernels' P·V takes them (a
    // itself, which the backward reads, stays as it is)
    const int64_t qs = int64_t(nh) * hd, ks = int64_t(nkv) * hd;
    for (int b = 0; b < B; b++)
      for (int h = 0; h < nh; h++)
        for (int t = 0; t < Tn; t++) {
          const float* pr = a + ((int64_t(b) * nh + h) * Tn + t) * Tn;
          float* out = o + (int64_t(b) * Tn + t) * qs + int64_t(h) * hd;
          std::fill(out, out + hd, 0.f);
          for (int j = 0; j <= t; j++) {
            const float pj = bf16_round(pr[j]);
            const float* vj = vr.data() + (int64_t(b) * Tn + j) * ks + int64_t(h / (nh / nkv)) * hd;
            for (int i = 0; i < hd; i++) out[i] += pj * vj[i];
          }
        }
  }
  int64_t attention_saved_floats(int B, int Tn, int nh) const override { return c_.attention_saved_floats(B, Tn, nh); }
  void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* o, const float* a, const float* q, const float* k,
                          const float* v, int B, int Tn, int nh, int nkv, int hd) override {
    if (!tc_att_ || !tc_att_(hd)) return c_.attention_backward(dq, dk, dv, dout, o, a, q, k, v, B, Tn, nh, nkv, hd);
    const int64_t nq = int64_t(B) * Tn * nh * hd, nk = int64_t(B) * Tn * nkv * hd;
    const auto qr = rounded_bf16(q, size_t(nq)), kr = rounded_bf16(k, size_t(nk)), vr = rounded_bf16(v, size_t(nk)), gr = rounded_bf16(dout, size_t(nq));
    c_.attention_backward(dq, dk, dv, gr.data(), o, a, qr.data(), kr.data(), vr.data(), B, Tn, nh, nkv, hd);
  }
  void swiglu_backward(float* dg, float* du, const float* dh, const float* g, const float* u, int64_t n) override { c_.swiglu_backward(dg, du, dh, g, u, n); }
  void embedding_backward(float* dt, const float* d, const int* ids, int64_t N, int64_t D) override { c_.embedding_backward(dt, d, ids, N, D); }
  void scale_inplace(float* x, float s, int64_t n) override { c_.scale_inplace(x, s, n); }
  void lora_dropout(float* y, const float* x, int64_t n, double p, uint64_t s, uint64_t st, int l, int t) override { c_.lora_dropout(y, x, n, p, s, st, l, t); }
  double sum_squares(const float* x, int64_t n) override { return c_.sum_squares(x, n); }
  void topk_scaled(float* v, int* i, const float* x, int64_t n, int k, float t) override { c_.topk_scaled(v, i, x, n, k, t); }
  void wg_term_sums(double* s, const float* w, const float* g, int64_t r, int64_t c, WgTerm t, bool bc) override { c_.wg_term_sums(s, w, g, r, c, t, bc); }
  void adamw_step(float* p, const float* g, float* m, float* v, int64_t n, float c, float b1, float b2, float e, float wd, double lr, double bc1,
                  double bc2) override {
    c_.adamw_step(p, g, m, v, n, c, b1, b2, e, wd, lr, bc1, bc2);
  }

 private:
  Backend& c_;
  const Model* m_;
  bool (*tc_att_)(int hd);
  int64_t tc_min_tokens_;  // the cache attention's: calls of fewer tokens run the fp32 kernel
  bool products_;          // the weight products' inputs rounded (tensor cores)
  bool kv_rounded_;        // the keys and values rounded as they are stored (a bf16 KV cache)
};

}  // namespace tailor
