// cudacheck.cpp — tailor_cudacheck: the CUDA kernels (native/cuda) against the CPU backend, op by op, on
// seeded random inputs of realistic shapes (GQA, sizes that are not multiples of a tile, T=1 decode and
// T=64 prefill). Prints one row per case: max |gpu − cpu|, that divided by max |cpu| (normwise relative
// error) and the tolerance; exits 1 on any failure, 77 ("skipped") when there is no usable CUDA device.
// Built only with the CUDA kernels (TAILOR_CUDA). Compiled by the host compiler: kernels.h carries no
// CUDA headers. --model PATH (repeatable) and --random-model add whole-model rows (cudamodel.cpp): the
// model on the CPU and on the CUDA backend, logits at every position and 64 greedy tokens. The training ops
// (train.cu) are checked against the float templates of engine/train_ops.h called on host copies.
// --bench adds timings after the checks (matrix-product TFLOP/s at LLaMA-7B shapes as a share of the device's
// dense bf16 peak, attention); they are printed, never checked. --bench-only prints them without the checks.
//   tailor_cudacheck [--device N] [--bench | --bench-only] [--model PATH]... [--random-model]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "backend.h"
#include "device.h"
#include "errors.h"
#include "forward.h"
#include "kernels.h"
#include "lora_hash.h"
#include "train_ops.h"

using namespace tailor;
namespace cu = tailor::cuda;

int check_whole_models(const std::vector<std::string>& paths, bool random_model, int device, int* n_checks);  // cudamodel.cpp

namespace {

int failures = 0, checks = 0;
std::mt19937_64 rng(20240531);

std::vector<float> randf(size_t n, float scale = 1.f) {
  std::normal_distribution<float> nd(0.f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = nd(rng);
  return v;
}

// a device copy of a host vector (or n uninitialised elements), freed with the object
template <typename T>
struct Dev {
  T* p = nullptr;
  size_t n = 0;
  explicit Dev(size_t count) : p(static_cast<T*>(cu::device_malloc(count * sizeof(T)))), n(count) {}
  explicit Dev(const std::vector<T>& h) : Dev(h.size()) { cu::to_device(p, h.data(), h.size() * sizeof(T)); }
  Dev(const Dev&) = delete;
  ~Dev() { cu::device_free(p); }
  std::vector<T> get() const {
    std::vector<T> h(n);
    cu::to_host(h.data(), p, n * sizeof(T));
    return h;
  }
};

// round to nearest even, as __float2bfloat16_rn does for finite values
uint16_t bf16_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return uint16_t((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}
float bf16_value(uint16_t b) {
  uint32_t u = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// one table row: normwise error of got against ref (non-finite values fail)
template <typename T>
void report(const char* op, const std::string& what, const std::vector<T>& got, const std::vector<T>& ref, double tol) {
  double diff = 0, scale = 0;
  bool finite = got.size() == ref.size();
  for (size_t i = 0; i < got.size() && i < ref.size(); i++) {
    double g = double(got[i]), r = double(ref[i]);
    if (!std::isfinite(g) && !(std::isnan(g) && std::isnan(r)) && g != r) finite = false;
    if (std::isfinite(g) && std::isfinite(r)) diff = std::max(diff, std::fabs(g - r));
    if (std::isfinite(r)) scale = std::max(scale, std::fabs(r));
  }
  double rel = diff / std::max(scale, 1e-30);
  bool ok = finite && rel <= tol;
  checks++;
  if (!ok) failures++;
  std::printf("%-22s %-44s %11.3e %11.3e %9.1e  %s\n", op, what.c_str(), diff, rel, tol, ok ? "ok" : finite ? "FAIL" : "FAIL (non-finite)");
}

void note(const char* op, const std::string& what, const std::string& msg) { std::printf("%-22s %-44s %s\n", op, what.c_str(), msg.c_str()); }

const double kF32 = 1e-4;  // fp32 kernels against the CPU: a different summation order, nothing more
const double kBf16 = 1e-2; // bf16 inputs against fp32 ones: within bf16 rounding (8-bit mantissa)

std::string shape(int64_t T, int64_t in, int64_t out, bool acc) {
  return "T=" + std::to_string(T) + " in=" + std::to_string(in) + " out=" + std::to_string(out) + (acc ? " +=" : "");
}

void check_matmul(Backend& cpu) {
  struct Case { int64_t T, in, out; bool acc; };
  const Case cases[] = {{1, 288, 768, false}, {64, 288, 768, false}, {37, 101, 203, true}, {64, 2048, 5632, false}, {5, 0, 7, false},
                        {130, 1000, 1, true}};
  for (const Case& c : cases) {
    auto x = randf(size_t(c.T * c.in)), w = randf(size_t(c.out * c.in), 0.05f), y0 = randf(size_t(c.T * c.out));
    auto ref = y0;
    cpu.matmul_forward(ref.data(), x.data(), w.data(), c.T, c.in, c.out, c.acc);
    Dev<float> dx(x), dw(w), dy(y0);
    cu::matmul_forward(dy.p, dx.p, dw.p, c.T, c.in, c.out, c.acc);
    report("matmul_forward", shape(c.T, c.in, c.out, c.acc), dy.get(), ref, kF32);
  }
}

void check_matmul_bf16(Backend& cpu, int cc) {
  struct Case { int64_t T, in, out; bool acc; };
  const Case cases[] = {{1, 288, 768, false}, {64, 288, 768, false}, {37, 101, 203, true}, {64, 2048, 5632, false}, {3, 17, 1, false}};
  for (const Case& c : cases) {
    auto x = randf(size_t(c.T * c.in)), w = randf(size_t(c.out * c.in), 0.05f), y0 = randf(size_t(c.T * c.out));
    std::vector<uint16_t> xb(x.size()), wb(w.size());
    std::vector<float> xr(x.size()), wr(w.size());  // the bf16 values as floats
    for (size_t i = 0; i < x.size(); i++) xr[i] = bf16_value(xb[i] = bf16_bits(x[i]));
    for (size_t i = 0; i < w.size(); i++) wr[i] = bf16_value(wb[i] = bf16_bits(w[i]));
    auto ref_rounded = y0, ref_f32 = y0;
    cpu.matmul_forward(ref_rounded.data(), xr.data(), wr.data(), c.T, c.in, c.out, c.acc);
    cpu.matmul_forward(ref_f32.data(), x.data(), w.data(), c.T, c.in, c.out, c.acc);
    Dev<float> dxf(x), dwf(w);
    Dev<uint16_t> dxb(x.size()), dwb(w.size());
    cu::f32_to_bf16(dxb.p, dxf.p, int64_t(x.size()));
    cu::f32_to_bf16(dwb.p, dwf.p, int64_t(w.size()));
    auto conv = dwb.get();
    report("f32_to_bf16", "W of " + shape(c.T, c.in, c.out, false), conv, wb, 0.0);
    const std::pair<cu::Bf16Path, const char*> paths[] = {{cu::Bf16Path::TensorCores, "wmma"}, {cu::Bf16Path::Fallback, "tiled"}};
    for (auto& p : paths) {
      std::string name = std::string("matmul_bf16 ") + p.second;
      if (p.first == cu::Bf16Path::TensorCores && cc < 80) {
        note(name.c_str(), shape(c.T, c.in, c.out, c.acc), "n/a (sm_" + std::to_string(cc) + " has no bf16 tensor cores)");
        continue;
      }
      Dev<float> dy(y0);
      cu::matmul_forward_bf16(dy.p, dxb.p, dwb.p, c.T, c.in, c.out, c.acc, p.first);
      auto got = dy.get();
      report(name.c_str(), shape(c.T, c.in, c.out, c.acc) + " vs bf16 in", got, ref_rounded, kF32);
      report(name.c_str(), shape(c.T, c.in, c.out, c.acc) + " vs fp32 in", got, ref_f32, kBf16);
    }
  }
}

void check_matmul_backward(Backend& cpu) {
  struct Case { int64_t T, in, out; bool dx, dw; };
  const Case cases[] = {{64, 288, 768, true, true}, {37, 101, 203, true, false}, {1, 2048, 5632, false, true}, {7, 33, 1, true, true}};
  for (const Case& c : cases) {
    auto x = randf(size_t(c.T * c.in)), w = randf(size_t(c.out * c.in), 0.05f), dy = randf(size_t(c.T * c.out));
    auto dx0 = randf(size_t(c.T * c.in)), dw0 = randf(size_t(c.out * c.in), 0.01f);
    auto rdx = dx0, rdw = dw0;
    cpu.matmul_backward(c.dx ? rdx.data() : nullptr, c.dw ? rdw.data() : nullptr, dy.data(), x.data(), w.data(), c.T, c.in, c.out);
    Dev<float> gx(x), gw(w), gdy(dy), gdx(dx0), gdw(dw0);
    cu::matmul_backward(c.dx ? gdx.p : nullptr, c.dw ? gdw.p : nullptr, gdy.p, gx.p, gw.p, c.T, c.in, c.out);
    std::string s = shape(c.T, c.in, c.out, false);
    report("matmul_backward", s + " dx" + (c.dx ? "" : " (null)"), gdx.get(), rdx, kF32);
    report("matmul_backward", s + " dW" + (c.dw ? "" : " (null)"), gdw.get(), rdw, kF32);
  }
}

void check_rmsnorm(Backend& cpu) {
  struct Case { int64_t T, dim; float eps; };
  for (const Case& c : {Case{1, 4096, 1e-5f}, Case{64, 288, 1e-5f}, Case{7, 101, 1e-6f}}) {
    auto x = randf(size_t(c.T * c.dim), 3.f), w = randf(size_t(c.dim));
    std::vector<float> ref(x.size());
    cpu.rmsnorm_forward(ref.data(), x.data(), w.data(), c.T, c.dim, c.eps);
    Dev<float> gx(x), gw(w), gy(x.size());
    cu::rmsnorm_forward(gy.p, gx.p, gw.p, c.T, c.dim, c.eps);
    report("rmsnorm_forward", "T=" + std::to_string(c.T) + " dim=" + std::to_string(c.dim), gy.get(), ref, kF32);
  }
}

RopeTable rope_table(int hd, bool interleaved, RopeScalingType type, float factor, float theta) {
  Config c;
  c.head_dim = hd;
  c.rope_interleaved = interleaved;
  c.rope_theta = theta;
  c.rope_scaling.type = type;
  c.rope_scaling.factor = factor;
  return make_rope_table(c);
}

void check_rope(Backend& cpu) {
  struct Case { const char* name; RopeTable r; int n_heads; std::vector<int> pos; };
  std::vector<int> prefill(64), decode{5000}, mixed{0, 1, 2, 700, 701, 3};
  for (int i = 0; i < 64; i++) prefill[size_t(i)] = i;
  const Case cases[] = {
      {"interleaved hd=48 q 6 heads prefill", rope_table(48, true, RopeScalingType::None, 1, 10000), 6, prefill},
      {"interleaved hd=48 k 2 heads decode@5000", rope_table(48, true, RopeScalingType::None, 1, 10000), 2, decode},
      {"rotate-half hd=128 llama3 q 8 heads prefill", rope_table(128, false, RopeScalingType::Llama3, 8, 500000), 8, prefill},
      {"rotate-half hd=128 llama3 k 2 heads mixed", rope_table(128, false, RopeScalingType::Llama3, 8, 500000), 2, mixed},
      {"rotate-half hd=64 linear x4 decode@5000", rope_table(64, false, RopeScalingType::Linear, 4, 10000), 4, decode},
  };
  for (const Case& c : cases) {
    const int64_t T = int64_t(c.pos.size());
    auto x = randf(size_t(T * c.n_heads * c.r.head_dim));
    auto ref = x;
    cpu.rope_forward(ref.data(), c.pos.data(), T, c.n_heads, c.r);
    Dev<float> gx(x);
    Dev<int> gp(c.pos);
    Dev<double> gf(c.r.inv_freq);
    cu::DeviceRope dr;
    dr.head_dim = c.r.head_dim;
    dr.interleaved = c.r.interleaved;
    dr.pos_scale = c.r.pos_scale;
    dr.inv_freq = gf.p;
    cu::rope_forward(gx.p, gp.p, T, c.n_heads, dr);
    report("rope_forward", c.name, gx.get(), ref, kF32);
  }
}

void check_attention(Backend& cpu) {
  struct Case { const char* name; int n_head, n_kv, hd, n_ctx, slots; std::vector<int> pos, slot; };
  std::vector<int> p64(64), s64(64, 1), mp, ms;
  for (int i = 0; i < 64; i++) p64[size_t(i)] = i;
  for (int i = 10; i <= 20; i++) mp.push_back(i), ms.push_back(0);
  for (int i = 0; i <= 5; i++) mp.push_back(i), ms.push_back(1);
  mp.push_back(50), ms.push_back(2);
  const Case cases[] = {
      {"GQA 8/2 hd=64 prefill T=64 (slot 1)", 8, 2, 64, 128, 2, p64, s64},
      {"GQA 32/8 hd=128 decode T=1 @100", 32, 8, 128, 256, 1, {100}, {0}},
      {"GQA 6/3 hd=40 mixed 3 slots T=18", 6, 3, 40, 64, 3, mp, ms},
      {"MHA 4/4 hd=256 T=3 @0,1,2", 4, 4, 256, 16, 1, {0, 1, 2}, {0, 0, 0}},
      {"GQA 8/1 hd=8 T=5 @31..35", 8, 1, 8, 40, 1, {31, 32, 33, 34, 35}, {0, 0, 0, 0, 0}},
  };
  for (const Case& c : cases) {
    const int64_t T = int64_t(c.pos.size()), kvs = int64_t(c.n_kv) * c.hd, qd = int64_t(c.n_head) * c.hd;
    const size_t cache_n = size_t(c.slots) * size_t(c.n_ctx) * size_t(kvs);
    auto kc = randf(cache_n), vc = randf(cache_n), k = randf(size_t(T * kvs)), v = randf(size_t(T * kvs)), q = randf(size_t(T * qd));
    std::vector<float> ref(static_cast<size_t>(T * qd));
    auto rk = kc, rv = vc;
    KvView cv{rk.data(), rv.data(), c.n_ctx, int(kvs)};
    cpu.kv_store(cv, k.data(), v.data(), c.pos.data(), c.slot.data(), T);
    cpu.attention_forward(ref.data(), q.data(), cv, c.pos.data(), c.slot.data(), T, c.n_head, c.n_kv, c.hd);
    Dev<float> gkc(kc), gvc(vc), gk(k), gv(v), gq(q), gout(ref.size());
    Dev<int> gp(c.pos), gs(c.slot);
    KvView gview{gkc.p, gvc.p, c.n_ctx, int(kvs)};
    cu::kv_store(gview, gk.p, gv.p, gp.p, gs.p, T);
    cu::attention_forward(gout.p, gq.p, gview, gp.p, gs.p, T, c.n_head, c.n_kv, c.hd);
    report("kv_store", c.name, gkc.get(), rk, 0.0);
    report("kv_store (v)", c.name, gvc.get(), rv, 0.0);
    report("attention_forward", c.name, gout.get(), ref, kF32);
  }
}

void check_pointwise(Backend& cpu) {
  const int64_t n = 64 * 1000 + 3;
  auto g = randf(size_t(n), 3.f), u = randf(size_t(n));
  std::vector<float> ref(static_cast<size_t>(n));
  cpu.swiglu_forward(ref.data(), g.data(), u.data(), n);
  {
    Dev<float> gg(g), gu(u), gh(static_cast<size_t>(n));
    cu::swiglu_forward(gh.p, gg.p, gu.p, n);
    report("swiglu_forward", "n=64003", gh.get(), ref, kF32);
    cu::swiglu_forward(gg.p, gg.p, gu.p, n);
    report("swiglu_forward", "n=64003 in place (h = g)", gg.get(), ref, kF32);
  }
  auto y = randf(100003), x = randf(100003);
  auto ry = y;
  cpu.add_inplace(ry.data(), x.data(), int64_t(x.size()));
  Dev<float> gy(y), gx(x);
  cu::add_inplace(gy.p, gx.p, int64_t(x.size()));
  report("add_inplace", "n=100003", gy.get(), ry, 0.0);
}

void check_losses(Backend& cpu) {
  struct Case { int64_t R, V; };
  for (const Case& c : {Case{64, 32000}, Case{3, 513}, Case{1, 128256}}) {
    auto logits = randf(size_t(c.R * c.V), 3.f);
    std::vector<int> target(static_cast<size_t>(c.R));
    std::uniform_int_distribution<int> pick(0, int(c.V) - 1);
    for (int64_t r = 0; r < c.R; r++) target[size_t(r)] = r % 5 == 3 ? -1 : pick(rng);
    std::vector<double> rlp(size_t(c.R), 12345.0);  // rows with target < 0 keep this
    std::vector<int> ram(size_t(c.R), -7);
    cpu.logprob_forward(logits.data(), c.R, c.V, target.data(), rlp.data(), ram.data());
    Dev<float> gl(logits);
    Dev<int> gt(target), gam(ram);
    Dev<double> glp(rlp);
    cu::logprob_forward(gl.p, c.R, c.V, gt.p, glp.p, gam.p);
    std::string s = "R=" + std::to_string(c.R) + " V=" + std::to_string(c.V);
    report("logprob_forward", s + " logprob", glp.get(), rlp, kF32);
    report("logprob_forward", s + " argmax (exact)", gam.get(), ram, 0.0);
  }
  struct CeCase { int64_t N, V; double scale; bool grad; int zero_every; };
  for (const CeCase& c : {CeCase{64, 32000, 0.5, true, 4}, CeCase{17, 1000, 1.0, false, 0}, CeCase{5, 513, 1.0, true, 1}}) {
    auto logits = randf(size_t(c.N * c.V), 3.f);
    std::vector<int> target(static_cast<size_t>(c.N));
    std::vector<float> weight(static_cast<size_t>(c.N));
    std::uniform_int_distribution<int> pick(0, int(c.V) - 1);
    std::uniform_real_distribution<float> wd(0.5f, 2.f);
    for (int64_t n = 0; n < c.N; n++) {
      target[size_t(n)] = pick(rng);
      weight[size_t(n)] = c.zero_every && n % c.zero_every == 0 ? 0.f : wd(rng);
    }
    std::vector<float> rd(c.grad ? size_t(c.N * c.V) : 0, 7.f);
    double rloss = cpu.crossentropy_forward_backward(c.grad ? rd.data() : nullptr, logits.data(), target.data(), weight.data(), c.N, c.V, c.scale);
    Dev<float> gl(logits), gw(weight), gd(std::vector<float>(c.grad ? rd.size() : 1, 7.f));
    Dev<int> gt(target);
    double gloss = cu::crossentropy_forward_backward(c.grad ? gd.p : nullptr, gl.p, gt.p, gw.p, c.N, c.V, c.scale);
    std::string s = "N=" + std::to_string(c.N) + " V=" + std::to_string(c.V) + (c.zero_every == 1 ? " all weights 0" : c.zero_every ? " some weights 0" : "");
    report("crossentropy", s + " loss", std::vector<double>{gloss}, std::vector<double>{rloss}, kF32);
    if (c.grad) report("crossentropy", s + " dlogits", gd.get(), rd, kF32);
  }
}

// ---- training ops (train.cu) against the float templates of train_ops.h ----

std::string nd(int64_t N, int64_t D) { return "N=" + std::to_string(N) + " D=" + std::to_string(D); }

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
    cu::DeviceRope dr;
    dr.head_dim = c.r.head_dim;
    dr.interleaved = c.r.interleaved;
    dr.pos_scale = c.r.pos_scale;
    dr.inv_freq = gf.p;
    cu::rope_apply(gx.p, gp.p, N, c.n_heads, dr, c.sign);
    report("rope_apply", c.name, gx.get(), ref, kF32);
  }
}

void check_attention_train() {
  struct Case { const char* name; int B, Tn, nh, nkv, hd; };
  const Case cases[] = {
      {"GQA 8/2 hd=64 B=2 Tn=37", 2, 37, 8, 2, 64},
      {"MHA 4/4 hd=32 B=3 Tn=20", 3, 20, 4, 4, 32},
      {"GQA 6/3 hd=40 B=1 Tn=70", 1, 70, 6, 3, 40},
      {"GQA 4/1 hd=256 B=2 Tn=5", 2, 5, 4, 1, 256},
      {"MHA 2/2 hd=8 B=1 Tn=1", 1, 1, 2, 2, 8},
  };
  for (const Case& c : cases) {
    const int64_t rows = int64_t(c.B) * c.Tn, qd = int64_t(c.nh) * c.hd, kd = int64_t(c.nkv) * c.hd;
    const size_t an = size_t(c.B) * size_t(c.nh) * size_t(c.Tn) * size_t(c.Tn);
    auto q = randf(size_t(rows * qd)), k = randf(size_t(rows * kd)), v = randf(size_t(rows * kd)), dout = randf(size_t(rows * qd));
    auto dq0 = randf(q.size()), dk0 = randf(k.size()), dv0 = randf(v.size());
    std::vector<float> rout(q.size()), ratt(an);
    ops::attention_forward<float>(rout.data(), ratt.data(), q.data(), k.data(), v.data(), c.B, c.Tn, c.nh, c.nkv, c.hd);
    auto rdq = dq0, rdk = dk0, rdv = dv0;
    ops::attention_backward<float>(rdq.data(), rdk.data(), rdv.data(), dout.data(), ratt.data(), q.data(), k.data(), v.data(), c.B, c.Tn, c.nh,
                                   c.nkv, c.hd);
    Dev<float> gq(q), gk(k), gv(v), gout(q.size()), gatt(an), gdout(dout), gratt(ratt), gdq(dq0), gdk(dk0), gdv(dv0);
    cu::attention_forward_train(gout.p, gatt.p, gq.p, gk.p, gv.p, c.B, c.Tn, c.nh, c.nkv, c.hd);
    cu::attention_backward(gdq.p, gdk.p, gdv.p, gdout.p, gratt.p, gq.p, gk.p, gv.p, c.B, c.Tn, c.nh, c.nkv, c.hd);
    report("attention_fwd_train", std::string(c.name) + " out", gout.get(), rout, kF32);
    report("attention_fwd_train", std::string(c.name) + " att", gatt.get(), ratt, kF32);
    report("attention_backward", std::string(c.name) + " dq +=", gdq.get(), rdq, kF32);
    report("attention_backward", std::string(c.name) + " dk +=", gdk.get(), rdk, kF32);
    report("attention_backward", std::string(c.name) + " dv +=", gdv.get(), rdv, kF32);
  }
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
    cu::attention_backward(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, 2, 0, 8, 2, 64);
    cu::swiglu_backward(nullptr, nullptr, nullptr, nullptr, nullptr, 0);
    cu::embedding_backward(nullptr, nullptr, nullptr, 0, 64);
    cu::scale_inplace(nullptr, 2.f, 0);
    cu::lora_dropout(nullptr, nullptr, 0, 0.1, 1, 2, 3, 4);
    cu::adamw_step(nullptr, nullptr, nullptr, nullptr, 0, 1.f, 0.9f, 0.999f, 1e-8f, 0.f, 1e-3, 0.1, 0.001);
    report("training ops", "empty sizes (sum_squares of n=0)", std::vector<double>{cu::sum_squares(nullptr, 0)}, std::vector<double>{0.0}, 0.0);
  }
}

double time_ms(const std::function<void()>& f, int reps) {
  f();
  cu::device_synchronize();
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; i++) f();
  cu::device_synchronize();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / reps;
}

// The dense bf16 tensor-core peak of a device (TFLOP/s, datasheet figures without sparsity), looked up by
// the name the driver reports; 0 when the device is not in the table. Where a card has no bf16 (T4), its
// fp16 peak. GeForce figures are fp16/bf16 with fp16 accumulation (fp32 accumulation is half on those).
struct Peak {
  double tflops;
  const char* source;
};
Peak bf16_peak(const std::string& name) {
  struct Row {
    const char* key;
    Peak peak;
  };
  static const Row rows[] = {
      // the most specific names first (H100 PCIe before H100, L40S before L40)
      {"H200 NVL", {835, "H200 NVL"}},     {"H200", {989, "H100/H200 SXM"}},       {"H100 PCIe", {756, "H100 PCIe"}},
      {"H100 NVL", {835, "H100 NVL"}},     {"H100", {989, "H100/H200 SXM"}},       {"H800", {989, "H800 SXM"}},
      {"A100", {312, "A100"}},             {"A800", {312, "A800"}},                {"L40S", {362, "L40S"}},
      {"RTX 4090", {165, "RTX 4090 (fp16 accumulate)"}}, {"RTX 3090", {71, "RTX 3090 (fp16 accumulate)"}},
      {"Tesla T4", {65, "T4 (fp16: no bf16)"}},
  };
  for (const Row& r : rows)
    if (name.find(r.key) != std::string::npos) return r.peak;
  return {0, nullptr};
}

// mean ms of f over enough calls to fill ~0.2 s (3 to 50), after one warm-up call
double time_adaptive_ms(const std::function<void()>& f) {
  f();
  cu::device_synchronize();
  auto t0 = std::chrono::steady_clock::now();
  f();
  cu::device_synchronize();
  const double one = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const int reps = std::max(3, std::min(50, int(200.0 / std::max(one, 1e-3))));
  return time_ms(f, reps);
}

// Timings of the kernels as they are, printed, never checked: matrix-product throughput at LLaMA-7B shapes
// as a share of the device's dense bf16 peak, and attention at decode and prefill. On the CPU emulator the
// shapes are tiny (the emulator runs kernels on CPU fibers: its times say nothing of a GPU; the rows only
// show that the bench runs).
void bench(int cc, const std::string& device_name) {
  const bool emulated = device_name.rfind("Tailor CUDA emulator", 0) == 0;
  struct Shape {
    int64_t T, in, out;
    const char* what;
  };
  std::vector<Shape> shapes;
  if (emulated)
    shapes = {{64, 256, 256, "tiny (emulator)"}, {32, 256, 688, "tiny (emulator)"}};
  else
    shapes = {{2048, 4096, 4096, "LLaMA-7B q/k/v/o"}, {2048, 4096, 11008, "LLaMA-7B gate/up"}, {2048, 11008, 4096, "LLaMA-7B down"}};
  const Peak peak = emulated ? Peak{0, nullptr} : bf16_peak(device_name);
  std::printf("\nbench (timings, not checks): matrix products y[T, out] = x[T, in] · W[out, in]^T, fp32 accumulation; mean of repeated calls after a warm-up\n");
  if (peak.tflops > 0)
    std::printf("device: %s, sm_%d; dense bf16 peak %.0f TFLOP/s (%s datasheet)\n\n", device_name.c_str(), cc, peak.tflops, peak.source);
  else
    std::printf("device: %s, sm_%d; dense bf16 peak unknown (not in the table of tailor_cudacheck's bench)%s\n\n", device_name.c_str(), cc,
                emulated ? " — emulated: times say nothing of a GPU" : "");
  std::printf("| kernel | T × in × out | shape | ms | TFLOP/s | share of bf16 peak |\n|---|---|---|---|---|---|\n");
  int64_t max_x = 0, max_w = 0, max_y = 0;
  for (const Shape& s : shapes) {
    max_x = std::max(max_x, s.T * s.in);
    max_w = std::max(max_w, s.out * s.in);
    max_y = std::max(max_y, s.T * s.out);
  }
  Dev<float> x(randf(static_cast<size_t>(max_x))), w(randf(static_cast<size_t>(max_w), 0.02f)), y(static_cast<size_t>(max_y));
  Dev<uint16_t> xb(static_cast<size_t>(max_x)), wb(static_cast<size_t>(max_w));
  cu::f32_to_bf16(xb.p, x.p, max_x);
  cu::f32_to_bf16(wb.p, w.p, max_w);
  auto row = [&](const char* kernel, const Shape& s, double ms) {
    const double tflops = 2.0 * double(s.T) * double(s.in) * double(s.out) / ms / 1e9;
    char share[48];
    if (peak.tflops > 0) std::snprintf(share, sizeof share, "%.1f %%", 100.0 * tflops / peak.tflops);
    else std::snprintf(share, sizeof share, "peak unknown");
    std::printf("| %s | %lld × %lld × %lld | %s | %.3f | %.3g | %s |\n", kernel, (long long)s.T, (long long)s.in, (long long)s.out, s.what, ms, tflops,
                share);
    std::fflush(stdout);
  };
  for (const Shape& s : shapes) {
    row("matmul_forward fp32 tiled", s, time_adaptive_ms([&] { cu::matmul_forward(y.p, x.p, w.p, s.T, s.in, s.out, false); }));
    if (cc >= 80)
      row("matmul_forward_bf16 tensor cores (WMMA)", s,
          time_adaptive_ms([&] { cu::matmul_forward_bf16(y.p, xb.p, wb.p, s.T, s.in, s.out, false, cu::Bf16Path::TensorCores); }));
    else
      row("matmul_forward_bf16 tiled (sm_75: no bf16 tensor cores)", s,
          time_adaptive_ms([&] { cu::matmul_forward_bf16(y.p, xb.p, wb.p, s.T, s.in, s.out, false, cu::Bf16Path::Fallback); }));
  }

  const int n_head = 32, n_kv = 8, hd = 128, n_ctx = emulated ? 64 : 4096;
  const int64_t kvs = int64_t(n_kv) * hd;
  Dev<float> kc(randf(size_t(n_ctx * kvs))), vc(randf(size_t(n_ctx * kvs)));
  KvView kv{kc.p, vc.p, n_ctx, int(kvs)};
  std::printf("\n");
  for (int64_t Tq : {int64_t(1), int64_t(emulated ? 16 : 512)}) {
    std::vector<int> pos(static_cast<size_t>(Tq)), slot(size_t(Tq), 0);
    for (int64_t i = 0; i < Tq; i++) pos[size_t(i)] = int(n_ctx - Tq + i);
    Dev<int> gp(pos), gs(slot);
    Dev<float> q(randf(size_t(Tq * n_head * hd))), o(size_t(Tq * n_head * hd));
    const double ms = time_ms([&] { cu::attention_forward(o.p, q.p, kv, gp.p, gs.p, Tq, n_head, n_kv, hd); }, emulated ? 1 : Tq == 1 ? 50 : 3);
    const double bytes = 2.0 * n_ctx * kvs * 4;  // K and V of the slot, if each were read once per call
    std::printf("attention 32/8 hd=128 T=%-4lld at the end of %d positions  %8.3f ms  (KV %.0f MB: %.0f GB/s if read once)\n", (long long)Tq,
                n_ctx, ms, bytes / 1e6, bytes / ms / 1e6);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int device = 0;
  bool do_bench = false, bench_only = false, random_model = false;
  std::vector<std::string> models;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--device" && i + 1 < argc) device = std::atoi(argv[++i]);
    else if (a == "--bench") do_bench = true;
    else if (a == "--bench-only") do_bench = bench_only = true;
    else if (a == "--model" && i + 1 < argc) models.push_back(argv[++i]);
    else if (a == "--random-model") random_model = true;
    else {
      std::fprintf(stderr, "usage: tailor_cudacheck [--device N] [--bench | --bench-only] [--model PATH]... [--random-model]\n");
      return 2;
    }
  }
  CudaStatus st = cuda_devices(true);
  std::printf("tailor_cudacheck: CUDA runtime %s, driver %s, kernels for sm %s\n", cuda_version_string(st.runtime_version).c_str(),
              cuda_version_string(st.driver_version).c_str(), st.architectures.c_str());
  if (!st.available) {
    std::printf("no CUDA device: %s — skipped\n", st.reason.c_str());
    return 77;
  }
  const CudaDevice* dev = nullptr;
  for (const CudaDevice& d : st.devices)
    if (d.index == device) dev = &d;
  if (!dev || !dev->supported) {
    std::printf("no CUDA device: device %d is not a usable device — skipped\n", device);
    return 77;
  }
  try {
    cu::set_device(device);
    const int cc = cu::compute_capability();
    std::printf("device %d: %s, sm_%d, %d SMs, %.1f GiB (%.1f GiB free)\n\n", dev->index, dev->name.c_str(), cc, dev->multiprocessors,
                double(dev->total_memory) / (1 << 30), double(dev->free_memory) / (1 << 30));
    if (bench_only) {
      bench(cc, dev->name);
      return 0;
    }
    BackendOptions bo;
    auto cpu = make_cpu_backend(bo);
    std::printf("%-22s %-44s %11s %11s %9s  %s\n", "op", ("case (reference: " + cpu->name() + ")").c_str(), "max abs", "rel", "tol", "");
    check_matmul(*cpu);
    check_matmul_bf16(*cpu, cc);
    check_matmul_backward(*cpu);
    check_rmsnorm(*cpu);
    check_rope(*cpu);
    check_attention(*cpu);
    check_pointwise(*cpu);
    check_losses(*cpu);
    check_rmsnorm_train();
    check_rope_apply();
    check_attention_train();
    check_train_pointwise();
    cu::device_synchronize();
    if (!models.empty() || random_model) {
      std::printf("\nwhole models, CPU backend against the CUDA backend (%s):\n", cpu->name().c_str());
      int n = 0;
      failures += check_whole_models(models, random_model, device, &n);
      checks += n;
    }
    std::printf("\n%d checks, %d failed\n", checks, failures);
    if (do_bench) bench(cc, dev->name);
  } catch (const EngineError& e) {
    std::printf("\nerror (%s): %s\n", error_code_name(e.code()), e.what());
    return 1;
  }
  return failures ? 1 : 0;
}
