// prune.cpp — group importance for structural pruning (see prune.h). Gradient methods reduce each
// layer's gradients inside the backward hook (weight_gradient_pass), so no gradient copy of the model
// is ever held.
#include "prune.h"

#include <algorithm>
#include <cmath>

#include "errors.h"
#include "grad_pass.h"
#include "host_weights.h"

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

// How a tensor's share of a group is finished from its summed elementwise terms: abs for taylor-vector
// (Σ w·g may be negative), sqrt for L2, as is otherwise.
double finish(ImportanceMethod m, double s) {
  if (m == ImportanceMethod::TaylorVector) return std::fabs(s);
  if (m == ImportanceMethod::MagnitudeL2) return std::sqrt(s);
  return s;
}

double aggregate(GroupAgg a, const std::vector<double>& shares) {
  double r = a == GroupAgg::Max ? -INFINITY : 0;
  for (double v : shares) r = a == GroupAgg::Max ? std::max(r, v) : r + v;
  return a == GroupAgg::Mean ? r / double(shares.size()) : r;
}

double range_sum(const std::vector<double>& v, int64_t a, int64_t b) {
  double s = 0;
  for (int64_t i = a; i < b; i++) s += v[size_t(i)];
  return s;
}

// One layer's elementwise terms summed over each row of q, k, v, gate, up and each column of o, down:
// every group share is a range of these (a KV group: rows of q/k/v, columns of o; an MLP channel: its row
// of gate and up, its column of down).
struct LayerSums {
  std::vector<double> q, k, v, o, gate, up, down;
};

// the sums of term(w, g) from the gradients g (backend buffers), reduced where they live
LayerSums grad_sums(const Model& m, Backend& be, int l, const GradsT<float>& g, WgTerm term) {
  const Config& c = m.cfg;
  const LayerShape& s = c.layers[size_t(l)];
  const LayerWeights& w = m.layers[size_t(l)];
  const auto& G = g.layers[size_t(l)];
  const int64_t D = c.dim, qd = int64_t(s.n_head) * c.head_dim, kd = int64_t(s.n_kv_head) * c.head_dim;
  LayerSums r;
  r.q = wg_sums(be, w.wq, G.wq, qd, D, term, false);
  r.k = wg_sums(be, w.wk, G.wk, kd, D, term, false);
  r.v = wg_sums(be, w.wv, G.wv, kd, D, term, false);
  r.o = wg_sums(be, w.wo, G.wo, D, qd, term, true);
  r.gate = wg_sums(be, w.w_gate, G.w_gate, s.ffn, D, term, false);
  r.up = wg_sums(be, w.w_up, G.w_up, s.ffn, D, term, false);
  r.down = wg_sums(be, w.w_down, G.w_down, D, s.ffn, term, true);
  return r;
}

// the sums of |w| (L1) or w² (L2) from the host weights
LayerSums magnitude_sums(const Model& m, int l, bool l2) {
  const Config& c = m.cfg;
  const LayerShape& s = c.layers[size_t(l)];
  HostLayer held(m, l);  // decoded again when the host copy was released
  const LayerWeights& w = m.layers[size_t(l)];
  const int64_t D = c.dim, qd = int64_t(s.n_head) * c.head_dim, kd = int64_t(s.n_kv_head) * c.head_dim;
  auto e = [l2](float x) { return l2 ? double(x) * x : std::fabs(double(x)); };
  auto rows = [&](const float* p, int64_t R, int64_t C) {
    std::vector<double> out(size_t(std::max<int64_t>(R, 0)), 0.0);
    for (int64_t r = 0; r < R; r++)
      for (int64_t j = 0; j < C; j++) out[size_t(r)] += e(p[r * C + j]);
    return out;
  };
  auto cols = [&](const float* p, int64_t R, int64_t C) {
    std::vector<double> out(size_t(std::max<int64_t>(C, 0)), 0.0);
    for (int64_t r = 0; r < R; r++)
      for (int64_t j = 0; j < C; j++) out[size_t(j)] += e(p[r * C + j]);
    return out;
  };
  LayerSums r;
  r.q = rows(w.wq, qd, D), r.k = rows(w.wk, kd, D), r.v = rows(w.wv, kd, D), r.o = cols(w.wo, D, qd);
  r.gate = rows(w.w_gate, s.ffn, D), r.up = rows(w.w_up, s.ffn, D), r.down = cols(w.w_down, D, s.ffn);
  return r;
}

// Group scores of one layer from its sums: each tensor's share summed over the group's range, finished,
// then aggregated over the coupled tensors.
void scores_from_sums(const Config& c, int l, const LayerSums& S, ImportanceMethod method, GroupAgg agg, std::vector<double>& attn,
                      std::vector<double>& mlp) {
  const LayerShape& s = c.layers[size_t(l)];
  const int64_t hd = c.head_dim;
  attn.assign(size_t(s.n_kv_head), 0.0);
  if (s.n_kv_head > 0) {
    const int64_t grp = s.n_head / s.n_kv_head;
    for (int64_t g = 0; g < s.n_kv_head; g++) {
      const int64_t q0 = g * grp * hd, q1 = (g + 1) * grp * hd, k0 = g * hd, k1 = (g + 1) * hd;
      attn[size_t(g)] = aggregate(agg, {finish(method, range_sum(S.q, q0, q1)), finish(method, range_sum(S.k, k0, k1)),
                                        finish(method, range_sum(S.v, k0, k1)), finish(method, range_sum(S.o, q0, q1))});
    }
  }
  mlp.assign(size_t(s.ffn), 0.0);
  for (int64_t ch = 0; ch < s.ffn; ch++)
    mlp[size_t(ch)] = aggregate(agg, {finish(method, S.gate[size_t(ch)]), finish(method, S.up[size_t(ch)]), finish(method, S.down[size_t(ch)])});
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

// Wanda-SP's group scores of one layer: |W_ij| · ‖X_j‖ with X the tensor's input features over the
// calibration tokens (in1: attention input, ao: o_proj input, in2: MLP input, h: down_proj input)
void wanda_scores(const Model& m, int l, GroupAgg agg, const std::vector<double>& in1, const std::vector<double>& ao,
                  const std::vector<double>& in2, const std::vector<double>& h, std::vector<double>& attn, std::vector<double>& mlp) {
  const Config& c = m.cfg;
  const LayerShape& s = c.layers[size_t(l)];
  HostLayer held(m, l);  // decoded again when the host copy was released
  const LayerWeights& W = m.layers[size_t(l)];
  const int64_t D = c.dim, hd = c.head_dim;
  attn.assign(size_t(s.n_kv_head), 0.0);
  if (s.n_kv_head > 0) {
    const int64_t grp = s.n_head / s.n_kv_head, qd = int64_t(s.n_head) * hd;
    auto rw = [&](const float* w, int64_t r0, int64_t r1) {
      return rows_sum(r0, r1, D, [&](int64_t i, int64_t j) { return std::fabs(double(w[i])) * in1[size_t(j)]; });
    };
    for (int64_t g = 0; g < s.n_kv_head; g++) {
      const int64_t q0 = g * grp * hd, q1 = (g + 1) * grp * hd, k0 = g * hd, k1 = (g + 1) * hd;
      attn[size_t(g)] = aggregate(agg, {rw(W.wq, q0, q1), rw(W.wk, k0, k1), rw(W.wv, k0, k1),
                                        cols_sum(D, qd, q0, q1, [&](int64_t i, int64_t) { return std::fabs(double(W.wo[i])) * ao[size_t(i % qd)]; })});
    }
  }
  mlp.assign(size_t(s.ffn), 0.0);
  for (int64_t ch = 0; ch < s.ffn; ch++) {
    auto rw = [&](const float* w) { return rows_sum(ch, ch + 1, D, [&](int64_t i, int64_t j) { return std::fabs(double(w[i])) * in2[size_t(j)]; }); };
    mlp[size_t(ch)] = aggregate(agg, {rw(W.w_gate), rw(W.w_up),
                                      cols_sum(D, s.ffn, ch, ch + 1, [&](int64_t i, int64_t) { return std::fabs(double(W.w_down[i])) * h[size_t(ch)]; })});
  }
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
      scores_from_sums(c, l, magnitude_sums(m, l, method == ImportanceMethod::MagnitudeL2), method, agg, out.attn[size_t(l)], out.mlp[size_t(l)]);
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
    // the weighted rows (padding and zero-weight tokens left out) as runs [a, b) of consecutive rows
    std::vector<std::pair<int64_t, int64_t>> runs;
    for (int64_t n = 0, N = int64_t(batch.weight.size()); n < N;) {
      if (batch.weight[size_t(n)] == 0.f) { n++; continue; }
      int64_t e = n;
      while (e < N && batch.weight[size_t(e)] != 0.f) e++;
      runs.push_back({n, e});
      n = e;
    }
    // ‖X_j‖ over the weighted rows of x[N, cols] (a backend buffer): Σ x² per column where x lives (w = g = x
    // with the w·g term), only the sums crossing to the host
    auto colnorm = [&](const float* x, int64_t N, int64_t cols, std::vector<double>& out_) {
      (void)N;
      out_.assign(size_t(cols), 0.0);
      if (!x) return;
      for (auto [a, b] : runs) {
        std::vector<double> s = term_sums(be, x + a * cols, x + a * cols, b - a, cols, WgTerm::WG, true);
        for (int64_t j = 0; j < cols; j++) out_[size_t(j)] += s[size_t(j)];
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
      wanda_scores(m, l, agg, in1[size_t(l)], ao[size_t(l)], in2[size_t(l)], hh[size_t(l)], out.attn[size_t(l)], out.mlp[size_t(l)]);
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
        std::vector<double> a, mm;
        scores_from_sums(c, l, grad_sums(m, be, l, g, WgTerm::SqWG), ImportanceMethod::Taylor, agg, a, mm);
        if (second_attn[size_t(l)].empty()) {
          second_attn[size_t(l)].assign(a.size(), 0.0);
          second_mlp[size_t(l)].assign(mm.size(), 0.0);
        }
        for (size_t i = 0; i < a.size(); i++) second_attn[size_t(l)][i] += 0.5 * a[i] / double(calib.size());
        for (size_t i = 0; i < mm.size(); i++) second_mlp[size_t(l)][i] += 0.5 * mm[i] / double(calib.size());
      });
    }
  }
  // the first-order term: Σ|w·g| per share (taylor, taylor-second), or |Σ w·g| (taylor-vector)
  const WgTerm first = method == ImportanceMethod::TaylorVector ? WgTerm::WG : WgTerm::AbsWG;
  out.loss = weight_gradient_pass(m, be, batch, cancel, [&](int l, const GradsT<float>& g) {
    if (l < 0) return;
    scores_from_sums(c, l, grad_sums(m, be, l, g, first), method, agg, out.attn[size_t(l)], out.mlp[size_t(l)]);
  });
  if (method == ImportanceMethod::TaylorSecond)
    for (int l = 0; l < c.n_layers; l++) {
      for (size_t i = 0; i < out.attn[size_t(l)].size(); i++) out.attn[size_t(l)][i] += second_attn[size_t(l)].empty() ? 0 : second_attn[size_t(l)][i];
      for (size_t i = 0; i < out.mlp[size_t(l)].size(); i++) out.mlp[size_t(l)][i] += second_mlp[size_t(l)].empty() ? 0 : second_mlp[size_t(l)][i];
    }
  return out;
}

}  // namespace tailor
