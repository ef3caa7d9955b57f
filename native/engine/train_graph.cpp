// train_graph.cpp — the model-level training forward and backward (see train_graph.h). Per layer:
//   x ─ rmsnorm ─ q/k/v (+LoRA) ─ RoPE ─ causal GQA attention ─ o (+LoRA) ─ (+x) = xm
//   xm ─ rmsnorm ─ gate/up (+LoRA) ─ SwiGLU ─ down (+LoRA) ─ (+xm) = next x
// and the head: x ─ rmsnorm ─ lm_head ─ cross-entropy. Backward walks the same path in reverse.
#include "train_graph.h"

#include <type_traits>

#include "errors.h"

namespace tailor {

namespace {

template <typename T>
using Vec = std::vector<T>;

// Saved activations of one layer; with checkpointing only x is kept between forward and backward.
template <typename T>
struct LayerActs {
  Vec<T> x, rstd1, xn1, q, k, v, att, ao, xm, rstd2, xn2, g, u, h;
  Vec<T> xa[kNumTargets];  // LoRA: dropout(input)·Aᵀ, [N, r]
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
  const WeightsT<T>& w;
  const RopeTable& rope;
  const LoraLayout* lay;
  const T* lp;   // LoRA params
  T* lg;         // LoRA grads
  GradsT<T>* bg; // base grads
  const TrainBatch& batch;
  const TrainOptions& opt;
  int64_t N;
  std::vector<int> pos;
  Backend* be = nullptr;

  void mm(T* y, const T* x, const T* wt, int64_t n, int64_t in, int64_t out, bool acc = false) {
    if constexpr (std::is_same_v<T, float>) {
      if (be) return be->matmul_forward(y, x, wt, n, in, out, acc);
    }
    ops::matmul_forward(y, x, wt, n, in, out, acc);
  }
  void mmb(T* dx, T* dw, const T* dy, const T* x, const T* wt, int64_t n, int64_t in, int64_t out) {
    if constexpr (std::is_same_v<T, float>) {
      if (be) return be->matmul_backward(dx, dw, dy, x, wt, n, in, out);
    }
    ops::matmul_backward(dx, dw, dy, x, wt, n, in, out);
  }
  void attn_fwd(T* o, T* att, const T* q, const T* k, const T* v, int nh, int nkv, int hd) {
    int64_t tasks = int64_t(batch.B) * nkv;
    if (be) return be->parallel_for(tasks, [&](int64_t a, int64_t b) { ops::attention_forward(o, att, q, k, v, batch.B, batch.Tn, nh, nkv, hd, a, b); });
    ops::attention_forward(o, att, q, k, v, batch.B, batch.Tn, nh, nkv, hd);
  }
  void attn_bwd(T* dq, T* dk, T* dv, const T* dout, const T* att, const T* q, const T* k, const T* v, int nh, int nkv, int hd) {
    int64_t tasks = int64_t(batch.B) * nkv;
    if (be)
      return be->parallel_for(tasks, [&](int64_t a, int64_t b) { ops::attention_backward(dq, dk, dv, dout, att, q, k, v, batch.B, batch.Tn, nh, nkv, hd, a, b); });
    ops::attention_backward(dq, dk, dv, dout, att, q, k, v, batch.B, batch.Tn, nh, nkv, hd);
  }

  bool adapted(int l, int t) const { return lay && lp && lay->at(l, t).a >= 0; }
  T scale() const { return T(lay->cfg.scale()); }
  float keep() const { return 1.f - lay->cfg.dropout; }
  bool dropping() const { return opt.training && lay && lay->cfg.dropout > 0; }

  // dropout(x) for target t of layer l into xd[N, in]
  void dropped(Vec<T>& xd, const T* x, int l, int t, int64_t in) const {
    xd.assign(x, x + N * in);
    if (!dropping()) return;
    const double p = lay->cfg.dropout;
    const T inv = T(1.0 / (1.0 - p));
    for (int64_t i = 0; i < N * in; i++)
      xd[size_t(i)] = lora_dropout_uniform(opt.dropout_seed, opt.step, l, t, uint64_t(i)) < p ? T(0) : xd[size_t(i)] * inv;
  }

  // y[N, out] = x·Wᵀ (+ s·dropout(x)·Aᵀ·Bᵀ)
  void linear_forward(T* y, const T* x, int l, int t, int64_t in, int64_t out, Vec<T>* xa) {
    mm(y, x, proj(w.layers[size_t(l)], t), N, in, out);
    if (!adapted(l, t)) return;
    const LoraSlot& s = lay->at(l, t);
    const int r = lay->cfg.rank;
    Vec<T> xd;
    dropped(xd, x, l, t, in);
    xa->assign(size_t(N * r), T(0));
    mm(xa->data(), xd.data(), lp + s.a, N, in, r);
    Vec<T> xs(xa->begin(), xa->end());
    for (auto& v : xs) v *= scale();
    mm(y, xs.data(), lp + s.b, N, r, out, true);
  }

  // dx += ∂/∂x; LoRA and base gradients accumulated
  void linear_backward(T* dx, const T* dy, const T* x, int l, int t, int64_t in, int64_t out, const Vec<T>* xa) {
    T* dW = bg ? proj(bg->layers[size_t(l)], t) : nullptr;
    mmb(dx, dW, dy, x, proj(w.layers[size_t(l)], t), N, in, out);
    if (!adapted(l, t)) return;
    const LoraSlot& s = lay->at(l, t);
    const int r = lay->cfg.rank;
    // y += s·xa·Bᵀ:  dB += s·dyᵀ·xa;  dxa = s·dy·B
    Vec<T> xs(xa->begin(), xa->end());
    for (auto& v : xs) v *= scale();
    Vec<T> dxa(size_t(N * r), T(0));
    mmb(dxa.data(), lg ? lg + s.b : nullptr, dy, xs.data(), lp + s.b, N, r, out);
    for (auto& v : dxa) v *= scale();
    // xa = xd·Aᵀ: dA += dxaᵀ·xd; dxd = dxa·A → dx through the dropout mask
    Vec<T> xd;
    dropped(xd, x, l, t, in);
    Vec<T> dxd(size_t(N * in), T(0));
    mmb(dxd.data(), lg ? lg + s.a : nullptr, dxa.data(), xd.data(), lp + s.a, N, in, r);
    if (dropping()) {
      const double p = lay->cfg.dropout;
      const T inv = T(1.0 / (1.0 - p));
      for (int64_t i = 0; i < N * in; i++)
        if (lora_dropout_uniform(opt.dropout_seed, opt.step, l, t, uint64_t(i)) < p) dxd[size_t(i)] = 0;
        else dxd[size_t(i)] *= inv;
    }
    for (int64_t i = 0; i < N * in; i++) dx[i] += dxd[size_t(i)];
  }

  void layer_forward(int l, LayerActs<T>& a) {
    const LayerShape& s = c.layers[size_t(l)];
    const auto& L = w.layers[size_t(l)];
    const int64_t D = c.dim, hd = c.head_dim, qd = s.n_head * hd, kvd = s.n_kv_head * hd, F = s.ffn;
    a.xm = a.x;
    if (s.n_head > 0) {
      a.rstd1.resize(size_t(N));
      a.xn1.resize(size_t(N * D));
      ops::rmsnorm_forward(a.xn1.data(), a.rstd1.data(), a.x.data(), L.attn_norm, N, D, c.norm_eps);
      a.q.resize(size_t(N * qd));
      a.k.resize(size_t(N * kvd));
      a.v.resize(size_t(N * kvd));
      linear_forward(a.q.data(), a.xn1.data(), l, kQ, D, qd, &a.xa[kQ]);
      linear_forward(a.k.data(), a.xn1.data(), l, kK, D, kvd, &a.xa[kK]);
      linear_forward(a.v.data(), a.xn1.data(), l, kV, D, kvd, &a.xa[kV]);
      ops::rope_apply(a.q.data(), pos.data(), N, s.n_head, int(hd), rope.inv_freq.data(), rope.pos_scale, rope.interleaved, 1);
      ops::rope_apply(a.k.data(), pos.data(), N, s.n_kv_head, int(hd), rope.inv_freq.data(), rope.pos_scale, rope.interleaved, 1);
      a.att.resize(size_t(batch.B) * s.n_head * batch.Tn * batch.Tn);
      a.ao.resize(size_t(N * qd));
      attn_fwd(a.ao.data(), a.att.data(), a.q.data(), a.k.data(), a.v.data(), s.n_head, s.n_kv_head, int(hd));
      Vec<T> o(size_t(N * D));
      linear_forward(o.data(), a.ao.data(), l, kO, qd, D, &a.xa[kO]);
      for (int64_t i = 0; i < N * D; i++) a.xm[size_t(i)] += o[size_t(i)];
    }
    if (F > 0) {
      a.rstd2.resize(size_t(N));
      a.xn2.resize(size_t(N * D));
      ops::rmsnorm_forward(a.xn2.data(), a.rstd2.data(), a.xm.data(), L.ffn_norm, N, D, c.norm_eps);
      a.g.resize(size_t(N * F));
      a.u.resize(size_t(N * F));
      a.h.resize(size_t(N * F));
      linear_forward(a.g.data(), a.xn2.data(), l, kGate, D, F, &a.xa[kGate]);
      linear_forward(a.u.data(), a.xn2.data(), l, kUp, D, F, &a.xa[kUp]);
      ops::swiglu_forward(a.h.data(), a.g.data(), a.u.data(), N * F);
    }
  }

  // next x = xm + down(h)
  void layer_output(int l, const LayerActs<T>& a, Vec<T>& next) {
    const LayerShape& s = c.layers[size_t(l)];
    next = a.xm;
    if (s.ffn > 0) {
      Vec<T> d(size_t(N * c.dim));
      linear_forward(d.data(), a.h.data(), l, kDown, s.ffn, c.dim, const_cast<Vec<T>*>(&a.xa[kDown]));
      for (size_t i = 0; i < next.size(); i++) next[i] += d[i];
    }
  }

  // dx: gradient w.r.t. the layer output on entry, w.r.t. the layer input on exit
  void layer_backward(int l, LayerActs<T>& a, Vec<T>& dx) {
    const LayerShape& s = c.layers[size_t(l)];
    const auto& L = w.layers[size_t(l)];
    auto* G = bg ? &bg->layers[size_t(l)] : nullptr;
    const int64_t D = c.dim, hd = c.head_dim, qd = s.n_head * hd, kvd = s.n_kv_head * hd, F = s.ffn;
    // dx currently = ∂L/∂(xm + mlp) = ∂L/∂xm (residual) + the MLP path below
    if (F > 0) {
      Vec<T> dh(size_t(N * F), T(0)), dg(size_t(N * F), T(0)), du(size_t(N * F), T(0)), dxn2(size_t(N * D), T(0));
      linear_backward(dh.data(), dx.data(), a.h.data(), l, kDown, F, D, &a.xa[kDown]);
      ops::swiglu_backward(dg.data(), du.data(), dh.data(), a.g.data(), a.u.data(), N * F);
      linear_backward(dxn2.data(), dg.data(), a.xn2.data(), l, kGate, D, F, &a.xa[kGate]);
      linear_backward(dxn2.data(), du.data(), a.xn2.data(), l, kUp, D, F, &a.xa[kUp]);
      ops::rmsnorm_backward(dx.data(), G ? G->ffn_norm : nullptr, dxn2.data(), a.xm.data(), L.ffn_norm, a.rstd2.data(), N, D);
    }
    if (s.n_head > 0) {
      Vec<T> dao(size_t(N * qd), T(0)), dq(size_t(N * qd), T(0)), dk(size_t(N * kvd), T(0)), dv(size_t(N * kvd), T(0)), dxn1(size_t(N * D), T(0));
      linear_backward(dao.data(), dx.data(), a.ao.data(), l, kO, qd, D, &a.xa[kO]);
      attn_bwd(dq.data(), dk.data(), dv.data(), dao.data(), a.att.data(), a.q.data(), a.k.data(), a.v.data(), s.n_head, s.n_kv_head, int(hd));
      ops::rope_apply(dq.data(), pos.data(), N, s.n_head, int(hd), rope.inv_freq.data(), rope.pos_scale, rope.interleaved, -1);
      ops::rope_apply(dk.data(), pos.data(), N, s.n_kv_head, int(hd), rope.inv_freq.data(), rope.pos_scale, rope.interleaved, -1);
      linear_backward(dxn1.data(), dq.data(), a.xn1.data(), l, kQ, D, qd, &a.xa[kQ]);
      linear_backward(dxn1.data(), dk.data(), a.xn1.data(), l, kK, D, kvd, &a.xa[kK]);
      linear_backward(dxn1.data(), dv.data(), a.xn1.data(), l, kV, D, kvd, &a.xa[kV]);
      ops::rmsnorm_backward(dx.data(), G ? G->attn_norm : nullptr, dxn1.data(), a.x.data(), L.attn_norm, a.rstd1.data(), N, D);
    }
  }

  double run(const LayerGradHook<T>& hook) {
    const int64_t D = c.dim, V = c.vocab_size;
    const bool backward = lg || bg;
    std::vector<LayerActs<T>> acts(size_t(c.n_layers));
    Vec<T> x(size_t(N * D));
    ops::embedding_forward(x.data(), w.tok_emb, batch.ids.data(), N, D);
    for (int l = 0; l < c.n_layers; l++) {
      opt.cancel.check();
      LayerActs<T>& a = acts[size_t(l)];
      a.x = x;
      layer_forward(l, a);
      if constexpr (std::is_same_v<T, float>) {
        if (opt.on_layer_forward) {
          const LayerShape& ls = c.layers[size_t(l)];
          opt.on_layer_forward(l, ls.n_head ? a.xn1.data() : nullptr, ls.n_head ? a.ao.data() : nullptr, ls.ffn ? a.xn2.data() : nullptr,
                               ls.ffn ? a.h.data() : nullptr, N);
        }
      }
      layer_output(l, a, x);
      if (opt.checkpoint && backward) {  // keep only the layer input
        Vec<T> keep = std::move(a.x);
        a = LayerActs<T>();
        a.x = std::move(keep);
      }
    }
    // head
    Vec<T> rstd(static_cast<size_t>(N)), xn(static_cast<size_t>(N * D)), logits(static_cast<size_t>(N * V));
    ops::rmsnorm_forward(xn.data(), rstd.data(), x.data(), w.out_norm, N, D, c.norm_eps);
    mm(logits.data(), xn.data(), w.lm_head, N, D, V);
    Vec<T> dlogits(backward ? size_t(N * V) : 0);
    double loss;
    bool scaled = false;
    if constexpr (std::is_same_v<T, float>) {
      if (be) {
        loss = be->crossentropy_forward_backward(backward ? dlogits.data() : nullptr, logits.data(), batch.targets.data(), batch.weight.data(), N, V, opt.loss_scale);
        scaled = true;
      } else {
        loss = ops::crossentropy_forward_backward(backward ? dlogits.data() : (T*)nullptr, logits.data(), batch.targets.data(), batch.weight.data(), N, V);
      }
    } else {
      loss = ops::crossentropy_forward_backward(backward ? dlogits.data() : (T*)nullptr, logits.data(), batch.targets.data(), batch.weight.data(), N, V);
    }
    if (!backward) return loss;
    if (!scaled && opt.loss_scale != 1.0)
      for (auto& d : dlogits) d *= T(opt.loss_scale);
    logits.clear();
    logits.shrink_to_fit();
    Vec<T> dxn(size_t(N * D), T(0)), dx(size_t(N * D), T(0));
    T* dhead = bg ? (c.tied ? bg->tok_emb : bg->lm_head) : nullptr;
    mmb(dxn.data(), dhead, dlogits.data(), xn.data(), w.lm_head, N, D, V);
    dlogits.clear();
    dlogits.shrink_to_fit();
    ops::rmsnorm_backward(dx.data(), bg ? bg->out_norm : nullptr, dxn.data(), x.data(), w.out_norm, rstd.data(), N, D);
    for (int l = c.n_layers - 1; l >= 0; l--) {
      opt.cancel.check();
      LayerActs<T>& a = acts[size_t(l)];
      if (opt.checkpoint) {  // recompute the layer from its saved input
        layer_forward(l, a);
        Vec<T> unused;
        layer_output(l, a, unused);
      }
      layer_backward(l, a, dx);
      a = LayerActs<T>();
      if (bg && hook) hook(l, *bg);
    }
    if (bg && bg->tok_emb) ops::embedding_backward(bg->tok_emb, dx.data(), batch.ids.data(), N, D);
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
  Graph<T> g{c, w, rope, lay, lora_params, lora_grads, base_grads, batch, opt, N, {}, nullptr};
  if constexpr (std::is_same_v<T, float>) g.be = be;
  g.pos.resize(size_t(N));
  for (int64_t i = 0; i < N; i++) g.pos[size_t(i)] = int(i % batch.Tn);
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
