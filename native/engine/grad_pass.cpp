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
  // gradients where the backend computes, one scratch set shared by every layer
  const int64_t n_emb = int64_t(c.vocab_size) * c.dim, n_head = c.tied ? 0 : n_emb;
  BackendBuffer dev[9], d_emb, d_norm, d_head;
  auto make = [&](BackendBuffer& d, int64_t n) -> float* {
    if (n == 0) return nullptr;
    d.reserve(be, sizeof(float) * size_t(n));
    be.memset0(d.f(), sizeof(float) * size_t(n));
    return d.f();
  };
  GradsT<float> g;
  float* sp[9];
  for (int k = 0; k < 9; k++) sp[k] = make(dev[k], mx[k]);
  g.tok_emb = make(d_emb, n_emb);
  g.out_norm = make(d_norm, c.dim);
  g.lm_head = make(d_head, n_head);
  g.layers.assign(size_t(c.n_layers), {sp[0], sp[1], sp[2], sp[3], sp[4], sp[5], sp[6], sp[7], sp[8]});
  WeightsT<float> w = weights_view(m);
  RopeTable rope = make_rope_table(c);
  TrainOptions opt;
  opt.training = false;  // no dropout; there is no LoRA here anyway
  opt.cancel = cancel;
  LayerGradHook<float> hook = [&](int layer, const GradsT<float>&) {
    reduce(layer, g);
    if (layer >= 0)  // ready for the next layer down
      for (int k = 0; k < 9; k++)
        if (sp[k]) be.memset0(sp[k], sizeof(float) * size_t(mx[k]));
  };
  return train_forward_backward<float>(c, w, rope, nullptr, nullptr, nullptr, &g, hook, batch, opt, &be);
}

std::vector<double> term_sums(Backend& be, const float* w, const float* g, int64_t rows, int64_t cols, WgTerm term, bool by_column) {
  std::vector<double> out(size_t(by_column ? std::max<int64_t>(cols, 0) : std::max<int64_t>(rows, 0)), 0.0);
  if (out.empty() || rows <= 0 || cols <= 0 || !w || !g) return out;
  BackendBuffer sums;
  sums.reserve(be, sizeof(double) * out.size());
  be.wg_term_sums(sums.d(), w, g, rows, cols, term, by_column);
  be.download(out.data(), sums.d(), sizeof(double) * out.size());
  return out;
}

std::vector<double> wg_sums(Backend& be, const float* w_host, const float* g, int64_t rows, int64_t cols, WgTerm term, bool by_column) {
  return term_sums(be, w_host ? be.weight(w_host) : nullptr, g, rows, cols, term, by_column);
}

// Σ|w·g|, Σw·g and Σg² of one tensor W[rows, cols], reduced where g lives
static void accumulate(Backend& be, TensorTaylor& t, const float* w, const float* g, int64_t rows, int64_t cols) {
  if (!g || rows * cols == 0) return;
  for (double v : wg_sums(be, w, g, rows, cols, WgTerm::AbsWG, false)) t.sum_abs_wg += v;
  for (double v : wg_sums(be, w, g, rows, cols, WgTerm::WG, false)) t.sum_wg += v;
  t.grad_sq += be.sum_squares(g, rows * cols);
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
      accumulate(be, st.head[0], m.tok_emb, g.tok_emb, c.vocab_size, c.dim);
      accumulate(be, st.head[1], m.out_norm, g.out_norm, 1, c.dim);
      if (!c.tied) accumulate(be, st.head[2], m.lm_head, g.lm_head, c.vocab_size, c.dim);
      return;
    }
    const auto& G = g.layers[size_t(l)];
    const float* gp[9] = {G.attn_norm, G.wq, G.wk, G.wv, G.wo, G.ffn_norm, G.w_gate, G.w_up, G.w_down};
    for (int k = 0; k < 9; k++) {
      auto shape = m.expected_shape(kinds[k], l);  // [out, in], or [dim] for a norm
      const int64_t rows = shape.size() == 2 ? shape[0] : 1, cols = shape.back();
      accumulate(be, st.layers[size_t(l)][size_t(k)], mm.tensor_ptr(kinds[k], l), gp[k], rows, cols);
    }
  });
  return st;
}

}  // namespace tailor
