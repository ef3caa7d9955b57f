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
  std::vector<float> scratch[9];
  for (int k = 0; k < 9; k++) scratch[k].assign(size_t(mx[k]), 0.f);
  std::vector<float> g_emb(size_t(c.vocab_size) * c.dim, 0.f), g_norm(size_t(c.dim), 0.f), g_head(c.tied ? 0 : size_t(c.vocab_size) * c.dim, 0.f);
  GradsT<float> g;
  g.tok_emb = g_emb.data();
  g.out_norm = g_norm.data();
  g.lm_head = c.tied ? nullptr : g_head.data();
  g.layers.assign(size_t(c.n_layers), {scratch[0].data(), scratch[1].data(), scratch[2].data(), scratch[3].data(), scratch[4].data(),
                                       scratch[5].data(), scratch[6].data(), scratch[7].data(), scratch[8].data()});
  WeightsT<float> w = weights_view(m);
  RopeTable rope = make_rope_table(c);
  TrainOptions opt;
  opt.training = false;  // no dropout; there is no LoRA here anyway
  opt.cancel = cancel;
  LayerGradHook<float> hook = [&](int layer, const GradsT<float>& gr) {
    reduce(layer, gr);
    if (layer >= 0)
      for (auto& s : scratch) std::fill(s.begin(), s.end(), 0.f);  // ready for the next layer down
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
