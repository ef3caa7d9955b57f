// cudacheck_train.cpp — tailor_cudacheck's rows for the training ops of native/cuda/train.cu, each against
// the float templates of engine/train_ops.h (or a host loop written as the trainer writes it) on host
// copies of the same seeded inputs; accumulating outputs start from random values.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "backend.h"
#include "cudacheck.h"
#include "forward.h"
#include "kernels.h"
#include "lora_hash.h"
#include "train_ops.h"

using namespace tailor;
using namespace cudacheck;

namespace {

void check_rmsnorm_train() {
  struct Case { int64_t N, D; double eps; bool dw; };
  for (const Case& c : {Case{64, 288, 1e-5, true}, Case{7, 101, 1e-6, true}, Case{1, 4096, 1e-5, true}, Case{300, 77, 1e-5, false}}) {
    auto x = randf(size_t(c.N * c.D), 3.f), w = randf(size_t(c.D)), dy = randf(size_t(c.N * c.D));
    auto dx0 = randf(x.size()), dw0 = randf(size_t(c.D));
    std::vector<float> ry(x.size()), rr(static_cast<size_t>(c.N));
    ops::rmsnorm_forward<float>(ry.data(), rr.data(), x.data(), w.data(), c.N, c.D, c.eps);
    auto rdx = dx0, rdw = dw0;
    ops::rmsnorm_backward<float>(rdx.data(), c.dw ? rdw.data() : nullptr, dy.data(), x.data(), w.data(), rr.data(), c.N, c.D);
    Dev<float> gx(x), gw(w), gy(x.size()), gr(rr.size()), gdy(dy), grr(rr), gdx(dx0), gdw(dw0);
    cu::rmsnorm_forward_train(gy.p, gr.p, gx.p, gw.p, c.N, c.D, c.eps);
    cu::rmsnorm_backward(gdx.p, c.dw ? gdw.p : nullptr, gdy.p, gx.p, gw.p, grr.p, c.N, c.D);
    const std::string s = nd(c.N, c.D);
    report("rmsnorm_forward_train", s + " y", gy.get(), ry, kF32);
    report("rmsnorm_forward_train", s + " rstd", gr.get(), rr, kF32);
    report("rmsnorm_backward", s + " dx +=", gdx.get(), rdx, kF32);
    report("rmsnorm_backward", s + (c.dw ? " dw +=" : " dw (null)"), gdw.get(), rdw, kF32);
  }
}

void check_rope_apply() {
  struct Case { const char* name; RopeTable r; int n_heads; int sign; std::vector<int> pos; };
  std::vector<int> seq(37), mixed{0, 1, 2, 700, 701, 3, 5000};
  for (int i = 0; i < 37; i++) seq[size_t(i)] = i;
  const Case cases[] = {
      {"interleaved hd=48 6 heads sign +1", rope_table(48, true, RopeScalingType::None, 1, 10000), 6, 1, seq},
      {"interleaved hd=48 2 heads sign -1", rope_table(48, true, RopeScalingType::None, 1, 10000), 2, -1, mixed},
      {"rotate-half hd=128 llama3 8 heads sign +1", rope_table(128, false, RopeScalingType::Llama3, 8, 500000), 8, 1, mixed},
      {"rotate-half hd=64 linear x4 4 heads sign -1", rope_table(64, false, RopeScalingType::Linear, 4, 10000), 4, -1, seq},
  };
  for (const Case& c : cases) {
    const int64_t N = int64_t(c.pos.size());
    auto x = randf(size_t(N * c.n_heads * c.r.head_dim));
    auto ref = x;
    ops::rope_apply<float>(ref.data(), c.pos.data(), N, c.n_heads, c.r.head_dim, c.r.inv_freq.data(), c.r.pos_scale, c.r.interleaved, c.sign);
    Dev<float> gx(x);
    Dev<int> gp(c.pos);
    Dev<double> gf(c.r.inv_freq);
    const cu::DeviceRope dr = device_rope(c.r, gf.p);
    cu::rope_apply(gx.p, gp.p, N, c.n_heads, dr, c.sign);
    report("rope_apply", c.name, gx.get(), ref, kF32);
  }
}

// the CUDA forward saves lse[B, nh, Tn] instead of the probabilities: checked against log Σ_{j≤t} exp s_tj in
// float64; the backward then runs from the GPU's own out and lse
void check_attention_train(Backend& cpu, Backend& gpu) {
  struct Case { const char* name; int B, Tn, nh, nkv, hd; };
  const Case cases[] = {
      {"GQA 8/2 hd=64 B=2 Tn=37", 2, 37, 8, 2, 64},
      {"MHA 4/4 hd=32 B=3 Tn=20", 3, 20, 4, 4, 32},
      {"GQA 6/3 hd=40 B=1 Tn=70", 1, 70, 6, 3, 40},
      {"GQA 4/1 hd=256 B=2 Tn=5", 2, 5, 4, 1, 256},
      {"GQA 4/1 hd=256 B=1 Tn=40", 1, 40, 4, 1, 256},  // 13-key tiles
      {"MHA 2/2 hd=8 B=1 Tn=1", 1, 1, 2, 2, 8},
      {"GQA 4/2 hd=128 B=1 Tn=300", 1, 300, 4, 2, 128},
  };
  for (const Case& c : cases) {
    const int64_t rows = int64_t(c.B) * c.Tn, qd = int64_t(c.nh) * c.hd, kd = int64_t(c.nkv) * c.hd;
    const size_t an = size_t(c.B) * size_t(c.nh) * size_t(c.Tn) * size_t(c.Tn);
    auto q = randf(size_t(rows * qd)), k = randf(size_t(rows * kd)), v = randf(size_t(rows * kd)), dout = randf(size_t(rows * qd));
    auto dq0 = randf(q.size()), dk0 = randf(k.size()), dv0 = randf(v.size());
    std::vector<float> rout(q.size()), ratt(an), rlse(size_t(c.B) * size_t(c.nh) * size_t(c.Tn));
    ops::attention_forward<float>(rout.data(), ratt.data(), q.data(), k.data(), v.data(), c.B, c.Tn, c.nh, c.nkv, c.hd);
    auto rdq = dq0, rdk = dk0, rdv = dv0;
    ops::attention_backward<float>(rdq.data(), rdk.data(), rdv.data(), dout.data(), ratt.data(), q.data(), k.data(), v.data(), c.B, c.Tn, c.nh,
                                   c.nkv, c.hd);
    for (size_t r = 0; r < rlse.size(); r++) {  // r = (b·nh + h)·Tn + t
      const int64_t t = int64_t(r) % c.Tn, h = int64_t(r) / c.Tn % c.nh, b = int64_t(r) / c.Tn / c.nh;
      std::vector<double> sc(size_t(t) + 1, 0.0);
      for (int64_t j = 0; j <= t; j++)
        for (int i = 0; i < c.hd; i++)
          sc[size_t(j)] += double(q[size_t((b * c.Tn + t) * qd + h * c.hd + i)]) * k[size_t((b * c.Tn + j) * kd + h / (c.nh / c.nkv) * c.hd + i)];
      const double mx = *std::max_element(sc.begin(), sc.end()), sq = std::sqrt(double(c.hd));
      double sum = 0;
      for (double x : sc) sum += std::exp((x - mx) / sq);
      rlse[r] = float(mx / sq + std::log(sum));
    }
    Dev<float> gq(q), gk(k), gv(v), gout(q.size()), glse(size_t(gpu.attention_saved_floats(c.B, c.Tn, c.nh))), gdout(dout), gdq(dq0), gdk(dk0),
        gdv(dv0);
    cu::attention_forward_train(gout.p, glse.p, gq.p, gk.p, gv.p, c.B, c.Tn, c.nh, c.nkv, c.hd);
    cu::attention_backward(gdq.p, gdk.p, gdv.p, gdout.p, gout.p, glse.p, gq.p, gk.p, gv.p, c.B, c.Tn, c.nh, c.nkv, c.hd);
    report("attention_fwd_train", std::string(c.name) + " out", gout.get(), rout, kF32);
    report("attention_fwd_train", std::string(c.name) + " lse", glse.get(), rlse, kF32);
    report("attention_backward", std::string(c.name) + " dq +=", gdq.get(), rdq, kF32);
    report("attention_backward", std::string(c.name) + " dk +=", gdk.get(), rdk, kF32);
    report("attention_backward", std::string(c.name) + " dv +=", gdv.get(), rdv, kF32);
  }
  // what the train graph keeps per layer between forward and backward, LLaMA-7B-like (32 heads, B=4, Tn=512)
  const int64_t fc = cpu.attention_saved_floats(4, 512, 32), fg = gpu.attention_saved_floats(4, 512, 32);
  report("attention_fwd_train", "saved floats B=4 nh=32 Tn=512 (CPU, CUDA)", std::vector<int64_t>{fc, fg},
         std::vector<int64_t>{4 * 32 * 512 * 512, 4 * 32 * 512}, 0.0);
  auto mib = [](int64_t floats) { return double(floats) * 4 / (1 << 20); };
  char msg[128];
  std::snprintf(msg, sizeof msg, "per layer: CPU %.0f MiB (probabilities), CUDA %.2f MiB (lse); 32 layers: %.0f vs %.0f MiB", mib(fc), mib(fg),
                32 * mib(fc), 32 * mib(fg));
  note("attention_fwd_train", "saved state B=4 nh=32 Tn=512", msg);
}

// the training attention on bf16 tensor cores (sm_80+, the backend's bf16 mode). Two references in float64:
//  - "vs fp32": the exact attention of the fp32 inputs, the result the fp32 kernels give within 1e-4: the
//    tensor cores must stay within bf16 rounding of it (kBf16, as every bf16 op here);
//  - "vs bf16 model": the same rounding as the kernels — q, k, v, dout rounded to bf16, p rounded to bf16 for
//    P·V and Pᵀ·dO, ds for dS·K and dSᵀ·Q, D from the unrounded dout and the kernels' out — so what is left is
//    the fp32 accumulation order (~1e-7 here), and now and then a p or ds that lands on the other side of a
//    bf16 rounding boundary (~1e-5 here): kBf16Model (cudacheck.h).
void check_attention_train_tc(int cc) {
  if (!cu::attention_tc_usable(64)) {
    row("attention_tc", "usable below sm_80 (must not be)", 0, 0, cc < 80, cc < 80 ? "  (sm_" + std::to_string(cc) + ": the fp32 kernels run)" : "");
    return;
  }
  row("attention_tc", "usable: head_dim 16..128 by 16, not 8/40/256", 0, 0,
      cu::attention_tc_usable(16) && cu::attention_tc_usable(48) && cu::attention_tc_usable(128) && !cu::attention_tc_usable(8) &&
          !cu::attention_tc_usable(40) && !cu::attention_tc_usable(256));
  struct Case { const char* name; int B, Tn, nh, nkv, hd; };
  const Case cases[] = {
      {"GQA 8/2 hd=64 B=2 Tn=37", 2, 37, 8, 2, 64},   {"MHA 4/4 hd=32 B=3 Tn=20", 3, 20, 4, 4, 32},
      {"GQA 6/3 hd=48 B=1 Tn=70", 1, 70, 6, 3, 48},   {"MHA 2/2 hd=16 B=1 Tn=1", 1, 1, 2, 2, 16},
      {"GQA 4/1 hd=80 B=2 Tn=65", 2, 65, 4, 1, 80},   {"GQA 4/2 hd=128 B=1 Tn=90", 1, 90, 4, 2, 128},
  };
  for (const Case& c : cases) {
    if (left_out_for_sanitizer(int64_t(c.B) * c.nh * c.Tn * c.Tn * c.hd)) continue;
    const int64_t rows = int64_t(c.B) * c.Tn, qd = int64_t(c.nh) * c.hd, kd = int64_t(c.nkv) * c.hd;
    auto q = randf(size_t(rows * qd)), k = randf(size_t(rows * kd)), v = randf(size_t(rows * kd)), dout = randf(size_t(rows * qd));
    auto dq0 = randf(q.size()), dk0 = randf(k.size()), dv0 = randf(v.size());
    Dev<float> gq(q), gk(k), gv(v), gout(q.size()), glse(size_t(int64_t(c.B) * c.nh * c.Tn)), gdout(dout), gdq(dq0), gdk(dk0), gdv(dv0);
    cu::attention_forward_train_tc(gout.p, glse.p, gq.p, gk.p, gv.p, c.B, c.Tn, c.nh, c.nkv, c.hd);
    cu::attention_backward_tc(gdq.p, gdk.p, gdv.p, gdout.p, gout.p, glse.p, gq.p, gk.p, gv.p, c.B, c.Tn, c.nh, c.nkv, c.hd);
    const auto out = gout.get(), lse = glse.get();
    // the two references, in float64: model = false from the fp32 inputs, true with the kernels' roundings
    const double scale = 1.0 / std::sqrt(double(c.hd));
    auto reference = [&](bool model, std::vector<double>& rout, std::vector<double>& rlse, std::vector<double>& rdq, std::vector<double>& rdk,
                         std::vector<double>& rdv) {
      const auto qq = model ? rounded_bf16(q) : q, kk = model ? rounded_bf16(k) : k, vv = model ? rounded_bf16(v) : v, gg = model ? rounded_bf16(dout) : dout;
      auto bfr = [&](double x) { return model ? double(bf16_round(float(x))) : x; };
      rout.assign(q.size(), 0.0);
      rlse.assign(lse.size(), 0.0);
      rdq.assign(dq0.begin(), dq0.end());
      rdk.assign(dk0.begin(), dk0.end());
      rdv.assign(dv0.begin(), dv0.end());
      std::vector<double> sc(size_t(c.Tn)), p(size_t(c.Tn));
      for (int b = 0; b < c.B; b++)
        for (int h = 0; h < c.nh; h++) {
          const int g = h / (c.nh / c.nkv);
          for (int t = 0; t < c.Tn; t++) {
            const int64_t qo = (int64_t(b) * c.Tn + t) * qd + int64_t(h) * c.hd;
            double mx = -INFINITY;
            for (int j = 0; j <= t; j++) {
              const int64_t ko = (int64_t(b) * c.Tn + j) * kd + int64_t(g) * c.hd;
              double d = 0;
              for (int i = 0; i < c.hd; i++) d += double(qq[size_t(qo + i)]) * kk[size_t(ko + i)];
              sc[size_t(j)] = d * scale;
              mx = std::max(mx, sc[size_t(j)]);
            }
            double sum = 0;
            for (int j = 0; j <= t; j++) sum += std::exp(sc[size_t(j)] - mx);
            const double L = mx + std::log(sum);
            rlse[size_t((int64_t(b) * c.nh + h) * c.Tn + t)] = L;
            for (int j = 0; j <= t; j++) p[size_t(j)] = std::exp(sc[size_t(j)] - L);
            for (int j = 0; j <= t; j++) {
              const int64_t ko = (int64_t(b) * c.Tn + j) * kd + int64_t(g) * c.hd;
              for (int i = 0; i < c.hd; i++) rout[size_t(qo + i)] += bfr(p[size_t(j)]) * vv[size_t(ko + i)];
            }
            // D from the unrounded dout and the output the backward is given (the kernels' out in the model)
            double D = 0;
            for (int i = 0; i < c.hd; i++) D += double(dout[size_t(qo + i)]) * (model ? double(out[size_t(qo + i)]) : rout[size_t(qo + i)]);
            for (int j = 0; j <= t; j++) {
              const int64_t ko = (int64_t(b) * c.Tn + j) * kd + int64_t(g) * c.hd;
              double dp = 0;
              for (int i = 0; i < c.hd; i++) dp += double(gg[size_t(qo + i)]) * vv[size_t(ko + i)];
              const double ds = bfr(p[size_t(j)] * (dp - D) * scale), pj = bfr(p[size_t(j)]);
              for (int i = 0; i < c.hd; i++) {
                rdq[size_t(qo + i)] += ds * kk[size_t(ko + i)];
                rdk[size_t(ko + i)] += ds * qq[size_t(qo + i)];
                rdv[size_t(ko + i)] += pj * gg[size_t(qo + i)];
              }
            }
          }
        }
    };
    const auto got = std::vector<std::vector<float>>{out, lse, gdq.get(), gdk.get(), gdv.get()};
    const char* what[] = {" out", " lse", " dq +=", " dk +=", " dv +=", };
    for (bool model : {false, true}) {
      std::vector<double> r[5];
      reference(model, r[0], r[1], r[2], r[3], r[4]);
      for (int i = 0; i < 5; i++) {
        std::vector<double> g(got[size_t(i)].begin(), got[size_t(i)].end());
        report("attention_tc", std::string(c.name) + what[i] + (model ? " vs bf16 model" : " vs fp32"), g, r[i], model ? kBf16Model : kBf16);
      }
    }
  }
  cu::attention_forward_train_tc(nullptr, nullptr, nullptr, nullptr, nullptr, 0, 16, 8, 2, 64);  // empty: nothing launched
  cu::attention_backward_tc(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, 2, 0, 8, 2, 64);
}

void check_train_pointwise() {
  {
    const int64_t n = 64 * 1000 + 3;
    auto g = randf(size_t(n), 3.f), u = randf(size_t(n)), dh = randf(size_t(n)), dg0 = randf(size_t(n)), du0 = randf(size_t(n));
    auto rdg = dg0, rdu = du0;
    ops::swiglu_backward<float>(rdg.data(), rdu.data(), dh.data(), g.data(), u.data(), n);
    Dev<float> gg(g), gu(u), gdh(dh), gdg(dg0), gdu(du0);
    cu::swiglu_backward(gdg.p, gdu.p, gdh.p, gg.p, gu.p, n);
    report("swiglu_backward", "n=64003 dg +=", gdg.get(), rdg, kF32);
    report("swiglu_backward", "n=64003 du +=", gdu.get(), rdu, kF32);
  }
  struct ECase { int64_t N, D, V; };
  for (const ECase& c : {ECase{200, 77, 50}, ECase{64, 4096, 1000}, ECase{3, 5, 2}}) {
    std::vector<int> ids(static_cast<size_t>(c.N));
    std::uniform_int_distribution<int> pick(0, int(c.V) - 1);
    for (int& id : ids) id = pick(rng);
    auto dout = randf(size_t(c.N * c.D)), dt0 = randf(size_t(c.V * c.D));
    auto rdt = dt0;
    ops::embedding_backward<float>(rdt.data(), dout.data(), ids.data(), c.N, c.D);
    Dev<float> gdout(dout), gdt(dt0);
    Dev<int> gids(ids);
    cu::embedding_backward(gdt.p, gdout.p, gids.p, c.N, c.D);
    // rows added in the same order as the CPU's: bit-exact
    report("embedding_backward", nd(c.N, c.D) + " V=" + std::to_string(c.V) + " += (exact)", gdt.get(), rdt, 0.0);
  }
  {
    auto x = randf(100003);
    auto rx = x;
    for (float& e : rx) e *= 0.37f;
    Dev<float> gx(x);
    cu::scale_inplace(gx.p, 0.37f, int64_t(x.size()));
    report("scale_inplace", "n=100003 s=0.37 (exact)", gx.get(), rx, 0.0);
  }
  {
    const int64_t n = 64 * 1000 + 3;
    const double p = double(0.1f);  // LoraConfig::dropout is a float
    const uint64_t seed = 1234, step = 7;
    const int layer = 3, target = 2;
    auto x = randf(size_t(n));
    std::vector<float> ry(static_cast<size_t>(n));
    std::vector<int> rmask(static_cast<size_t>(n));
    const uint64_t key = dropout_key(seed, step, layer, target);
    const float inv = float(1.0 / (1.0 - p));
    int64_t dropped = 0;
    for (int64_t i = 0; i < n; i++) {
      rmask[size_t(i)] = dropout_draw(key, uint64_t(i)) < p;
      dropped += rmask[size_t(i)];
      ry[size_t(i)] = rmask[size_t(i)] ? 0.f : x[size_t(i)] * inv;
    }
    Dev<float> gx(x), gy(x.size());
    cu::lora_dropout(gy.p, gx.p, n, p, seed, step, layer, target);
    auto y = gy.get();
    std::vector<int> mask(y.size());
    for (size_t i = 0; i < y.size(); i++) mask[i] = y[i] == 0.f && x[i] != 0.f;
    const std::string s = "n=64003 p=0.1 (" + std::to_string(dropped) + " dropped)";
    report("lora_dropout", s + " mask (exact)", mask, rmask, 0.0);
    report("lora_dropout", s + " y (exact)", y, ry, 0.0);
    cu::lora_dropout(gx.p, gx.p, n, p, seed, step, layer, target);
    report("lora_dropout", "n=64003 p=0.1 in place (exact)", gx.get(), ry, 0.0);
  }
  for (int64_t n : {int64_t(5), int64_t(1000003)}) {
    auto x = randf(size_t(n));
    double ref = 0;
    for (float e : x) ref += double(e) * e;
    Dev<float> gx(x);
    const double got = cu::sum_squares(gx.p, n);
    report("sum_squares", "n=" + std::to_string(n), std::vector<double>{got}, std::vector<double>{ref}, kF32);
  }
  {
    // a step as Trainer::train_step takes it (step 3, clipped, with weight decay); the loop as on the CPU
    const int64_t n = 100003;
    const float clip = 0.4f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, wd = 0.01f;
    const double lr = 2e-4;
    const int64_t t = 3;
    const double bc1 = 1 - std::pow(double(beta1), double(t)), bc2 = 1 - std::pow(double(beta2), double(t));
    auto P = randf(size_t(n), 0.05f), g = randf(size_t(n), 0.01f), m = randf(size_t(n), 0.01f), v = randf(size_t(n), 0.01f);
    for (float& e : v) e *= e;
    auto rP = P, rm = m, rv = v;
    for (size_t i = 0; i < rP.size(); i++) {
      float gi = g[i] * clip;
      rm[i] = beta1 * rm[i] + (1 - beta1) * gi;
      rv[i] = beta2 * rv[i] + (1 - beta2) * gi * gi;
      double mh = rm[i] / bc1, vh = rv[i] / bc2;
      rP[i] = float(double(rP[i]) * (1 - lr * wd) - lr * mh / (std::sqrt(vh) + eps));
    }
    Dev<float> gP(P), gg(g), gm(m), gv(v);
    cu::adamw_step(gP.p, gg.p, gm.p, gv.p, n, clip, beta1, beta2, eps, wd, lr, bc1, bc2);
    auto got = gP.get();
    report("adamw_step", "n=100003 clip=0.4 wd=0.01 step 3 p", got, rP, kF32);
    for (size_t i = 0; i < got.size(); i++) got[i] -= P[i], rP[i] -= P[i];  // the update alone, not hidden by |p|
    report("adamw_step", "n=100003 clip=0.4 wd=0.01 step 3 p - p0", got, rP, kF32);
    report("adamw_step", "n=100003 clip=0.4 wd=0.01 step 3 m", gm.get(), rm, kF32);
    report("adamw_step", "n=100003 clip=0.4 wd=0.01 step 3 v", gv.get(), rv, kF32);
  }
  {
    // empty sizes: nothing launched, nothing dereferenced (null pointers), no error
    cu::DeviceRope dr;
    dr.head_dim = 64;
    cu::rmsnorm_forward_train(nullptr, nullptr, nullptr, nullptr, 0, 64, 1e-5);
    cu::rmsnorm_backward(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, 0, 64);
    cu::rope_apply(nullptr, nullptr, 0, 4, dr, -1);
    cu::attention_forward_train(nullptr, nullptr, nullptr, nullptr, nullptr, 0, 16, 8, 2, 64);
    cu::attention_backward(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, 2, 0, 8, 2, 64);
    cu::swiglu_backward(nullptr, nullptr, nullptr, nullptr, nullptr, 0);
    cu::embedding_backward(nullptr, nullptr, nullptr, 0, 64);
    cu::scale_inplace(nullptr, 2.f, 0);
    cu::lora_dropout(nullptr, nullptr, 0, 0.1, 1, 2, 3, 4);
    cu::adamw_step(nullptr, nullptr, nullptr, nullptr, 0, 1.f, 0.9f, 0.999f, 1e-8f, 0.f, 1e-3, 0.1, 0.001);
    report("training ops", "empty sizes (sum_squares of n=0)", std::vector<double>{cu::sum_squares(nullptr, 0)}, std::vector<double>{0.0}, 0.0);
  }
}

// the pruner's per-row and per-column sums of |w·g|, w·g, (w·g)² (fp32 and bf16 weights) against the CPU
// backend's: float64 sums in another order, so equal to ~1e-15
void check_wg_term_sums(Backend& cpu) {
  const int64_t R = 37, C = 1000;  // neither a multiple of a block
  auto w = randf(size_t(R * C), 0.05f), g = randf(size_t(R * C), 0.01f);
  const auto wb = bf16_vector(w);
  const auto wr = bf16_floats(wb);  // w rounded to bf16
  Dev<float> gw(w), gg(g);
  Dev<uint16_t> gwb(wb);
  const char* names[3] = {"|w·g|", "w·g", "(w·g)²"};
  const tailor::WgTerm terms[3] = {tailor::WgTerm::AbsWG, tailor::WgTerm::WG, tailor::WgTerm::SqWG};
  for (int bf = 0; bf < 2; bf++)
    for (int t = 0; t < 3; t++)
      for (int by_col = 0; by_col < 2; by_col++) {
        const int64_t n = by_col ? C : R;
        std::vector<double> ref(static_cast<size_t>(n));
        cpu.wg_term_sums(ref.data(), bf ? wr.data() : w.data(), g.data(), R, C, terms[t], by_col);
        Dev<double> out(static_cast<size_t>(n));
        cu::wg_term_sums(out.p, bf ? nullptr : gw.p, bf ? gwb.p : nullptr, gg.p, R, C, terms[t], by_col);
        report("wg_term_sums", std::string(bf ? "bf16 w " : "") + names[t] + (by_col ? " per column" : " per row") + " of [37, 1000]", out.get(), ref,
               1e-12);
      }
  cu::wg_term_sums(nullptr, nullptr, nullptr, nullptr, 0, 5, tailor::WgTerm::AbsWG, false);  // empty: nothing launched
}

}  // namespace

void check_training_ops(Backend& cpu, Backend& gpu) {
  check_wg_term_sums(cpu);
  check_rmsnorm_train();
  check_rope_apply();
  check_attention_train(cpu, gpu);
  check_attention_train_tc(cu::compute_capability());
  check_train_pointwise();
}
