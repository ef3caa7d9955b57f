// train_graph.cpp — the model-level training forward and backward (see train_graph.h). Per layer:
//   x ─ rmsnorm ─ q/k/v (+LoRA) ─ RoPE ─ causal GQA attention ─ o (+LoRA) ─ (+x) = xm
//   xm ─ rmsnorm ─ gate/up (+LoRA) ─ SwiGLU ─ down (+LoRA) ─ (+xm) = next x
// and the head: x ─ rmsnorm ─ lm_head ─ cross-entropy. Backward walks the same path in reverse.
#include "train_graph.h"

#include <type_traits>

#include "errors.h"
#include "lora_hash.h"

namespace tailor {

namespace {

// A tensor of the graph: host memory (std::vector) without a backend — the float64 checks and the scalar
// float reference — else a backend buffer (host memory on the CPU backend, device memory on CUDA).
template <typename T>
struct Buf {
  std::vector<T> h;
  BackendBuffer d;
  T* p = nullptr;
  int64_t n = 0;
  T* data() const { return p; }
};

// Saved activations of one layer; with checkpointing only x is kept between forward and backward.
template <typename T>
struct LayerActs {
  Buf<T> x, rstd1, xn1, q, k, v, att, ao, xm, rstd2, xn2, g, u, h;
  Buf<T> xa[kNumTargets];  // LoRA: dropout(input)·Aᵀ, [N, r]
};

// projection t of a layer's weights or gradients (both structs name their members alike)
template <typename L>
auto proj(L& layer, int t) {
  switch (t) {
    case kQ: return layer.wq;
    case kK: return layer.wk;
    case kV: return layer.wv;
    case kO: return layer.wo;
    case kGate: return layer.w_gate;
    case kUp: return layer.w_up;
    default: return layer.w_down;
  }
}

template <typename T>
struct Graph {
  const Config& c;
  const WeightsT<T>& w;  // host weight pointers (a backend maps them with weight())
  const RopeTable& rope;
  const LoraLayout* lay;
  const T* lp;   // LoRA params   (backend buffers when there is a backend)
  T* lg;         // LoRA grads    (idem)
  GradsT<T>* bg; // base grads    (idem)
  const TrainBatch& batch;
  const TrainOptions& opt;
  int64_t N;
  Backend* be = nullptr;  // float only; null: the reference templates on host memory
  std::vector<int> pos_h;
  BackendBuffer ids_d, targets_d, weight_d, pos_d;
  const int *ids = nullptr, *targets = nullptr, *pos = nullptr;
  const float* lweight = nullptr;

  bool on_be() const {
    if constexpr (std::is_same_v<T, float>) return be != nullptr;
    return false;
  }
  Backend& B() const { return *be; }

  // ---- buffers ----
  void make(Buf<T>& b, int64_t n, bool zero = true) {
    b.n = n;
    if (on_be()) {
      b.d.reserve(B(), sizeof(T) * size_t(std::max<int64_t>(n, 1)));
      b.p = reinterpret_cast<T*>(b.d.f());
      if (zero) B().memset0(b.p, sizeof(T) * size_t(n));
    } else {
      b.h.assign(size_t(n), T(0));
      b.p = b.h.data();
    }
  }
  void drop(Buf<T>& b) {
    b.h = std::vector<T>();
    b.d.release();
    b.p = nullptr;
    b.n = 0;
  }
  void copy(Buf<T>& dst, const Buf<T>& src) {
    make(dst, src.n, false);
    if (on_be()) B().copy(dst.p, src.p, sizeof(T) * size_t(src.n));
    else std::copy(src.p, src.p + src.n, dst.p);
  }
  void add(T* y, const T* x, int64_t n) {
    if constexpr (std::is_same_v<T, float>)
      if (be) return B().add_inplace(y, x, n);
    for (int64_t i = 0; i < n; i++) y[i] += x[i];
  }
  void scale(T* x, T s, int64_t n) {
    if constexpr (std::is_same_v<T, float>)
      if (be) return B().scale_inplace(x, s, n);
    for (int64_t i = 0; i < n; i++) x[i] *= s;
  }
  const T* W(const T* host) const {
    if constexpr (std::is_same_v<T, float>)
      if (be) return B().weight(host);
    return host;
  }

  // ---- ops: the backend's, or the reference templates ----
  void mm(T* y, const T* x, const T* wt, int64_t n, int64_t in, int64_t out, bool acc = false) {
    if constexpr (std::is_same_v<T, float>)
      if (be) return B().matmul_forward(y, x, wt, n, in, out, acc);
    ops::matmul_forward(y, x, wt, n, in, out, acc);
  }
  void mmb(T* dx, T* dw, const T* dy, const T* x, const T* wt, int64_t n, int64_t in, int64_t out) {
    if constexpr (std::is_same_v<T, float>)
      if (be) return B().matmul_backward(dx, dw, dy, x, wt, n, in, out);
    ops::matmul_backward(dx, dw, dy, x, wt, n, in, out);
  }
  void norm_fwd(T* y, T* rstd, const T* x, const T* wt, int64_t D) {
    if constexpr (std::is_same_v<T, float>)
      if (be) return B().rmsnorm_forward_train(y, rstd, x, W(wt), N, D, c.norm_eps);
    ops::rmsnorm_forward(y, rstd, x, wt, N, D, c.norm_eps);
  }
  void norm_bwd(T* dx, T* dw, const T* dy, const T* x, const T* wt, const T* rstd, int64_t D) {
    if constexpr (std::is_same_v<T, float>)
      if (be) return B().rmsnorm_backward(dx, dw, dy, x, W(wt), rstd, N, D);
    ops::rmsnorm_backward(dx, dw, dy, x, wt, rstd, N, D);
  }
  void rope_(T* x, int nh, int sign) {
    if constexpr (std::is_same_v<T, float>)
      if (be) return B().rope_apply(x, pos, N, nh, rope, sign);
    ops::rope_apply(x, pos, N, nh, c.head_dim, rope.inv_freq.data(), rope.pos_scale, rope.interleaved, sign);
  }
  void attn_fwd(T* o, T* att, const T* q, const T* k, const T* v, int nh, int nkv, int hd) {
    if constexpr (std::is_same_v<T, float>)
      if (be) return B().attention_forward_train(o, att, q, k, v, batch.B, batch.Tn, nh, nkv, hd);
    ops::attention_forward(o, att, q, k, v, batch.B, batch.Tn, nh, nkv, hd);
  }
  void attn_bwd(T* dq, T* dk, T* dv, const T* dout, const T* out, const T* att, const T* q, const T* k, const T* v, int nh, int nkv, int hd) {
    if constexpr (std::is_same_v<T, float>)
      if (be) return B().attention_backward(dq, dk, dv, dout, out, att, q, k, v, batch.B, batch.Tn, nh, nkv, hd);
    ops::attention_backward(dq, dk, dv, dout, att, q, k, v, batch.B, batch.Tn, nh, nkv, hd);
  }
  void swiglu_fwd(T* h, const T* g, const T* u, int64_t n) {
    // on host memory the reference template (the CPU backend's inference kernel uses a faster exp)
    if constexpr (std::is_same_v<T, float>)
      if (be && !B().host_memory()) return B().swiglu_forward(h, g, u, n);
    ops::swiglu_forward(h, g, u, n);
  }
  void swiglu_bwd(T* dg, T* du, const T* dh, const T* g, const T* u, int64_t n) {
    if constexpr (std::is_same_v<T, float>)
      if (be) return B().swiglu_backward(dg, du, dh, g, u, n);
    ops::swiglu_backward(dg, du, dh, g, u, n);
  }

  bool adapted(int l, int t) const { return lay && lp && lay->at(l, t).a >= 0; }
  T lscale() const { return T(lay->cfg.scale()); }
  bool dropping() const { return opt.training && lay && lay->cfg.dropout > 0; }

  // y[n] = dropout(x) for target t of layer l (y may be x: the backward passes a gradient through the mask)
  void dropout(T* y, const T* x, int l, int t, int64_t n) {
    const double p = lay->cfg.dropout;
    if constexpr (std::is_same_v<T, float>)
      if (be) return B().lora_dropout(y, x, n, p, opt.dropout_seed, opt.step, l, t);
    const T inv = T(1.0 / (1.0 - p));
    for (int64_t i = 0; i < n; i++) y[i] = lora_dropout_uniform(opt.dropout_seed, opt.step, l, t, uint64_t(i)) < p ? T(0) : x[i] * inv;
  }
  // the LoRA branch's input [N, in]: x itself, or dropout(x) in xd while training with dropout
  const T* lora_input(Buf<T>& xd, const T* x, int l, int t, int64_t in) {
    if (!dropping()) return x;
    make(xd, N * in, false);
    dropout(xd.p, x, l, t, N * in);
    return xd.p;
  }

  // y[N, out] = x·Wᵀ (+ s·dropout(x)·Aᵀ·Bᵀ)
  void linear_forward(T* y, const T* x, int l, int t, int64_t in, int64_t out, Buf<T>* xa) {
    mm(y, x, W(proj(w.layers[size_t(l)], t)), N, in, out);
    if (!adapted(l, t)) return;
    const LoraSlot& s = lay->at(l, t);
    const int r = lay->cfg.rank;
    Buf<T> xd, xs;
    const T* xin = lora_input(xd, x, l, t, in);
    make(*xa, N * r);
    mm(xa->p, xin, lp + s.a, N, in, r);
    copy(xs, *xa);
    scale(xs.p, lscale(), N * r);
    mm(y, xs.p, lp + s.b, N, r, out, true);
  }

  // dx += ∂/∂x; LoRA and base gradients accumulated
  void linear_backward(T* dx, const T* dy, const T* x, int l, int t, int64_t in, int64_t out, const Buf<T>* xa) {
    T* dW = bg ? proj(bg->layers[size_t(l)], t) : nullptr;
    mmb(dx, dW, dy, x, W(proj(w.layers[size_t(l)], t)), N, in, out);
    if (!adapted(l, t)) return;
    const LoraSlot& s = lay->at(l, t);
    const int r = lay->cfg.rank;
    // y += s·xa·Bᵀ:  dB += s·dyᵀ·xa;  dxa = s·dy·B
    Buf<T> xs, dxa, xd, dxd;
    copy(xs, *xa);
    scale(xs.p, lscale(), N * r);
    make(dxa, N * r);
    mmb(dxa.p, lg ? lg + s.b : nullptr, dy, xs.p, lp + s.b, N, r, out);
    scale(dxa.p, lscale(), N * r);
    // xa = xd·Aᵀ: dA += dxaᵀ·xd; dxd = dxa·A → dx through the dropout mask
    const T* xin = lora_input(xd, x, l, t, in);
    make(dxd, N * in);
    mmb(dxd.p, lg ? lg + s.a : nullptr, dxa.p, xin, lp + s.a, N, in, r);
    if (dropping()) dropout(dxd.p, dxd.p, l, t, N * in);  // the same mask and 1/(1−p): dropout is linear
    add(dx, dxd.p, N * in);
  }

  void layer_forward(int l, LayerActs<T>& a) {
    const LayerShape& s = c.layers[size_t(l)];
    const auto& L = w.layers[size_t(l)];
    const int64_t D = c.dim, hd = c.head_dim, qd = s.n_head * hd, kvd = s.n_kv_head * hd, F = s.ffn;
    copy(a.xm, a.x);
    if (s.n_head > 0) {
      make(a.rstd1, N, false);
      make(a.xn1, N * D, false);
      norm_fwd(a.xn1.p, a.rstd1.p, a.x.p, L.attn_norm, D);
      make(a.q, N * qd, false);
      make(a.k, N * kvd, false);
      make(a.v, N * kvd, false);
      linear_forward(a.q.p, a.xn1.p, l, kQ, D, qd, &a.xa[kQ]);
      linear_forward(a.k.p, a.xn1.p, l, kK, D, kvd, &a.xa[kK]);
      linear_forward(a.v.p, a.xn1.p, l, kV, D, kvd, &a.xa[kV]);
      rope_(a.q.p, s.n_head, 1);
      rope_(a.k.p, s.n_kv_head, 1);
      make(a.att, be ? be->attention_saved_floats(batch.B, batch.Tn, s.n_head) : int64_t(batch.B) * s.n_head * batch.Tn * batch.Tn, false);
      make(a.ao, N * qd, false);
      attn_fwd(a.ao.p, a.att.p, a.q.p, a.k.p, a.v.p, s.n_head, s.n_kv_head, int(hd));
      Buf<T> o;
      make(o, N * D, false);
      linear_forward(o.p, a.ao.p, l, kO, qd, D, &a.xa[kO]);
      add(a.xm.p, o.p, N * D);
    }
    if (F > 0) {
      make(a.rstd2, N, false);
      make(a.xn2, N * D, false);
      norm_fwd(a.xn2.p, a.rstd2.p, a.xm.p, L.ffn_norm, D);
      make(a.g, N * F, false);
      make(a.u, N * F, false);
      make(a.h, N * F, false);
      linear_forward(a.g.p, a.xn2.p, l, kGate, D, F, &a.xa[kGate]);
      linear_forward(a.u.p, a.xn2.p, l, kUp, D, F, &a.xa[kUp]);
      swiglu_fwd(a.h.p, a.g.p, a.u.p, N * F);
    }
  }

  // next x = xm + down(h)
  void layer_output(int l, LayerActs<T>& a, Buf<T>& next) {
    const LayerShape& s = c.layers[size_t(l)];
    copy(next, a.xm);
    if (s.ffn > 0) {
      Buf<T> d;
      make(d, N * c.dim, false);
      linear_forward(d.p, a.h.p, l, kDown, s.ffn, c.dim, &a.xa[kDown]);
      add(next.p, d.p, N * c.dim);
    }
  }

  // dx: gradient w.r.t. the layer output on entry, w.r.t. the layer input on exit
  void layer_backward(int l, LayerActs<T>& a, Buf<T>& dx) {
    const LayerShape& s = c.layers[size_t(l)];
    const auto& L = w.layers[size_t(l)];
    auto* G = bg ? &bg->layers[size_t(l)] : nullptr;
    const int64_t D = c.dim, hd = c.head_dim, qd = s.n_head * hd, kvd = s.n_kv_head * hd, F = s.ffn;
    // dx currently = ∂L/∂(xm + mlp) = ∂L/∂xm (residual) + the MLP path below
    if (F > 0) {
      Buf<T> dh, dg, du, dxn2;
      make(dh, N * F), make(dg, N * F), make(du, N * F), make(dxn2, N * D);
      linear_backward(dh.p, dx.p, a.h.p, l, kDown, F, D, &a.xa[kDown]);
      swiglu_bwd(dg.p, du.p, dh.p, a.g.p, a.u.p, N * F);
      linear_backward(dxn2.p, dg.p, a.xn2.p, l, kGate, D, F, &a.xa[kGate]);
      linear_backward(dxn2.p, du.p, a.xn2.p, l, kUp, D, F, &a.xa[kUp]);
      norm_bwd(dx.p, G ? G->ffn_norm : nullptr, dxn2.p, a.xm.p, L.ffn_norm, a.rstd2.p, D);
    }
    if (s.n_head > 0) {
      Buf<T> dao, dq, dk, dv, dxn1;
      make(dao, N * qd), make(dq, N * qd), make(dk, N * kvd), make(dv, N * kvd), make(dxn1, N * D);
      linear_backward(dao.p, dx.p, a.ao.p, l, kO, qd, D, &a.xa[kO]);
      attn_bwd(dq.p, dk.p, dv.p, dao.p, a.ao.p, a.att.p, a.q.p, a.k.p, a.v.p, s.n_head, s.n_kv_head, int(hd));
      rope_(dq.p, s.n_head, -1);
      rope_(dk.p, s.n_kv_head, -1);
      linear_backward(dxn1.p, dq.p, a.xn1.p, l, kQ, D, qd, &a.xa[kQ]);
      linear_backward(dxn1.p, dk.p, a.xn1.p, l, kK, D, kvd, &a.xa[kK]);
      linear_backward(dxn1.p, dv.p, a.xn1.p, l, kV, D, kvd, &a.xa[kV]);
      norm_bwd(dx.p, G ? G->attn_norm : nullptr, dxn1.p, a.x.p, L.attn_norm, a.rstd1.p, D);
    }
  }

  void clear(LayerActs<T>& a, bool keep_x) {
    Buf<T> x = std::move(a.x);
    a = LayerActs<T>();
    if (keep_x) a.x = std::move(x);
  }

  // the batch's ids, targets, loss weights and positions where the backend computes
  void stage_batch() {
    pos_h.resize(size_t(N));
    for (int64_t i = 0; i < N; i++) pos_h[size_t(i)] = int(i % batch.Tn);
    ids = batch.ids.data(), targets = batch.targets.data(), pos = pos_h.data(), lweight = batch.weight.data();
    if (!on_be() || B().host_memory()) return;
    auto up = [&](BackendBuffer& b, const void* src, size_t bytes) {
      b.reserve(B(), bytes);
      B().upload(b.i(), src, bytes);
      return b.i();
    };
    ids = up(ids_d, batch.ids.data(), sizeof(int) * size_t(N));
    targets = up(targets_d, batch.targets.data(), sizeof(int) * size_t(N));
    pos = up(pos_d, pos_h.data(), sizeof(int) * size_t(N));
    lweight = reinterpret_cast<const float*>(up(weight_d, batch.weight.data(), sizeof(float) * size_t(N)));
  }

  // logits of rows [r0, r0+n) from xn_c[n, D], their cross-entropy (normalised over these rows' weights),
  // and with dxn_c: dlogits scaled by the step's loss scale × share, then dxn_c and the head's gradient
  double head_chunk(const T* xn_c, T* dxn_c, int64_t r0, int64_t n, double share) {
    const int64_t D = c.dim, V = c.vocab_size;
    Buf<T> logits, dlogits;
    make(logits, n * V, false);
    mm(logits.p, xn_c, W(w.lm_head), n, D, V);
    if (dxn_c) make(dlogits, n * V, false);
    T* dl = dxn_c ? dlogits.p : nullptr;
    const double scale = opt.loss_scale * share;
    double loss;
    bool scaled = false;
    if constexpr (std::is_same_v<T, float>) {
      if (be) {
        loss = B().crossentropy_forward_backward(dl, logits.p, targets + r0, lweight + r0, n, V, scale);
        scaled = true;
      } else {
        loss = ops::crossentropy_forward_backward(dl, logits.p, targets + r0, lweight + r0, n, V);
      }
    } else {
      loss = ops::crossentropy_forward_backward(dl, logits.p, targets + r0, lweight + r0, n, V);
    }
    if (!dxn_c) return loss;
    if (!scaled && scale != 1.0) this->scale(dl, T(scale), n * V);
    drop(logits);
    T* dhead = bg ? (c.tied ? bg->tok_emb : bg->lm_head) : nullptr;
    mmb(dxn_c, dhead, dl, xn_c, W(w.lm_head), n, D, V);
    return loss;
  }

  double run(const LayerGradHook<T>& hook) {
    const int64_t D = c.dim, V = c.vocab_size;
    const bool backward = lg || bg;
    stage_batch();
    std::vector<LayerActs<T>> acts(size_t(c.n_layers));
    Buf<T> x;
    make(x, N * D, false);
    if constexpr (std::is_same_v<T, float>) {
      if (be) B().embed_rows(x.p, W(w.tok_emb), ids, N, D);
      else ops::embedding_forward(x.p, w.tok_emb, ids, N, D);
    } else {
      ops::embedding_forward(x.p, w.tok_emb, ids, N, D);
    }
    for (int l = 0; l < c.n_layers; l++) {
      opt.cancel.check();
      LayerActs<T>& a = acts[size_t(l)];
      a.x = std::move(x);
      layer_forward(l, a);
      if constexpr (std::is_same_v<T, float>) {
        if (opt.on_layer_forward) {
          const LayerShape& ls = c.layers[size_t(l)];
          opt.on_layer_forward(l, ls.n_head ? a.xn1.p : nullptr, ls.n_head ? a.ao.p : nullptr, ls.ffn ? a.xn2.p : nullptr, ls.ffn ? a.h.p : nullptr, N);
        }
      }
      x = Buf<T>();
      layer_output(l, a, x);
      if (!backward) clear(a, false);
      else if (opt.checkpoint) clear(a, true);  // keep only the layer input
    }
    // head: final norm, then the logits and cross-entropy, whole or in chunks of rows
    Buf<T> rstd, xn, dxn, dx;
    make(rstd, N, false);
    make(xn, N * D, false);
    norm_fwd(xn.p, rstd.p, x.p, w.out_norm, D);
    if (backward) make(dxn, N * D);
    const int64_t chunk = N * V > opt.head_chunk_floats ? std::max<int64_t>(1, opt.head_chunk_floats / V) : N;
    double total_w = 0;
    for (int64_t i = 0; i < N; i++) total_w += batch.weight[size_t(i)];
    double loss = 0;
    for (int64_t r0 = 0; r0 < N; r0 += chunk) {
      const int64_t n = std::min(chunk, N - r0);
      // this chunk's share of the loss weights: its rows' loss is normalised by their own weight sum below
      double cw = 0;
      for (int64_t i = r0; i < r0 + n; i++) cw += batch.weight[size_t(i)];
      if (chunk < N && cw == 0) continue;  // no weighted token here: no loss, no gradient
      const double share = chunk < N ? cw / total_w : 1.0;
      loss += share * head_chunk(xn.p + r0 * D, backward ? dxn.p + r0 * D : nullptr, r0, n, share);
    }
    if (!backward) return loss;
    make(dx, N * D);
    norm_bwd(dx.p, bg ? bg->out_norm : nullptr, dxn.p, x.p, w.out_norm, rstd.p, D);
    for (int l = c.n_layers - 1; l >= 0; l--) {
      opt.cancel.check();
      LayerActs<T>& a = acts[size_t(l)];
      if (opt.checkpoint) {  // recompute the layer from its saved input
        layer_forward(l, a);
        Buf<T> unused;
        layer_output(l, a, unused);
      }
      layer_backward(l, a, dx);
      clear(a, false);
      if (bg && hook) hook(l, *bg);
    }
    if (bg && bg->tok_emb) {
      if constexpr (std::is_same_v<T, float>) {
        if (be) B().embedding_backward(bg->tok_emb, dx.p, ids, N, D);
        else ops::embedding_backward(bg->tok_emb, dx.p, ids, N, D);
      } else {
        ops::embedding_backward(bg->tok_emb, dx.p, ids, N, D);
      }
    }
    if (bg && hook) hook(-1, *bg);
    return loss;
  }
};

}  // namespace

template <typename T>
double train_forward_backward(const Config& c, const WeightsT<T>& w, const RopeTable& rope, const LoraLayout* lay, const T* lora_params,
                              T* lora_grads, GradsT<T>* base_grads, const LayerGradHook<T>& hook, const TrainBatch& batch,
                              const TrainOptions& opt, Backend* be) {
  const int64_t N = int64_t(batch.B) * batch.Tn;
  if (batch.B <= 0 || batch.Tn <= 0 || int64_t(batch.ids.size()) != N || int64_t(batch.targets.size()) != N || int64_t(batch.weight.size()) != N)
    fail(ErrorCode::ARG, "training batch: ids, targets and weights must each hold B×T entries");
  if (batch.Tn > c.context_length) fail(ErrorCode::ARG, "training sequences of " + std::to_string(batch.Tn) + " tokens exceed the context of " + std::to_string(c.context_length));
  for (int64_t i = 0; i < N; i++) {
    if (batch.ids[size_t(i)] < 0 || batch.ids[size_t(i)] >= c.vocab_size || batch.targets[size_t(i)] < 0 || batch.targets[size_t(i)] >= c.vocab_size)
      fail(ErrorCode::ARG, "training batch: token id outside the vocabulary");
    if (!(batch.weight[size_t(i)] >= 0)) fail(ErrorCode::ARG, "training batch: loss weights must be ≥ 0");
  }
  Graph<T> g{c, w, rope, lay, lora_params, lora_grads, base_grads, batch, opt, N, nullptr, {}, {}, {}, {}, {}};
  if constexpr (std::is_same_v<T, float>) g.be = be;
  return g.run(hook);
}

template double train_forward_backward<float>(const Config&, const WeightsT<float>&, const RopeTable&, const LoraLayout*, const float*, float*,
                                              GradsT<float>*, const LayerGradHook<float>&, const TrainBatch&, const TrainOptions&, Backend*);
template double train_forward_backward<double>(const Config&, const WeightsT<double>&, const RopeTable&, const LoraLayout*, const double*,
                                               double*, GradsT<double>*, const LayerGradHook<double>&, const TrainBatch&, const TrainOptions&, Backend*);

WeightsT<float> weights_view(const Model& m) {
  WeightsT<float> w;
  w.tok_emb = m.tok_emb;
  w.out_norm = m.out_norm;
  w.lm_head = m.lm_head;
  for (auto& L : m.layers) w.layers.push_back({L.attn_norm, L.wq, L.wk, L.wv, L.wo, L.ffn_norm, L.w_gate, L.w_up, L.w_down});
  return w;
}

WeightsT<double> weights_copy_f64(const Model& m, std::vector<double>& st) {
  st.assign(m.arena.begin(), m.arena.end());
  auto map = [&](const float* p) -> const double* { return p ? st.data() + (p - m.arena.data()) : nullptr; };
  WeightsT<double> w;
  w.tok_emb = map(m.tok_emb);
  w.out_norm = map(m.out_norm);
  w.lm_head = map(m.lm_head);
  for (auto& L : m.layers)
    w.layers.push_back({map(L.attn_norm), map(L.wq), map(L.wk), map(L.wv), map(L.wo), map(L.ffn_norm), map(L.w_gate), map(L.w_up), map(L.w_down)});
  return w;
}

}  // namespace tailor
