// grad_pass.cpp — layer-by-layer weight gradients with one shared scratch (see grad_pass.h).
#include "grad_pass.h"

#include <algorithm>
#include <cmath>

#include "errors.h"

namespace tailor {

double weight_gradient_pass(const Model& m, Backend& be, const TrainBatch& batch, const CancelToken& cancel,
                            const std::function<void(int layer, const GradsT<float>& g)>& reduce) {
  const Config& c = m.cfg;
  // one scratch per tensor kind, sized for the largest layer
  int64_t mx[9] = {0};
  for (int l = 0; l < c.n_layers; l++) {
    const TensorKind kinds[9] = {TensorKind::AttnNorm, TensorKind::Wq, TensorKind::Wk, TensorKind::Wv, TensorKind::Wo,
                                 TensorKind::FfnNorm, TensorKind::WGate, TensorKind::WUp, TensorKind::WDown};
    for (int k = 0; k < 9; k++) {
      int64_t n = 1;
      for (auto d : m.expected_shape(kinds[k], l)) n *= d;
      mx[k] = std::max(mx[k], n);
    }
  }
  // gradients where the backend computes; on a device, each finished layer is copied to host buffers of
  // the same shape for `reduce` (one layer at a time, so the host never holds more either)
  const bool host = be.host_memory();
  const int64_t n_emb = int64_t(c.vocab_size) * c.dim, n_head = c.tied ? 0 : n_emb;
  BackendBuffer dev[9], d_emb, d_norm, d_head;
  std::vector<float> hbuf[9], h_emb, h_norm, h_head;
  auto make = [&](BackendBuffer& d, std::vector<float>& h, int64_t n) -> float* {
    if (n == 0) return nullptr;
    d.reserve(be, sizeof(float) * size_t(n));
    be.memset0(d.f(), sizeof(float) * size_t(n));
    if (!host) h.assign(size_t(n), 0.f);
    return d.f();
  };
  GradsT<float> g;
  float* sp[9];
  for (int k = 0; k < 9; k++) sp[k] = make(dev[k], hbuf[k], mx[k]);
  g.tok_emb = make(d_emb, h_emb, n_emb);
  g.out_norm = make(d_norm, h_norm, c.dim);
  g.lm_head = make(d_head, h_head, n_head);
  g.layers.assign(size_t(c.n_layers), {sp[0], sp[1], sp[2], sp[3], sp[4], sp[5], sp[6], sp[7], sp[8]});
  // the host view handed to reduce (the same pointers on the CPU)
  GradsT<float> hg = g;
  if (!host) {
    float* hp[9];
    for (int k = 0; k < 9; k++) hp[k] = hbuf[k].empty() ? nullptr : hbuf[k].data();
    hg.tok_emb = h_emb.empty() ? nullptr : h_emb.data();
    hg.out_norm = h_norm.data();
    hg.lm_head = h_head.empty() ? nullptr : h_head.data();
    hg.layers.assign(size_t(c.n_layers), {hp[0], hp[1], hp[2], hp[3], hp[4], hp[5], hp[6], hp[7], hp[8]});
  }
  WeightsT<float> w = weights_view(m);
  RopeTable rope = make_rope_table(c);
  TrainOptions opt;
  opt.training = false;  // no dropout; there is no LoRA here anyway
  opt.cancel = cancel;
  auto fetch = [&](float* h, const float* d, int64_t n) {
    if (!host && h && n > 0) be.download(h, d, sizeof(float) * size_t(n));
  };
  LayerGradHook<float> hook = [&](int layer, const GradsT<float>&) {
    if (layer >= 0) {
      for (int k = 0; k < 9; k++) fetch(hbuf[k].empty() ? nullptr : hbuf[k].data(), sp[k], mx[k]);
    } else {
      fetch(hg.tok_emb, g.tok_emb, n_emb);
      fetch(hg.out_norm, g.out_norm, c.dim);
      fetch(hg.lm_head, g.lm_head, n_head);
    }
    reduce(layer, hg);
    if (layer >= 0)  // ready for the next layer down
      for (int k = 0; k < 9; k++)
        if (sp[k]) be.memset0(sp[k], sizeof(float) * size_t(mx[k]));
  };
  return train_forward_backward<float>(c, w, rope, nullptr, nullptr, nullptr, &g, hook, batch, opt, &be);
}

static void accumulate(TensorTaylor& t, const float* w, const float* g, int64_t n) {
  double a = 0, s = 0, q = 0;
  for (int64_t i = 0; i < n; i++) {
    double wg = double(w[i]) * double(g[i]);
    a += std::fabs(wg);
    s += wg;
    q += double(g[i]) * double(g[i]);
  }
  t.sum_abs_wg += a;
  t.sum_wg += s;
  t.grad_sq += q;
}

TaylorStats taylor_tensor_stats(const Model& m, Backend& be, const TrainBatch& batch, const CancelToken& cancel) {
  const Config& c = m.cfg;
  TaylorStats st;
  st.layers.assign(size_t(c.n_layers), std::vector<TensorTaylor>(9));
  const TensorKind kinds[9] = {TensorKind::AttnNorm, TensorKind::Wq, TensorKind::Wk, TensorKind::Wv, TensorKind::Wo,
                               TensorKind::FfnNorm, TensorKind::WGate, TensorKind::WUp, TensorKind::WDown};
  Model& mm = const_cast<Model&>(m);  // tensor_ptr is non-const; nothing is written
  st.loss = weight_gradient_pass(m, be, batch, cancel, [&](int l, const GradsT<float>& g) {
    if (l < 0) {
      accumulate(st.head[0], m.tok_emb, g.tok_emb, int64_t(c.vocab_size) * c.dim);
      accumulate(st.head[1], m.out_norm, g.out_norm, c.dim);
      if (!c.tied) accumulate(st.head[2], m.lm_head, g.lm_head, int64_t(c.vocab_size) * c.dim);
      return;
    }
    const auto& G = g.layers[size_t(l)];
    const float* gp[9] = {G.attn_norm, G.wq, G.wk, G.wv, G.wo, G.ffn_norm, G.w_gate, G.w_up, G.w_down};
    for (int k = 0; k < 9; k++) {
      int64_t n = 1;
      for (auto d : m.expected_shape(kinds[k], l)) n *= d;
      accumulate(st.layers[size_t(l)][size_t(k)], mm.tensor_ptr(kinds[k], l), gp[k], n);
    }
  });
  return st;
}

}  // namespace tailor
