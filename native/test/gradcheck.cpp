// gradcheck.cpp — tailor_gradcheck: every training op's backward, and the whole model's loss gradient
// (LoRA parameters and base weights), against central finite differences in float64; then the float
// training path against the float64 one. Prints one line per check and exits non-zero on a failure.
//   tailor_gradcheck MODEL_PATH [--dropout P] [--checkpoint]
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "errors.h"
#include "forward.h"
#include "grad_pass.h"
#include "prune.h"
#include "loader.h"
#include "lora.h"
#include "train_graph.h"
#include "train_ops.h"

using namespace tailor;
using V = std::vector<double>;

static int failures = 0;
static std::mt19937_64 rng(1234);

static V randv(size_t n, double s = 1.0) {
  std::normal_distribution<double> nd(0, s);
  V v(n);
  for (auto& x : v) x = nd(rng);
  return v;
}

// Errors are normwise: max |analytic − numeric| over the samples of one check, divided by the largest
// |numeric| among them (elementwise relative error is meaningless where a gradient is ~0).
struct NormErr {
  double diff = 0, scale = 0;
  void add(double a, double n) { diff = std::max(diff, std::fabs(a - n)); scale = std::max(scale, std::fabs(n)); }
  double value() const { return diff / std::max(scale, 1e-300); }
};
static void report(const std::string& name, double worst, double tol) {
  bool ok = worst <= tol;
  if (!ok) failures++;
  std::printf("%-48s max rel err %.3e  %s\n", name.c_str(), worst, ok ? "ok" : "FAIL");
}


// checks d(Σ r·f(x))/dx_i for a random projection r, where f writes its output into out
static void check_op(const std::string& name, V& x, size_t out_n, const std::function<void(V& out)>& f,
                     const std::function<void(const V& dout, V& dx)>& b) {
  V r = randv(out_n), out(out_n), dx(x.size(), 0.0);
  f(out);
  b(r, dx);
  NormErr err;
  const double h = 1e-6;
  for (size_t i = 0; i < x.size(); i += std::max<size_t>(1, x.size() / 40)) {
    double keep = x[i];
    x[i] = keep + h;
    f(out);
    double lp = 0;
    for (size_t k = 0; k < out_n; k++) lp += r[k] * out[k];
    x[i] = keep - h;
    f(out);
    double lm = 0;
    for (size_t k = 0; k < out_n; k++) lm += r[k] * out[k];
    x[i] = keep;
    err.add(dx[i], (lp - lm) / (2 * h));
  }
  report("op " + name, err.value(), 1e-7);
}

static void op_checks() {
  const int N = 5, D = 12;
  {  // rmsnorm: x and w
    V x = randv(N * D), w = randv(D), rs(N);
    check_op("rmsnorm_backward dx", x, N * D, [&](V& o) { ops::rmsnorm_forward(o.data(), rs.data(), x.data(), w.data(), N, D, 1e-5); },
             [&](const V& g, V& dx) { V o(N * D); ops::rmsnorm_forward(o.data(), rs.data(), x.data(), w.data(), N, D, 1e-5);
                                      ops::rmsnorm_backward(dx.data(), (double*)nullptr, g.data(), x.data(), w.data(), rs.data(), N, D); });
    check_op("rmsnorm_backward dw", w, N * D, [&](V& o) { ops::rmsnorm_forward(o.data(), rs.data(), x.data(), w.data(), N, D, 1e-5); },
             [&](const V& g, V& dw) { V o(N * D), dx(N * D); ops::rmsnorm_forward(o.data(), rs.data(), x.data(), w.data(), N, D, 1e-5);
                                      ops::rmsnorm_backward(dx.data(), dw.data(), g.data(), x.data(), w.data(), rs.data(), N, D); });
  }
  {  // matmul
    const int in = 7, out = 9;
    V x = randv(N * in), w = randv(out * in);
    check_op("matmul_backward dx", x, N * out, [&](V& o) { ops::matmul_forward(o.data(), x.data(), w.data(), N, in, out); },
             [&](const V& g, V& dx) { ops::matmul_backward(dx.data(), (double*)nullptr, g.data(), x.data(), w.data(), N, in, out); });
    check_op("matmul_backward dW", w, N * out, [&](V& o) { ops::matmul_forward(o.data(), x.data(), w.data(), N, in, out); },
             [&](const V& g, V& dw) { ops::matmul_backward((double*)nullptr, dw.data(), g.data(), x.data(), w.data(), N, in, out); });
  }
  for (bool inter : {true, false}) {  // RoPE, both layouts, with scaling-like frequencies
    const int nh = 3, hd = 8;
    std::vector<int> pos = {0, 3, 7, 100, 511};
    double inv[4] = {1.0, 0.3, 0.05, 0.001};
    V x = randv(N * nh * hd);
    check_op(std::string("rope backward (") + (inter ? "interleaved" : "rotate-half") + ")", x, x.size(),
             [&](V& o) { o = x; ops::rope_apply(o.data(), pos.data(), N, nh, hd, inv, 0.5, inter, 1); },
             [&](const V& g, V& dx) { V t = g; ops::rope_apply(t.data(), pos.data(), N, nh, hd, inv, 0.5, inter, -1);
                                      for (size_t i = 0; i < dx.size(); i++) dx[i] += t[i]; });
  }
  {  // attention with GQA over 2 sequences
    const int B = 2, Tn = 5, nh = 4, nkv = 2, hd = 6;
    V q = randv(B * Tn * nh * hd), k = randv(B * Tn * nkv * hd), v = randv(B * Tn * nkv * hd), att(B * nh * Tn * Tn);
    auto fwd = [&](V& o) { ops::attention_forward(o.data(), att.data(), q.data(), k.data(), v.data(), B, Tn, nh, nkv, hd); };
    size_t on = size_t(B) * Tn * nh * hd;
    for (int which = 0; which < 3; which++) {
      V& x = which == 0 ? q : which == 1 ? k : v;
      check_op(std::string("attention_backward d") + "qkv"[which], x, on, fwd, [&](const V& g, V& dx) {
        V o(on), dq(q.size()), dk(k.size()), dv(v.size());
        fwd(o);
        ops::attention_backward(dq.data(), dk.data(), dv.data(), g.data(), att.data(), q.data(), k.data(), v.data(), B, Tn, nh, nkv, hd);
        V& d = which == 0 ? dq : which == 1 ? dk : dv;
        for (size_t i = 0; i < dx.size(); i++) dx[i] += d[i];
      });
    }
  }
  {  // swiglu
    V g = randv(40, 2.0), u = randv(40);
    check_op("swiglu_backward dgate", g, 40, [&](V& o) { ops::swiglu_forward(o.data(), g.data(), u.data(), 40); },
             [&](const V& d, V& dg) { V du(40); ops::swiglu_backward(dg.data(), du.data(), d.data(), g.data(), u.data(), 40); });
    check_op("swiglu_backward dup", u, 40, [&](V& o) { ops::swiglu_forward(o.data(), g.data(), u.data(), 40); },
             [&](const V& d, V& du) { V dg(40); ops::swiglu_backward(dg.data(), du.data(), d.data(), g.data(), u.data(), 40); });
  }
  {  // cross-entropy with weights (0 = masked)
    const int Vn = 11;
    V logits = randv(N * Vn, 2.0);
    std::vector<int> tg = {1, 5, 0, 10, 3};
    std::vector<float> wt = {1, 0, 2, 1, 0.5f};
    check_op("crossentropy backward", logits, 1, [&](V& o) { o[0] = ops::crossentropy_forward_backward((double*)nullptr, logits.data(), tg.data(), wt.data(), N, Vn); },
             [&](const V& g, V& dl) { V d(N * Vn); ops::crossentropy_forward_backward(d.data(), logits.data(), tg.data(), wt.data(), N, Vn);
                                      for (size_t i = 0; i < d.size(); i++) dl[i] += g[0] * d[i]; });
  }
}

// gradient buffers laid out like the float64 weight storage `st` (g has st's size)
static GradsT<double> grads_over(const Config& c, const WeightsT<double>& w, const std::vector<double>& st, std::vector<double>& g) {
  g.assign(st.size(), 0.0);
  auto map = [&](const double* p) { return p ? g.data() + (p - st.data()) : nullptr; };
  GradsT<double> out;
  out.tok_emb = map(w.tok_emb);
  out.out_norm = map(w.out_norm);
  out.lm_head = c.tied ? nullptr : map(w.lm_head);
  for (auto& L : w.layers)
    out.layers.push_back({map(L.attn_norm), map(L.wq), map(L.wk), map(L.wv), map(L.wo), map(L.ffn_norm), map(L.w_gate), map(L.w_up), map(L.w_down)});
  return out;
}

static TrainBatch make_batch(int vocab) {
  TrainBatch b;
  b.B = 2;
  b.Tn = 7;
  std::uniform_int_distribution<int> ud(3, vocab - 1);
  for (int s = 0; s < b.B; s++)
    for (int t = 0; t < b.Tn; t++) {
      b.ids.push_back(t == 0 ? 1 : ud(rng));
      b.targets.push_back(ud(rng));
      // sequence 1 is padded after 4 tokens; the first token of sequence 0 is a "prompt" token
      b.weight.push_back((s == 1 && t >= 4) || (s == 0 && t == 0) ? 0.f : 1.f);
    }
  return b;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: tailor_gradcheck MODEL [--dropout P] [--checkpoint]\n");
    return 2;
  }
  float dropout = 0;
  bool ckpt = false;
  for (int i = 2; i < argc; i++) {
    if (!std::strcmp(argv[i], "--dropout") && i + 1 < argc) dropout = std::stof(argv[++i]);
    else if (!std::strcmp(argv[i], "--checkpoint")) ckpt = true;
  }
  try {
    op_checks();
    auto m = load_model(argv[1]);
    const Config& c = m->cfg;
    RopeTable rope = make_rope_table(c);
    std::vector<double> st;
    WeightsT<double> w = weights_copy_f64(*m, st);
    LoraConfig lc;
    lc.rank = 4;
    lc.alpha = 8;
    lc.dropout = dropout;
    LoraLayout lay;
    lay.build(c, lc);
    V lp = randv(size_t(lay.size), 0.1);  // B non-zero so every LoRA parameter gets a gradient
    TrainBatch batch = make_batch(c.vocab_size);
    TrainOptions opt;
    opt.checkpoint = ckpt;
    opt.dropout_seed = 99;
    opt.step = 3;
    // base gradient buffers over the whole arena layout
    V gst;
    GradsT<double> bg = grads_over(c, w, st, gst);
    V lgr(lp.size(), 0.0);
    double loss = train_forward_backward<double>(c, w, rope, &lay, lp.data(), lgr.data(), &bg, nullptr, batch, opt);
    std::printf("loss %.6f (%s, dropout %.2f%s)\n", loss, argv[1], dropout, ckpt ? ", checkpointing" : "");
    auto L = [&]() { return train_forward_backward<double>(c, w, rope, &lay, lp.data(), nullptr, nullptr, nullptr, batch, opt); };
    const double h = 1e-5;
    NormErr lerr;
    for (size_t i = 0; i < lp.size(); i += std::max<size_t>(1, lp.size() / 60)) {
      double keep = lp[i];
      lp[i] = keep + h;
      double a = L();
      lp[i] = keep - h;
      double b = L();
      lp[i] = keep;
      lerr.add(lgr[i], (a - b) / (2 * h));
    }
    report("model: LoRA parameter gradients (" + std::to_string(lp.size() / std::max<size_t>(1, lp.size() / 60)) + " sampled)", lerr.value(), 1e-6);
    // base weights: entries of every tensor, each tensor judged normwise on its own
    double worst = 0;
    auto probe = [&](const double* p, int64_t n, const char* what, std::vector<int64_t> extra = {}) {
      if (!p || n == 0) return;
      double* q = const_cast<double*>(p);
      NormErr te;
      std::vector<int64_t> idx = extra;
      for (int k = 0; k < 6; k++) idx.push_back((int64_t(k) * 7919 + 13) % n);
      for (int64_t i : idx) {
        double keep = q[i];
        q[i] = keep + h;
        double a = L();
        q[i] = keep - h;
        double b = L();
        q[i] = keep;
        double fd = (a - b) / (2 * h);
        double an = gst[size_t(p - st.data()) + size_t(i)];
        te.add(an, fd);
      }
      worst = std::max(worst, te.value());
      if (te.value() > 1e-6) std::printf("  %s: %.3e\n", what, te.value());
    };
    // embedding rows of tokens in the batch (lookup + head gradient) and of one that is not (head only)
    probe(w.tok_emb, int64_t(c.vocab_size) * c.dim, "tok_emb",
          {int64_t(batch.ids[1]) * c.dim + 3, int64_t(batch.ids[2]) * c.dim, int64_t(batch.targets[4]) * c.dim + 1});
    probe(w.out_norm, c.dim, "out_norm");
    if (!c.tied) probe(w.lm_head, int64_t(c.vocab_size) * c.dim, "lm_head");
    for (int l = 0; l < c.n_layers; l++) {
      const auto& Lw = w.layers[size_t(l)];
      int64_t in, out;
      probe(Lw.attn_norm, c.dim, "attn_norm");
      probe(Lw.ffn_norm, c.dim, "ffn_norm");
      for (int t = 0; t < kNumTargets; t++) {
        lora_dims(c, l, t, in, out);
        const double* p = t == kQ ? Lw.wq : t == kK ? Lw.wk : t == kV ? Lw.wv : t == kO ? Lw.wo : t == kGate ? Lw.w_gate : t == kUp ? Lw.w_up : Lw.w_down;
        probe(p, in * out, lora_target_name(t));
      }
    }
    report("model: base weight gradients (every tensor)", worst, 1e-6);
    // the float path agrees with the float64 path
    WeightsT<float> wf = weights_view(*m);
    std::vector<float> lpf(lp.begin(), lp.end()), lgf(lp.size(), 0.f);
    double lossf = train_forward_backward<float>(c, wf, rope, &lay, lpf.data(), lgf.data(), nullptr, nullptr, batch, opt);
    double gmax = 0, dmax = 0;
    for (size_t i = 0; i < lgf.size(); i++) {
      gmax = std::max(gmax, std::fabs(lgr[i]));
      dmax = std::max(dmax, std::fabs(double(lgf[i]) - lgr[i]));
    }
    report("float path vs float64: loss", std::fabs(lossf - loss) / std::fabs(loss), 1e-5);
    report("float path vs float64: LoRA gradients (max abs / max |g|)", dmax / gmax, 1e-4);
    // the head in chunks of 3 rows (cross-entropy fused with the head) is the same function: float64
    {
      TrainOptions co = opt;
      co.head_chunk_floats = int64_t(c.vocab_size) * 3;
      V lgc(lp.size(), 0.0), gsc;
      GradsT<double> bgc = grads_over(c, w, st, gsc);
      double lossc = train_forward_backward<double>(c, w, rope, &lay, lp.data(), lgc.data(), &bgc, nullptr, batch, co);
      double dl = 0, gm = 0, dg = 0;
      for (size_t i = 0; i < lgc.size(); i++) dl = std::max(dl, std::fabs(lgc[i] - lgr[i])), gm = std::max(gm, std::fabs(lgr[i]));
      double bm = 0;
      for (size_t i = 0; i < gsc.size(); i++) dg = std::max(dg, std::fabs(gsc[i] - gst[i])), bm = std::max(bm, std::fabs(gst[i]));
      report("head in chunks of 3 rows vs whole: loss", std::fabs(lossc - loss) / std::fabs(loss), 1e-12);
      report("head in chunks of 3 rows vs whole: LoRA gradients", dl / gm, 1e-12);
      report("head in chunks of 3 rows vs whole: base gradients", dg / bm, 1e-12);
    }
    // the fast float path (backend matmuls through BLAS or the built-in kernel, threaded attention)
    for (bool blas : {true, false}) {
      BackendOptions bo;
      bo.threads = 2;
      bo.blas = blas;
      auto be = make_cpu_backend(bo);
      std::vector<float> lgb(lp.size(), 0.f);
      double lossb = train_forward_backward<float>(c, wf, rope, &lay, lpf.data(), lgb.data(), nullptr, nullptr, batch, opt, be.get());
      double db = 0;
      for (size_t i = 0; i < lgb.size(); i++) db = std::max(db, std::fabs(double(lgb[i]) - lgr[i]));
      report(std::string("backend path (") + be->name() + ") vs float64: loss", std::fabs(lossb - loss) / std::fabs(loss), 1e-5);
      report(std::string("backend path (") + be->name() + ") vs float64: LoRA gradients", db / gmax, 1e-4);
    }
    // the importance pass (one layer of gradients at a time, float, backend) against the float64
    // full gradients: Σ|w·g| per tensor
    {
      std::vector<double> g0;
      GradsT<double> full = grads_over(c, w, st, g0);
      TrainOptions eo;
      eo.training = false;
      train_forward_backward<double>(c, w, rope, nullptr, nullptr, nullptr, &full, nullptr, batch, eo);
      auto be = make_cpu_backend(BackendOptions{});
      TaylorStats ts = taylor_tensor_stats(*m, *be, batch, CancelToken{});
      double worst_rel = 0;
      for (int l = 0; l < c.n_layers; l++) {
        const auto& Lw = w.layers[size_t(l)];
        const double* ws[9] = {Lw.attn_norm, Lw.wq, Lw.wk, Lw.wv, Lw.wo, Lw.ffn_norm, Lw.w_gate, Lw.w_up, Lw.w_down};
        const TensorKind kinds[9] = {TensorKind::AttnNorm, TensorKind::Wq, TensorKind::Wk, TensorKind::Wv, TensorKind::Wo,
                                     TensorKind::FfnNorm, TensorKind::WGate, TensorKind::WUp, TensorKind::WDown};
        for (int k = 0; k < 9; k++) {
          int64_t n = 1;
          for (auto d : m->expected_shape(kinds[k], l)) n *= d;
          if (n == 0 || !ws[k]) continue;
          double ref = 0;
          for (int64_t i = 0; i < n; i++) ref += std::fabs(ws[k][i] * g0[size_t(ws[k] - st.data()) + size_t(i)]);
          worst_rel = std::max(worst_rel, std::fabs(ts.layers[size_t(l)][size_t(k)].sum_abs_wg - ref) / std::max(ref, 1e-30));
        }
      }
      report("importance pass (one layer at a time) vs float64: Σ|w·g| per tensor", worst_rel, 1e-3);
    }
    // pruning group importance vs the formula evaluated directly on float64 gradients (themselves
    // checked against finite differences above): taylor, taylor-vector, magnitude
    {
      std::vector<Example> calib(2);
      std::uniform_int_distribution<int> ud(3, c.vocab_size - 1);
      for (int s2 = 0; s2 < 2; s2++) {
        calib[size_t(s2)].ids.push_back(1);
        for (int t = 0; t < 7 - 2 * s2; t++) calib[size_t(s2)].ids.push_back(ud(rng));
        calib[size_t(s2)].weight.assign(calib[size_t(s2)].ids.size() - 1, 1.f);
      }
      TrainBatch cb;
      cb.B = 2;
      cb.Tn = 7;
      for (auto& e : calib)
        for (int t = 0; t < 7; t++) {
          bool real = size_t(t + 1) < e.ids.size();
          cb.ids.push_back(real ? e.ids[size_t(t)] : e.ids[0]);
          cb.targets.push_back(real ? e.ids[size_t(t + 1)] : 0);
          cb.weight.push_back(real ? 1.f : 0.f);
        }
      std::vector<double> g1;
      GradsT<double> full = grads_over(c, w, st, g1);
      TrainOptions eo;
      eo.training = false;
      train_forward_backward<double>(c, w, rope, nullptr, nullptr, nullptr, &full, nullptr, cb, eo);
      auto be = make_cpu_backend(BackendOptions{});
      for (auto method : {ImportanceMethod::Taylor, ImportanceMethod::TaylorVector, ImportanceMethod::MagnitudeL1}) {
        GroupScores gs = group_importance(*m, *be, calib, method, GroupAgg::Sum, 0, CancelToken{});
        double worst_g = 0;
        for (int l = 0; l < c.n_layers; l++) {
          const LayerShape& ls = c.layers[size_t(l)];
          const auto& Lw = w.layers[size_t(l)];
          const int64_t D = c.dim, hd = c.head_dim;
          auto gof = [&](const double* p, int64_t i) { return g1[size_t(p - st.data()) + size_t(i)]; };
          auto share = [&](const double* p, int64_t i, double& acc) {
            double wg = p[i] * gof(p, i);
            acc += method == ImportanceMethod::Taylor ? std::fabs(wg) : method == ImportanceMethod::TaylorVector ? wg : std::fabs(p[i]);
          };
          auto fin = [&](double v) { return method == ImportanceMethod::TaylorVector ? std::fabs(v) : v; };
          if (ls.n_kv_head > 0) {
            const int64_t grp = ls.n_head / ls.n_kv_head, qd = int64_t(ls.n_head) * hd;
            for (int64_t g = 0; g < ls.n_kv_head; g++) {
              double sq = 0, sk = 0, sv = 0, so = 0;
              for (int64_t r = g * grp * hd; r < (g + 1) * grp * hd; r++)
                for (int64_t j = 0; j < D; j++) share(Lw.wq, r * D + j, sq);
              for (int64_t r = g * hd; r < (g + 1) * hd; r++)
                for (int64_t j = 0; j < D; j++) { share(Lw.wk, r * D + j, sk); share(Lw.wv, r * D + j, sv); }
              for (int64_t r = 0; r < D; r++)
                for (int64_t j = g * grp * hd; j < (g + 1) * grp * hd; j++) share(Lw.wo, r * qd + j, so);
              double ref = fin(sq) + fin(sk) + fin(sv) + fin(so);
              worst_g = std::max(worst_g, std::fabs(gs.attn[size_t(l)][size_t(g)] - ref) / std::max(std::fabs(ref), 1e-30));
            }
          }
          for (int64_t ch = 0; ch < ls.ffn; ch++) {
            double sg = 0, su = 0, sd = 0;
            for (int64_t j = 0; j < D; j++) { share(Lw.w_gate, ch * D + j, sg); share(Lw.w_up, ch * D + j, su); }
            for (int64_t r = 0; r < D; r++) share(Lw.w_down, r * ls.ffn + ch, sd);
            double ref = fin(sg) + fin(su) + fin(sd);
            worst_g = std::max(worst_g, std::fabs(gs.mlp[size_t(l)][size_t(ch)] - ref) / std::max(std::fabs(ref), 1e-30));
          }
        }
        const char* nm = method == ImportanceMethod::Taylor ? "taylor" : method == ImportanceMethod::TaylorVector ? "taylor-vector" : "magnitude";
        report(std::string("pruning group importance (") + nm + ") vs direct float64 formula", worst_g, 1e-3);
      }
      // wanda-sp: |W_ij|·‖X_j‖, the norms over the weighted rows only (the second example is padded), against
      // the formula evaluated here on the float activations of the same forward
      {
        auto be2 = make_cpu_backend(BackendOptions{});
        std::vector<std::vector<float>> acts[4];  // [xn1, ao, xn2, h][layer]
        for (auto& a : acts) a.resize(size_t(c.n_layers));
        TrainOptions ao;
        ao.training = false;
        ao.on_layer_forward = [&](int l, const float* xn1, const float* a_, const float* xn2, const float* h, int64_t N) {
          const LayerShape& ls = c.layers[size_t(l)];
          const float* p[4] = {xn1, a_, xn2, h};
          const int64_t cols[4] = {c.dim, int64_t(ls.n_head) * c.head_dim, c.dim, ls.ffn};
          for (int k = 0; k < 4; k++)
            if (p[k]) acts[k][size_t(l)].assign(p[k], p[k] + N * cols[k]);
        };
        train_forward_backward<float>(c, weights_view(*m), rope, nullptr, nullptr, nullptr, nullptr, nullptr, cb, ao, be2.get());
        GroupScores gw = group_importance(*m, *be2, calib, ImportanceMethod::WandaSp, GroupAgg::Sum, 0, CancelToken{});
        double worst_w = 0;
        const int64_t N = int64_t(cb.weight.size()), D = c.dim, hd = c.head_dim;
        for (int l = 0; l < c.n_layers; l++) {
          const LayerShape& ls = c.layers[size_t(l)];
          const LayerWeights& L = m->layers[size_t(l)];
          auto norms = [&](const std::vector<float>& x, int64_t cols) {
            std::vector<double> r(size_t(cols), 0.0);
            for (int64_t n = 0; n < N && !x.empty(); n++)
              if (cb.weight[size_t(n)] != 0.f)
                for (int64_t j = 0; j < cols; j++) r[size_t(j)] += double(x[size_t(n * cols + j)]) * x[size_t(n * cols + j)];
            for (auto& v : r) v = std::sqrt(v);
            return r;
          };
          const int64_t qd = int64_t(ls.n_head) * hd;
          auto n1 = norms(acts[0][size_t(l)], D), na = norms(acts[1][size_t(l)], qd), n2 = norms(acts[2][size_t(l)], D), nh = norms(acts[3][size_t(l)], ls.ffn);
          if (ls.n_kv_head > 0) {
            const int64_t grp = ls.n_head / ls.n_kv_head;
            for (int64_t g = 0; g < ls.n_kv_head; g++) {
              double ref = 0;
              for (int64_t r = g * grp * hd; r < (g + 1) * grp * hd; r++)
                for (int64_t j = 0; j < D; j++) ref += std::fabs(double(L.wq[r * D + j])) * n1[size_t(j)];
              for (int64_t r = g * hd; r < (g + 1) * hd; r++)
                for (int64_t j = 0; j < D; j++) ref += (std::fabs(double(L.wk[r * D + j])) + std::fabs(double(L.wv[r * D + j]))) * n1[size_t(j)];
              for (int64_t r = 0; r < D; r++)
                for (int64_t j = g * grp * hd; j < (g + 1) * grp * hd; j++) ref += std::fabs(double(L.wo[r * qd + j])) * na[size_t(j)];
              worst_w = std::max(worst_w, std::fabs(gw.attn[size_t(l)][size_t(g)] - ref) / std::max(ref, 1e-30));
            }
          }
          for (int64_t ch = 0; ch < ls.ffn; ch++) {
            double ref = 0;
            for (int64_t j = 0; j < D; j++) ref += (std::fabs(double(L.w_gate[ch * D + j])) + std::fabs(double(L.w_up[ch * D + j]))) * n2[size_t(j)];
            for (int64_t r = 0; r < D; r++) ref += std::fabs(double(L.w_down[r * ls.ffn + ch])) * nh[size_t(ch)];
            worst_w = std::max(worst_w, std::fabs(gw.mlp[size_t(l)][size_t(ch)] - ref) / std::max(ref, 1e-30));
          }
        }
        report("pruning group importance (wanda-sp) vs the formula on the forward's activations", worst_w, 1e-9);
      }
    }
  } catch (const EngineError& e) {
    std::printf("ERROR %s %s\n", error_code_name(e.code()), e.what());
    return 1;
  }
  std::printf(failures ? "FAILED %d checks\n" : "all gradient checks passed\n", failures);
  return failures ? 1 : 0;
}
