// prune.cpp — group importance for structural pruning (see prune.h). Gradient methods reduce each
// layer's gradients inside the backward hook (weight_gradient_pass), so no gradient copy of the model
// is ever held.
#include "prune.h"

#include <algorithm>
#include <cmath>

#include "errors.h"
#include "grad_pass.h"

namespace tailor {

ImportanceMethod parse_importance_method(const std::string& s) {
  if (s == "taylor") return ImportanceMethod::Taylor;
  if (s == "taylor-vector") return ImportanceMethod::TaylorVector;
  if (s == "taylor-second") return ImportanceMethod::TaylorSecond;
  if (s == "magnitude" || s == "magnitude-l1" || s == "l1") return ImportanceMethod::MagnitudeL1;
  if (s == "magnitude-l2" || s == "l2") return ImportanceMethod::MagnitudeL2;
  if (s == "wanda-sp" || s == "wanda") return ImportanceMethod::WandaSp;
  if (s == "random") return ImportanceMethod::Random;
  fail(ErrorCode::ARG, "unknown importance method \"" + s + "\" (taylor, taylor-vector, taylor-second, magnitude, magnitude-l2, wanda-sp, random)");
}

GroupAgg parse_group_agg(const std::string& s) {
  if (s == "sum") return GroupAgg::Sum;
  if (s == "mean") return GroupAgg::Mean;
  if (s == "max") return GroupAgg::Max;
  fail(ErrorCode::ARG, "unknown aggregation \"" + s + "\" (sum, mean, max)");
}

namespace {

// Elementwise term of one tensor's share of a group: e(w, g, f) summed over the share, then finished
// (abs for taylor-vector, sqrt for L2).
struct Term {
  ImportanceMethod m;
  double elem(float w, float g, double f2) const {
    switch (m) {
      case ImportanceMethod::Taylor: return std::fabs(double(w) * g);
      case ImportanceMethod::TaylorVector: return double(w) * g;
      case ImportanceMethod::TaylorSecond: return std::fabs(double(w) * g) + 0.5 * double(w) * w * f2;
      case ImportanceMethod::MagnitudeL1: return std::fabs(double(w));
      case ImportanceMethod::MagnitudeL2: return double(w) * w;
      default: return 0;
    }
  }
  double finish(double s) const {
    if (m == ImportanceMethod::TaylorVector) return std::fabs(s);
    if (m == ImportanceMethod::MagnitudeL2) return std::sqrt(s);
    return s;
  }
};

double aggregate(GroupAgg a, const std::vector<double>& shares) {
  double r = a == GroupAgg::Max ? -INFINITY : 0;
  for (double v : shares) r = a == GroupAgg::Max ? std::max(r, v) : r + v;
  return a == GroupAgg::Mean ? r / double(shares.size()) : r;
}

// Σ over rows [r0, r1) of W[rows, cols]
template <typename F>
double rows_sum(int64_t r0, int64_t r1, int64_t cols, F f) {
  double s = 0;
  for (int64_t r = r0; r < r1; r++)
    for (int64_t j = 0; j < cols; j++) s += f(r * cols + j, j);
  return s;
}
// Σ over columns [c0, c1) of W[rows, cols]
template <typename F>
double cols_sum(int64_t rows, int64_t cols, int64_t c0, int64_t c1, F f) {
  double s = 0;
  for (int64_t r = 0; r < rows; r++)
    for (int64_t j = c0; j < c1; j++) s += f(r * cols + j, r);
  return s;
}

struct LayerTensors {
  const float *wq, *wk, *wv, *wo, *wg, *wu, *wd;
};

// Per-layer group shares for one (weights, gradients, second-moment) triple; f2 may be null.
void layer_scores(const Config& c, int l, const LayerTensors& W, const LayerTensors* G, const LayerTensors* F2, const Term& term, GroupAgg agg,
                  const std::vector<double>* act_in1, const std::vector<double>* act_ao, const std::vector<double>* act_in2,
                  const std::vector<double>* act_h, ImportanceMethod method, std::vector<double>& attn, std::vector<double>& mlp) {
  const LayerShape& s = c.layers[size_t(l)];
  const int64_t D = c.dim, hd = c.head_dim;
  auto val = [&](const float* w, const float* g, const float* f2, int64_t i) {
    return term.elem(w[i], g ? g[i] : 0.f, f2 ? double(f2[i]) : 0.0);
  };
  attn.assign(size_t(s.n_kv_head), 0.0);
  if (s.n_kv_head > 0) {
    const int64_t grp = s.n_head / s.n_kv_head, qd = int64_t(s.n_head) * hd;
    for (int64_t g = 0; g < s.n_kv_head; g++) {
      std::vector<double> shares;
      const int64_t q0 = g * grp * hd, q1 = (g + 1) * grp * hd, k0 = g * hd, k1 = (g + 1) * hd;
      if (method == ImportanceMethod::WandaSp) {
        // |W_ij| · ‖X_j‖ with X the tensor's input features over the calibration tokens
        auto rw = [&](const float* w, int64_t r0, int64_t r1) {
          return rows_sum(r0, r1, D, [&](int64_t i, int64_t j) { return std::fabs(double(w[i])) * (*act_in1)[size_t(j)]; });
        };
        shares = {rw(W.wq, q0, q1), rw(W.wk, k0, k1), rw(W.wv, k0, k1),
                  cols_sum(D, qd, q0, q1, [&](int64_t i, int64_t r) { (void)r; return std::fabs(double(W.wo[i])) * (*act_ao)[size_t(i % qd)]; })};
      } else {
        auto rw = [&](const float* w, const float* gg, const float* ff, int64_t r0, int64_t r1) {
          return term.finish(rows_sum(r0, r1, D, [&](int64_t i, int64_t) { return val(w, gg, ff, i); }));
        };
        shares = {rw(W.wq, G ? G->wq : nullptr, F2 ? F2->wq : nullptr, q0, q1), rw(W.wk, G ? G->wk : nullptr, F2 ? F2->wk : nullptr, k0, k1),
                  rw(W.wv, G ? G->wv : nullptr, F2 ? F2->wv : nullptr, k0, k1),
                  term.finish(cols_sum(D, qd, q0, q1, [&](int64_t i, int64_t) { return val(W.wo, G ? G->wo : nullptr, F2 ? F2->wo : nullptr, i); }))};
      }
      attn[size_t(g)] = aggregate(agg, shares);
    }
  }
  mlp.assign(size_t(s.ffn), 0.0);
  for (int64_t ch = 0; ch < s.ffn; ch++) {
    std::vector<double> shares;
    if (method == ImportanceMethod::WandaSp) {
      auto rw = [&](const float* w) { return rows_sum(ch, ch + 1, D, [&](int64_t i, int64_t j) { return std::fabs(double(w[i])) * (*act_in2)[size_t(j)]; }); };
      shares = {rw(W.wg), rw(W.wu), cols_sum(D, s.ffn, ch, ch + 1, [&](int64_t i, int64_t) { return std::fabs(double(W.wd[i])) * (*act_h)[size_t(ch)]; })};
    } else {
      auto rw = [&](const float* w, const float* gg, const float* ff) {
        return term.finish(rows_sum(ch, ch + 1, D, [&](int64_t i, int64_t) { return val(w, gg, ff, i); }));
      };
      shares = {rw(W.wg, G ? G->wg : nullptr, F2 ? F2->wg : nullptr), rw(W.wu, G ? G->wu : nullptr, F2 ? F2->wu : nullptr),
                term.finish(cols_sum(D, s.ffn, ch, ch + 1, [&](int64_t i, int64_t) { return val(W.wd, G ? G->wd : nullptr, F2 ? F2->wd : nullptr, i); }))};
    }
    mlp[size_t(ch)] = aggregate(agg, shares);
  }
}

LayerTensors layer_weights(const Model& m, int l) {
  const LayerWeights& w = m.layers[size_t(l)];
  return {w.wq, w.wk, w.wv, w.wo, w.w_gate, w.w_up, w.w_down};
}

LayerTensors layer_grads(const GradsT<float>& g, int l) {
  const auto& G = g.layers[size_t(l)];
  return {G.wq, G.wk, G.wv, G.wo, G.w_gate, G.w_up, G.w_down};
}

}  // namespace

TrainBatch calibration_batch(const std::vector<Example>& ex) {
  TrainBatch b;
  b.B = int(ex.size());
  for (auto& e : ex) b.Tn = std::max(b.Tn, int(e.ids.size()) - 1);
  b.ids.assign(size_t(b.B) * b.Tn, 0);
  b.targets.assign(size_t(b.B) * b.Tn, 0);
  b.weight.assign(size_t(b.B) * b.Tn, 0.f);
  for (int s = 0; s < b.B; s++) {
    const Example& e = ex[size_t(s)];
    for (size_t t = 0; t + 1 < e.ids.size(); t++) {
      b.ids[size_t(s) * b.Tn + t] = e.ids[t];
      b.targets[size_t(s) * b.Tn + t] = e.ids[t + 1];
      b.weight[size_t(s) * b.Tn + t] = e.weight[t];
    }
    for (size_t t = e.ids.size() - 1; t < size_t(b.Tn); t++) b.ids[size_t(s) * b.Tn + t] = e.ids[0];
  }
  return b;
}

GroupScores group_importance(const Model& m, Backend& be, const std::vector<Example>& calib, ImportanceMethod method, GroupAgg agg,
                             uint64_t seed, const CancelToken& cancel) {
  const Config& c = m.cfg;
  GroupScores out;
  out.attn.resize(size_t(c.n_layers));
  out.mlp.resize(size_t(c.n_layers));
  const Term term{method};
  if (method == ImportanceMethod::Random) {
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    auto next = [&]() {
      x ^= x << 13; x ^= x >> 7; x ^= x << 17;
      return double(x >> 11) * (1.0 / 9007199254740992.0);
    };
    for (int l = 0; l < c.n_layers; l++) {
      for (int g = 0; g < c.layers[size_t(l)].n_kv_head; g++) out.attn[size_t(l)].push_back(next());
      for (int k = 0; k < c.layers[size_t(l)].ffn; k++) out.mlp[size_t(l)].push_back(next());
    }
    return out;
  }
  if (method == ImportanceMethod::MagnitudeL1 || method == ImportanceMethod::MagnitudeL2) {
    for (int l = 0; l < c.n_layers; l++)
      layer_scores(c, l, layer_weights(m, l), nullptr, nullptr, term, agg, nullptr, nullptr, nullptr, nullptr, method, out.attn[size_t(l)], out.mlp[size_t(l)]);
    return out;
  }
  if (calib.empty()) fail(ErrorCode::ARG, "this importance method needs calibration samples");
  TrainBatch batch = calibration_batch(calib);
  if (method == ImportanceMethod::WandaSp) {
    // input feature norms of every projection over the calibration tokens (forward only)
    std::vector<std::vector<double>> in1(size_t(c.n_layers)), ao(size_t(c.n_layers)), in2(size_t(c.n_layers)), hh(size_t(c.n_layers));
    TrainOptions opt;
    opt.training = false;
    opt.cancel = cancel;
    auto colnorm = [&](const float* x, int64_t N, int64_t cols, std::vector<double>& out_) {
      out_.assign(size_t(cols), 0.0);
      if (!x) return;
      for (int64_t n = 0; n < N; n++) {
        if (batch.weight[size_t(n)] == 0.f) continue;  // padding rows
        for (int64_t j = 0; j < cols; j++) out_[size_t(j)] += double(x[n * cols + j]) * x[n * cols + j];
      }
      for (auto& v : out_) v = std::sqrt(v);
    };
    opt.on_layer_forward = [&](int l, const float* xn1, const float* a, const float* xn2, const float* h, int64_t N) {
      const LayerShape& s = c.layers[size_t(l)];
      colnorm(xn1, N, c.dim, in1[size_t(l)]);
      colnorm(a, N, int64_t(s.n_head) * c.head_dim, ao[size_t(l)]);
      colnorm(xn2, N, c.dim, in2[size_t(l)]);
      colnorm(h, N, s.ffn, hh[size_t(l)]);
    };
    out.loss = train_forward_backward<float>(c, weights_view(m), make_rope_table(c), nullptr, nullptr, nullptr, nullptr, nullptr, batch, opt, &be);
    for (int l = 0; l < c.n_layers; l++)
      layer_scores(c, l, layer_weights(m, l), nullptr, nullptr, term, agg, &in1[size_t(l)], &ao[size_t(l)], &in2[size_t(l)], &hh[size_t(l)], method,
                   out.attn[size_t(l)], out.mlp[size_t(l)]);
    return out;
  }
  // Fisher diagonal for taylor-second: per-sample gradients, each layer's g² accumulated per element
  // would need a model-sized buffer, so the second-order term is reduced per group right away:
  // Σ_group w²·F = (1/S) Σ_s Σ_group w²·g_s²
  std::vector<std::vector<double>> second_attn(size_t(c.n_layers)), second_mlp(size_t(c.n_layers));
  if (method == ImportanceMethod::TaylorSecond) {
    for (size_t s = 0; s < calib.size(); s++) {
      TrainBatch one = calibration_batch({calib[s]});
      weight_gradient_pass(m, be, one, cancel, [&](int l, const GradsT<float>& g) {
        if (l < 0) return;
        // this sample's Σ (w·g_s)² over each group share
        LayerTensors W = layer_weights(m, l), G = layer_grads(g, l);
        std::vector<double> a, mm;
        const LayerShape& ls = c.layers[size_t(l)];
        const int64_t D = c.dim, hd = c.head_dim;
        auto e2 = [&](const float* w, const float* gg, int64_t i) { double v = double(w[i]) * gg[i]; return v * v; };
        a.assign(size_t(ls.n_kv_head), 0.0);
        if (ls.n_kv_head > 0) {
          const int64_t grp = ls.n_head / ls.n_kv_head, qd = int64_t(ls.n_head) * hd;
          for (int64_t gi = 0; gi < ls.n_kv_head; gi++) {
            const int64_t q0 = gi * grp * hd, q1 = (gi + 1) * grp * hd, k0 = gi * hd, k1 = (gi + 1) * hd;
            std::vector<double> shares = {rows_sum(q0, q1, D, [&](int64_t i, int64_t) { return e2(W.wq, G.wq, i); }),
                                          rows_sum(k0, k1, D, [&](int64_t i, int64_t) { return e2(W.wk, G.wk, i); }),
                                          rows_sum(k0, k1, D, [&](int64_t i, int64_t) { return e2(W.wv, G.wv, i); }),
                                          cols_sum(D, qd, q0, q1, [&](int64_t i, int64_t) { return e2(W.wo, G.wo, i); })};
            a[size_t(gi)] = aggregate(agg, shares);
          }
        }
        mm.assign(size_t(ls.ffn), 0.0);
        for (int64_t ch = 0; ch < ls.ffn; ch++) {
          std::vector<double> shares = {rows_sum(ch, ch + 1, D, [&](int64_t i, int64_t) { return e2(W.wg, G.wg, i); }),
                                        rows_sum(ch, ch + 1, D, [&](int64_t i, int64_t) { return e2(W.wu, G.wu, i); }),
                                        cols_sum(D, ls.ffn, ch, ch + 1, [&](int64_t i, int64_t) { return e2(W.wd, G.wd, i); })};
          mm[size_t(ch)] = aggregate(agg, shares);
        }
        if (second_attn[size_t(l)].empty()) {
          second_attn[size_t(l)].assign(a.size(), 0.0);
          second_mlp[size_t(l)].assign(mm.size(), 0.0);
        }
        for (size_t i = 0; i < a.size(); i++) second_attn[size_t(l)][i] += 0.5 * a[i] / double(calib.size());
        for (size_t i = 0; i < mm.size(); i++) second_mlp[size_t(l)][i] += 0.5 * mm[i] / double(calib.size());
      });
    }
  }
  const Term first{method == ImportanceMethod::TaylorSecond ? ImportanceMethod::Taylor : method};
  out.loss = weight_gradient_pass(m, be, batch, cancel, [&](int l, const GradsT<float>& g) {
    if (l < 0) return;
    LayerTensors G = layer_grads(g, l);
    layer_scores(c, l, layer_weights(m, l), &G, nullptr, first, agg, nullptr, nullptr, nullptr, nullptr, first.m, out.attn[size_t(l)], out.mlp[size_t(l)]);
  });
  if (method == ImportanceMethod::TaylorSecond)
    for (int l = 0; l < c.n_layers; l++) {
      for (size_t i = 0; i < out.attn[size_t(l)].size(); i++) out.attn[size_t(l)][i] += second_attn[size_t(l)].empty() ? 0 : second_attn[size_t(l)][i];
      for (size_t i = 0; i < out.mlp[size_t(l)].size(); i++) out.mlp[size_t(l)][i] += second_mlp[size_t(l)].empty() ? 0 : second_mlp[size_t(l)][i];
    }
  return out;
}

}  // namespace tailor
