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
// --golden JSON: the first model's golden file (bf16 argmax rows); --memory-plan 7b|tiny: cudamem.cpp alone;
// --products: the matrix-product rows alone (our kernels and cuBLASLt; the emulator's ASan run uses it).
// --half 1|2: one half of the rows (1: the products, norms, RoPE and inference attention; 2: the rest and the
// whole models), so that two processes of a sanitizer build, one thread each, run them side by side.
// --races: the rows up to 5M multiply-adds (the emulator's ThreadSanitizer run); --memcheck: up to 50M (its
// AddressSanitizer run); see cudacheck.h.
//   tailor_cudacheck [--device N] [--bench | --bench-only] [--model PATH]... [--golden JSON] [--random-model]
//                    [--products | --half 1|2] [--memory-plan 7b|tiny] [--races | --memcheck]
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
#include "bf16ref.h"
#include "device.h"
#include "errors.h"
#include "forward.h"
#include "kernels.h"

using namespace tailor;

#include "cudacheck.h"

using namespace cudacheck;

int memory_plan_run(int device, const std::string& which);  // cudamem.cpp
void check_training_ops(Backend& cpu, Backend& gpu);         // cudacheck_train.cpp
void check_attention_ops(Backend& cpu);                      // cudacheck_attention.cpp
void bench(int cc, const std::string& device_name);          // cudabench.cpp
void check_whole_models(const std::vector<std::string>& paths, bool random_model, int device, const std::string& golden_path);  // cudamodel.cpp

namespace {

// the block tiles a product's rows run at: both (128 and 64) for the small and middle cases, which cover
// every edge; only the one the kernels pick (0) for a LLaMA-sized one, which the emulator multiplies slowly
// (and the sanitizer runs slower still)
std::vector<int> tiles_for(int64_t T, int64_t in, int64_t out) {
  return T * in * out > (int64_t(1) << 24) ? std::vector<int>{0} : std::vector<int>{128, 64};
}
std::string tile_name(int tile) { return tile ? std::to_string(tile) : "auto"; }

// how the tensor-core kernel moves these operands (cu::tc_copy_bytes), for a row's name; every way it has is
// recorded, and check_tc_copies fails unless the rows covered all three
int g_tc_copies_seen = 0;  // bit 0: element loads, bit 1: 4-byte copies, bit 2: 16-byte copies
std::string tc_copies(const void* x, const void* w, int64_t K, int64_t N, bool w_rows_are_k) {
  const int b = cu::tc_copy_bytes(x, w, K, N, w_rows_are_k);
  g_tc_copies_seen |= b == 16 ? 4 : b == 4 ? 2 : 1;
  return b == 16 ? ", 16-byte copies" : b == 4 ? ", 4-byte copies" : ", element loads";
}

void check_matmul(Backend& cpu) {
  struct Case { int64_t T, in, out; bool acc; };
  const Case cases[] = {{1, 288, 768, false}, {64, 288, 768, false}, {37, 101, 203, true}, {64, 2048, 5632, false}, {5, 0, 7, false},
                        {130, 1000, 1, true}, {300, 200, 264, true}};
  cu::lt_set_enabled(0);  // our kernel, at both block tiles (cuBLASLt's rows are check_cublaslt's)
  for (const Case& c : cases) {
    if (left_out_for_sanitizer(c.T * c.in * c.out)) continue;
    auto x = randf(size_t(c.T * c.in)), w = randf(size_t(c.out * c.in), 0.05f), y0 = randf(size_t(c.T * c.out));
    auto ref = y0;
    cpu.matmul_forward(ref.data(), x.data(), w.data(), c.T, c.in, c.out, c.acc);
    for (int tile : tiles_for(c.T, c.in, c.out)) {
      Dev<float> dx(x), dw(w), dy(y0);
      {
        ForcedTile forced(tile);
        cu::matmul_forward(dy.p, dx.p, dw.p, c.T, c.in, c.out, c.acc);
      }
      report("matmul_forward", shape(c.T, c.in, c.out, c.acc) + " tile " + tile_name(tile), dy.get(), ref, kF32);
    }
  }
  cu::lt_set_enabled(-1);
}

void check_matmul_bf16(Backend& cpu, int cc) {
  struct Case { int64_t T, in, out; bool acc; };
  // the tensor-core kernel's cases: both block tiles; 16-byte loads (in a multiple of 8) and element loads; K
  // steps cut short; several blocks in both directions; rows and columns past the edge
  const Case cases[] = {{1, 288, 768, false},  {64, 288, 768, false},  {37, 101, 203, true}, {64, 2048, 5632, false},
                        {3, 17, 1, false},     {300, 200, 264, true},  {129, 72, 136, false}, {130, 101, 130, true},
                        {45, 130, 98, true}};  // in even, not a multiple of 8: 4-byte copies
  for (const Case& c : cases) {
    if (left_out_for_sanitizer(c.T * c.in * c.out)) continue;
    auto x = randf(size_t(c.T * c.in)), w = randf(size_t(c.out * c.in), 0.05f), y0 = randf(size_t(c.T * c.out));
    const auto xb = bf16_vector(x), wb = bf16_vector(w);
    const auto xr = bf16_floats(xb), wr = bf16_floats(wb);  // the bf16 values as floats
    auto ref_rounded = y0, ref_f32 = y0;
    cpu.matmul_forward(ref_rounded.data(), xr.data(), wr.data(), c.T, c.in, c.out, c.acc);
    cpu.matmul_forward(ref_f32.data(), x.data(), w.data(), c.T, c.in, c.out, c.acc);
    Dev<float> dxf(x), dwf(w);
    Dev<uint16_t> dxb(x.size()), dwb(w.size());
    cu::f32_to_bf16(dxb.p, dxf.p, int64_t(x.size()));
    cu::f32_to_bf16(dwb.p, dwf.p, int64_t(w.size()));
    auto conv = dwb.get();
    report("f32_to_bf16", "W of " + shape(c.T, c.in, c.out, false), conv, wb, 0.0);
    struct Path { cu::Bf16Path path; int tile; };
    std::vector<Path> paths;
    for (int tile : tiles_for(c.T, c.in, c.out)) paths.push_back({cu::Bf16Path::TensorCores, tile});
    paths.push_back({cu::Bf16Path::Fallback, 0});
    for (auto& p : paths) {
      std::string name = std::string("matmul_bf16 ") + (p.path == cu::Bf16Path::Fallback ? "tiled" : "wmma " + tile_name(p.tile));
      if (p.path == cu::Bf16Path::TensorCores && cc < 80) {
        note(name.c_str(), shape(c.T, c.in, c.out, c.acc), "n/a (sm_" + std::to_string(cc) + " has no bf16 tensor cores)");
        continue;
      }
      const std::string how = p.path == cu::Bf16Path::TensorCores ? tc_copies(dxb.p, dwb.p, c.in, c.out, false) : "";
      Dev<float> dy(y0);
      {
        ForcedTile forced(p.tile);
        cu::matmul_forward_bf16(dy.p, dxb.p, dwb.p, c.T, c.in, c.out, c.acc, p.path);
      }
      auto got = dy.get();
      report(name.c_str(), shape(c.T, c.in, c.out, c.acc) + how + " vs bf16 in", got, ref_rounded, kF32);
      report(name.c_str(), shape(c.T, c.in, c.out, c.acc) + how + " vs fp32 in", got, ref_f32, kBf16);
    }
    // operands that are not 16-byte aligned (in a multiple of 8): one element past an aligned address the
    // kernel reads them element by element, two past it by 4-byte copies
    if (cc >= 80 && c.in % 8 == 0 && c.T > 1 && tiles_for(c.T, c.in, c.out).size() > 1) {
      for (int off : {1, 2}) {
        std::vector<uint16_t> xo(size_t(off), 0), wo(size_t(off), 0);  // the allocations are aligned, these are not
        xo.insert(xo.end(), xb.begin(), xb.end());
        wo.insert(wo.end(), wb.begin(), wb.end());
        Dev<uint16_t> xs(xo), ws(wo);
        Dev<float> dy(y0);
        const std::string how = tc_copies(xs.p + off, ws.p + off, c.in, c.out, false);
        cu::matmul_forward_bf16(dy.p, xs.p + off, ws.p + off, c.T, c.in, c.out, c.acc, cu::Bf16Path::TensorCores);
        report("matmul_bf16 wmma", shape(c.T, c.in, c.out, c.acc) + " x, W " + (off == 1 ? "at odd addresses" : "4 bytes past 16") + how, dy.get(),
               ref_rounded, kF32);
      }
    }
  }
}

// every way the tensor-core kernel moves its operands ran in the rows above (an sm_80+ device)
void check_tc_copies(int cc) {
  if (cc < 80) return;
  const std::vector<float> seen = {float(g_tc_copies_seen & 1), float((g_tc_copies_seen >> 1) & 1), float((g_tc_copies_seen >> 2) & 1)};
  report("matmul wmma copies", "element loads, 4-byte and 16-byte copies all run", seen, std::vector<float>{1, 1, 1}, 0.0);
}

// fp32 x with bf16 W (the backend's bf16 weights): against the CPU on the bf16 W, with x rounded to bf16
// too on the tensor-core path (what the hardware multiplies); dx of the backward through bf16 W
void check_matmul_bf16w(Backend& cpu, int cc) {
  struct Case { int64_t T, in, out; bool acc; };
  const Case cases[] = {{1, 288, 768, false}, {64, 288, 768, true}, {37, 101, 203, true}, {3, 17, 1, false}, {70, 130, 97, true},
                        {200, 136, 264, true}, {130, 130, 97, false}, {45, 130, 98, true}};
  for (const Case& c : cases) {
    if (left_out_for_sanitizer(c.T * c.in * c.out)) continue;
    auto x = randf(size_t(c.T * c.in)), w = randf(size_t(c.out * c.in), 0.05f), y0 = randf(size_t(c.T * c.out));
    const auto wb = bf16_vector(w);
    const auto wr = bf16_floats(wb), xr = rounded_bf16(x);
    auto ref_tiled = y0, ref_tc = y0;
    cpu.matmul_forward(ref_tiled.data(), x.data(), wr.data(), c.T, c.in, c.out, c.acc);
    cpu.matmul_forward(ref_tc.data(), xr.data(), wr.data(), c.T, c.in, c.out, c.acc);
    Dev<float> dx(x);
    Dev<uint16_t> dw(wb), scratch(size_t(std::max<int64_t>(1, c.T * c.in)));
    {
      Dev<float> dy(y0);
      cu::matmul_forward_bf16w(dy.p, dx.p, dw.p, c.T, c.in, c.out, c.acc, nullptr, cu::Bf16Path::Fallback);
      report("matmul_bf16w tiled", shape(c.T, c.in, c.out, c.acc) + " vs bf16 W", dy.get(), ref_tiled, kF32);
    }
    if (cc >= 80) {
      Dev<float> dy(y0);
      cu::matmul_forward_bf16w(dy.p, dx.p, dw.p, c.T, c.in, c.out, c.acc, scratch.p, cu::Bf16Path::TensorCores);
      report("matmul_bf16w wmma", shape(c.T, c.in, c.out, c.acc) + tc_copies(scratch.p, dw.p, c.in, c.out, false) + " vs bf16 W and x", dy.get(), ref_tc,
             kF32);
    }
    auto g = randf(size_t(c.T * c.out)), dx0 = randf(size_t(c.T * c.in));
    const auto gr = rounded_bf16(g);
    auto rdx = dx0, rdx_tc = dx0;
    cpu.matmul_backward(rdx.data(), nullptr, g.data(), x.data(), wr.data(), c.T, c.in, c.out);
    cpu.matmul_backward(rdx_tc.data(), nullptr, gr.data(), x.data(), wr.data(), c.T, c.in, c.out);
    Dev<float> dg(g);
    Dev<uint16_t> gscratch(size_t(std::max<int64_t>(1, c.T * c.out)));
    {
      Dev<float> ddx(dx0);
      cu::matmul_backward_dx_bf16w(ddx.p, dg.p, dw.p, c.T, c.in, c.out, nullptr, cu::Bf16Path::Fallback);
      report("matmul_bwd_dx_bf16w", shape(c.T, c.in, c.out, false) + " tiled dx +=", ddx.get(), rdx, kF32);
    }
    for (int tile : tiles_for(c.T, c.in, c.out)) {
      if (cc < 80) break;
      Dev<float> ddx(dx0);
      {
        ForcedTile forced(tile);
        cu::matmul_backward_dx_bf16w(ddx.p, dg.p, dw.p, c.T, c.in, c.out, gscratch.p, cu::Bf16Path::TensorCores);
      }
      // K is out and N is in here, W's rows run along k
      report("matmul_bwd_dx_bf16w", shape(c.T, c.in, c.out, false) + " wmma " + tile_name(tile) + tc_copies(gscratch.p, dw.p, c.out, c.in, true) + " dx += (bf16 dy)",
             ddx.get(), rdx_tc, kF32);
    }
  }
}

void check_matmul_backward(Backend& cpu) {
  struct Case { int64_t T, in, out; bool dx, dw; };
  const Case cases[] = {{64, 288, 768, true, true}, {37, 101, 203, true, false}, {1, 2048, 5632, false, true}, {7, 33, 1, true, true},
                        {150, 136, 260, true, true}, {9, 1, 20, true, true}};
  cu::lt_set_enabled(0);  // our kernel, at both block tiles
  for (const Case& c : cases) {
    if (left_out_for_sanitizer(c.T * c.in * c.out)) continue;
    auto x = randf(size_t(c.T * c.in)), w = randf(size_t(c.out * c.in), 0.05f), dy = randf(size_t(c.T * c.out));
    auto dx0 = randf(size_t(c.T * c.in)), dw0 = randf(size_t(c.out * c.in), 0.01f);
    auto rdx = dx0, rdw = dw0;
    cpu.matmul_backward(c.dx ? rdx.data() : nullptr, c.dw ? rdw.data() : nullptr, dy.data(), x.data(), w.data(), c.T, c.in, c.out);
    for (int tile : tiles_for(c.T, c.in, c.out)) {
      Dev<float> gx(x), gw(w), gdy(dy), gdx(dx0), gdw(dw0);
      {
        ForcedTile forced(tile);
        cu::matmul_backward(c.dx ? gdx.p : nullptr, c.dw ? gdw.p : nullptr, gdy.p, gx.p, gw.p, c.T, c.in, c.out);
      }
      std::string s = shape(c.T, c.in, c.out, false) + " tile " + tile_name(tile);
      report("matmul_backward", s + " dx" + (c.dx ? "" : " (null)"), gdx.get(), rdx, kF32);
      report("matmul_backward", s + " dW" + (c.dw ? "" : " (null)"), gdw.get(), rdw, kF32);
    }
  }
  cu::lt_set_enabled(-1);
}

// the products with cuBLASLt off (our kernels) and on, on the same inputs: each against the CPU, the two
// against each other, and the lt_* calls themselves must run (not fall back) whenever cuBLASLt is active
void check_cublaslt(Backend& cpu, int cc) {
  cu::lt_set_enabled(-1);
  const bool on = cu::lt_enabled();
  note("cuBLASLt", on ? "active (the products above went through it)" : "not active (the products above ran our kernels)", cu::lt_status());
  struct Case { int64_t T, in, out; bool acc; };
  for (const Case& c : {Case{1, 288, 768, false}, Case{37, 101, 203, true}, Case{64, 256, 512, false}}) {
    auto x = randf(size_t(c.T * c.in)), w = randf(size_t(c.out * c.in), 0.05f), y0 = randf(size_t(c.T * c.out));
    auto dy = randf(size_t(c.T * c.out)), dx0 = randf(size_t(c.T * c.in)), dw0 = randf(size_t(c.out * c.in), 0.01f);
    const auto xb = bf16_vector(x), wb = bf16_vector(w), dyb = bf16_vector(dy);
    const auto xr = bf16_floats(xb), wr = bf16_floats(wb), dyr = bf16_floats(dyb);
    auto ref = y0, ref_b = y0, rdx = dx0, rdw = dw0, rdx_b = dx0;
    cpu.matmul_forward(ref.data(), x.data(), w.data(), c.T, c.in, c.out, c.acc);
    cpu.matmul_forward(ref_b.data(), xr.data(), wr.data(), c.T, c.in, c.out, c.acc);
    cpu.matmul_backward(rdx.data(), rdw.data(), dy.data(), x.data(), w.data(), c.T, c.in, c.out);
    cpu.matmul_backward(rdx_b.data(), nullptr, dyr.data(), x.data(), wr.data(), c.T, c.in, c.out);
    Dev<float> gx(x), gw(w), gdy(dy);
    Dev<uint16_t> gxb(xb), gwb(wb), gdyb(dyb), scratch(dy.size());
    const std::string s = shape(c.T, c.in, c.out, c.acc);
    std::vector<float> got[2][5];  // [off, on][fwd, dx, dW, bf16, bf16 dx]
    const char* what[5] = {" fwd", " bwd dx", " bwd dW", " bf16 vs bf16 in", " bf16 dx vs bf16 in"};
    for (int lt = 0; lt < (on ? 2 : 1); lt++) {
      cu::lt_set_enabled(lt);
      Dev<float> y(y0), dx(dx0), dw(dw0), yb(y0), dxb(dx0);
      cu::matmul_forward(y.p, gx.p, gw.p, c.T, c.in, c.out, c.acc);
      cu::matmul_backward(dx.p, dw.p, gdy.p, gx.p, gw.p, c.T, c.in, c.out);
      if (cc >= 80) cu::matmul_forward_bf16(yb.p, gxb.p, gwb.p, c.T, c.in, c.out, c.acc);
      if (cc >= 80) cu::matmul_backward_dx_bf16w(dxb.p, gdy.p, gwb.p, c.T, c.in, c.out, scratch.p);
      got[lt][0] = y.get(), got[lt][1] = dx.get(), got[lt][2] = dw.get(), got[lt][3] = yb.get(), got[lt][4] = dxb.get();
      const std::vector<float>* refs[5] = {&ref, &rdx, &rdw, &ref_b, &rdx_b};
      for (int k = 0; k < (cc >= 80 ? 5 : 3); k++) report(lt ? "matmul cuBLASLt" : "matmul kernels", s + what[k], got[lt][k], *refs[k], kF32);
    }
    cu::lt_set_enabled(-1);
    if (!on) continue;
    for (int k = 0; k < (cc >= 80 ? 5 : 3); k++) report("cuBLASLt vs kernels", s + what[k], got[1][k], got[0][k], kF32);
    // each entry point runs (a refusal here would silently fall back above)
    Dev<float> y(y0), dx(dx0), dw(dw0);
    const bool all = cu::lt_matmul_f32(y.p, gx.p, gw.p, c.T, c.in, c.out, c.acc) && cu::lt_matmul_backward_dx_f32(dx.p, gdy.p, gw.p, c.T, c.in, c.out) &&
                     cu::lt_matmul_backward_dw_f32(dw.p, gdy.p, gx.p, c.T, c.in, c.out) &&
                     (cc < 80 || (cu::lt_matmul_bf16w(y.p, gxb.p, gwb.p, c.T, c.in, c.out, true) &&
                                  cu::lt_matmul_backward_dx_bf16(dx.p, gdyb.p, gwb.p, c.T, c.in, c.out)));
    checks++;
    if (!all) failures++;
    note("cuBLASLt calls", s + " f32 fwd/dx/dW, bf16 fwd/dx", all ? "ok (all ran)" : "FAIL (refused: " + cu::lt_status() + ")");
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
    const cu::DeviceRope dr = device_rope(c.r, gf.p);
    cu::rope_forward(gx.p, gp.p, T, c.n_heads, dr);
    report("rope_forward", c.name, gx.get(), ref, kF32);
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
  // sampling's candidates: exactly the CPU's (values and ids), with ties (values on a 1/8 grid) and −inf
  struct TopCase { int64_t V; int k; float temp; };
  for (const TopCase& c : {TopCase{32000, 40, 0.7f}, TopCase{513, 513, 1.f}, TopCase{4096, 1024, 1.3f}, TopCase{128256, 64, 0.9f}, TopCase{7, 1, 2.f}}) {
    auto logits = randf(size_t(c.V), 3.f);
    for (size_t i = 0; i < logits.size(); i++) logits[i] = i % 97 == 5 ? -INFINITY : std::round(logits[i] * 8.f) / 8.f;
    std::vector<float> rv(size_t(c.k));
    std::vector<int> ri(size_t(c.k));
    cpu.topk_scaled(rv.data(), ri.data(), logits.data(), c.V, c.k, c.temp);
    Dev<float> gl(logits), gv(static_cast<size_t>(c.k));
    Dev<int> gi(static_cast<size_t>(c.k));
    cu::topk_scaled(gv.p, gi.p, gl.p, c.V, c.k, c.temp);
    std::string s = "V=" + std::to_string(c.V) + " k=" + std::to_string(c.k) + " T=" + std::to_string(c.temp).substr(0, 3);
    report("topk_scaled", s + " values (exact)", gv.get(), rv, 0.0);
    report("topk_scaled", s + " ids, ties by id (exact)", gi.get(), ri, 0.0);
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

// the summary line's note on the rows --races or --memcheck left out
std::string left_out_note() {
  return row_work_limit > 0 ? " (" + std::to_string(left_out) + " larger cases left out for the sanitizer)" : "";
}

}  // namespace

int main(int argc, char** argv) {
  int device = 0;
  bool do_bench = false, bench_only = false, random_model = false, products_only = false;
  int half = 0;
  std::vector<std::string> models;
  std::string golden, memory_plan;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--device" && i + 1 < argc) device = std::atoi(argv[++i]);
    else if (a == "--bench") do_bench = true;
    else if (a == "--bench-only") do_bench = bench_only = true;
    else if (a == "--model" && i + 1 < argc) models.push_back(argv[++i]);
    else if (a == "--random-model") random_model = true;
    else if (a == "--products") products_only = true;  // the matrix-product rows alone (our kernels and cuBLASLt)
    else if (a == "--half" && i + 1 < argc) half = std::atoi(argv[++i]);  // 1 | 2: that half of the rows
    else if (a == "--races") row_work_limit = 5'000'000;     // the ThreadSanitizer build's run: the smaller rows
    else if (a == "--memcheck") row_work_limit = 50'000'000;  // the AddressSanitizer build's: all but the LLaMA-sized
    else if (a == "--golden" && i + 1 < argc) golden = argv[++i];              // golden JSON of the first --model (bf16 argmax rows)
    else if (a == "--memory-plan" && i + 1 < argc) memory_plan = argv[++i];  // 7b | tiny: docs/memory-plan.md measured
    else {
      std::fprintf(stderr,
                   "usage: tailor_cudacheck [--device N] [--bench | --bench-only] [--model PATH]... [--golden JSON] [--random-model] "
                   "[--memory-plan 7b|tiny] [--products | --half 1|2] [--races | --memcheck]\n");
      return 2;
    }
  }
  if (half < 0 || half > 2 || (half && products_only)) {
    std::fprintf(stderr, "tailor_cudacheck: --half takes 1 or 2, and not with --products\n");
    return 2;
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
    if (!memory_plan.empty()) return memory_plan_run(device, memory_plan);  // alone: its own report, no checks
    if (bench_only) {
      bench(cc, dev->name);
      return 0;
    }
    BackendOptions bo;
    auto cpu = make_cpu_backend(bo);
    std::printf("%-22s %-44s %11s %11s %9s  %s\n", "op", ("case (reference: " + cpu->name() + ")").c_str(), "max abs", "rel", "tol", "");
    if (half != 2) {
      check_matmul(*cpu);
      check_matmul_bf16(*cpu, cc);
      check_matmul_bf16w(*cpu, cc);
      check_tc_copies(cc);
      check_matmul_backward(*cpu);
      check_cublaslt(*cpu, cc);
      if (products_only) {
        std::printf("\n%d checks, %d failed (the matrix products only)%s\n", checks, failures, left_out_note().c_str());
        return failures ? 1 : 0;
      }
      check_rmsnorm(*cpu);
      check_rope(*cpu);
      check_attention_ops(*cpu);
    }
    if (half != 1) {
      rng.seed(20240601);  // the second half's inputs whether or not the first half ran
      check_pointwise(*cpu);
      check_losses(*cpu);
      check_training_ops(*cpu, *make_cuda_backend(device));
      check_transfers();
      cu::device_synchronize();
      if (!models.empty() || random_model) {
        std::printf("\nwhole models, CPU backend against the CUDA backend (%s):\n", cpu->name().c_str());
        check_whole_models(models, random_model, device, golden);
      }
    }
    const std::string which = half ? " (half " + std::to_string(half) + " of the rows)" : "";
    std::printf("\n%d checks, %d failed%s%s\n", checks, failures, which.c_str(), left_out_note().c_str());
    if (do_bench) bench(cc, dev->name);
  } catch (const EngineError& e) {
    std::printf("\nerror (%s): %s\n", error_code_name(e.code()), e.what());
    return 1;
  }
  return failures ? 1 : 0;
}
