// cudabench.cpp — tailor_cudacheck --bench: timings, never checks. Matrix products at LLaMA-7B shapes in
// TFLOP/s and as a share of the device's dense bf16 peak (a table by device name), inference attention, and
// the training attention's forward and backward (fp32 and bf16 tensor cores).
// On the CPU emulator the shapes are tiny and the times say nothing of a GPU.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "backend.h"
#include "cudacheck.h"
#include "kernels.h"
#include "transfer.h"

using namespace tailor;
using namespace cudacheck;

namespace {

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
}  // namespace

void bench(int cc, const std::string& device_name) {
  const bool emulated = device_name.rfind("Tailor CUDA emulator", 0) == 0;
  struct Shape {
    int64_t T, in, out;
    const char* what;
  };
  const std::vector<Shape> shapes =
      emulated ? std::vector<Shape>{{64, 256, 256, "tiny (emulator)"}, {32, 256, 688, "tiny (emulator)"}, {32, 172, 256, "tiny, in not a multiple of 8 (emulator)"}}
               : std::vector<Shape>{{2048, 4096, 4096, "LLaMA-7B q/k/v/o"}, {2048, 4096, 11008, "LLaMA-7B gate/up"}, {2048, 11008, 4096, "LLaMA-7B down"},
                                    {512, 4096, 4096, "LLaMA-7B q/k/v/o, 512 tokens"},
                                    // pruned to 5B (layers 4-29): LLM-Pruner's 7,444 channels, rows read 4 bytes at a time,
                                    // against --round-to 8's 7,440, read 16 bytes at a time
                                    {2048, 7444, 4096, "5B-pruned down, 7,444 channels"}, {2048, 7440, 4096, "5B-pruned down, 7,440 (--round-to 8)"}};
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
  // each product by every path there is: our kernels with cuBLASLt off (the automatic fp32 path would take it),
  // both tiles of the tensor-core kernel (the one the shape picks marked), and cuBLASLt where it is active
  const bool lt = cu::lt_enabled();
  for (const Shape& s : shapes) {
    const int picked = cu::product_tile_for(s.T, s.out);
    cu::lt_set_enabled(0);
    for (int tile : {128, 64}) {
      const std::string name = "matmul_forward fp32, tiled kernel, tile " + std::to_string(tile) + (tile == picked ? " (picked)" : "");
      ForcedTile forced(tile);
      row(name.c_str(), s, time_adaptive_ms([&] { cu::matmul_forward(y.p, x.p, w.p, s.T, s.in, s.out, false); }));
    }
    cu::lt_set_enabled(-1);
    if (lt) row("matmul_forward fp32, cuBLASLt", s, time_adaptive_ms([&] { cu::lt_matmul_f32(y.p, x.p, w.p, s.T, s.in, s.out, false); }));
    if (cc >= 80) {
      for (int tile : {128, 64}) {
        const std::string name = "matmul_forward_bf16, tensor-core kernel, tile " + std::to_string(tile) + (tile == picked ? " (picked)" : "");
        ForcedTile forced(tile);
        row(name.c_str(), s, time_adaptive_ms([&] { cu::matmul_forward_bf16(y.p, xb.p, wb.p, s.T, s.in, s.out, false, cu::Bf16Path::TensorCores); }));
      }
      if (lt) row("matmul_forward_bf16, cuBLASLt", s, time_adaptive_ms([&] { cu::lt_matmul_bf16w(y.p, xb.p, wb.p, s.T, s.in, s.out, false); }));
    } else {
      row("matmul_forward_bf16 tiled (sm_75: no bf16 tensor cores)", s,
          time_adaptive_ms([&] { cu::matmul_forward_bf16(y.p, xb.p, wb.p, s.T, s.in, s.out, false, cu::Bf16Path::Fallback); }));
    }
  }

  const int n_head = 32, n_kv = 8, hd = 128, n_ctx = emulated ? 64 : 4096;
  const int64_t kvs = int64_t(n_kv) * hd;
  Dev<float> kc(randf(size_t(n_ctx * kvs))), vc(randf(size_t(n_ctx * kvs)));
  KvView kv{kc.p, vc.p, n_ctx, int(kvs)};
  Dev<uint16_t> kc16(bf16_vector(kc.get())), vc16(bf16_vector(vc.get()));  // the bf16 mode's cache: the same values rounded, half the bytes
  KvView kv16{kc16.p, vc16.p, n_ctx, int(kvs), true};
  std::printf("\n");
  for (int64_t Tq : {int64_t(1), int64_t(emulated ? 32 : 512)}) {
    std::vector<int> pos(static_cast<size_t>(Tq)), slot(size_t(Tq), 0);
    for (int64_t i = 0; i < Tq; i++) pos[size_t(i)] = int(n_ctx - Tq + i);
    Dev<int> gp(pos), gs(slot);
    Dev<float> q(randf(size_t(Tq * n_head * hd))), o(size_t(Tq * n_head * hd));
    const double ms = time_ms([&] { cu::attention_forward(o.p, q.p, kv, gp.p, gs.p, Tq, n_head, n_kv, hd); }, emulated ? 1 : Tq == 1 ? 50 : 3);
    const double bytes = 2.0 * n_ctx * kvs * 4;  // K and V of the slot, if each were read once per call
    std::printf("attention 32/8 hd=128 T=%-4lld at the end of %d positions  %8.3f ms  (KV %.0f MB: %.0f GB/s if read once)\n", (long long)Tq,
                n_ctx, ms, bytes / 1e6, bytes / ms / 1e6);
    // decoding as the backend runs it: the keys split among blocks (given scratch), fp32 and bf16 caches
    const int64_t split = cu::attention_forward_scratch(Tq, n_head, hd, n_ctx);
    Dev<float> sc(size_t(std::max<int64_t>(split, 1)));
    float* scratch = split ? sc.p : nullptr;
    if (split) {
      const double mss = time_ms([&] { cu::attention_forward(o.p, q.p, kv, gp.p, gs.p, Tq, n_head, n_kv, hd, scratch); }, emulated ? 1 : 50);
      std::printf("attention 32/8 hd=128 T=%-4lld at the end of %d positions  %8.3f ms  split in %d (%.0f GB/s; one block a head: %.2f×)\n",
                  (long long)Tq, n_ctx, mss, cu::attention_splits(n_ctx), bytes / mss / 1e6, ms / mss);
    }
    const double ms16 = time_ms([&] { cu::attention_forward(o.p, q.p, kv16, gp.p, gs.p, Tq, n_head, n_kv, hd, scratch); }, emulated ? 1 : Tq == 1 ? 50 : 3);
    std::printf("attention 32/8 hd=128 T=%-4lld at the end of %d positions  %8.3f ms  bf16 cache%s (KV %.0f MB: %.0f GB/s if read once)\n",
                (long long)Tq, n_ctx, ms16, split ? ", split" : "", bytes / 2e6, bytes / 2 / ms16 / 1e6);
    if (Tq >= cu::kAttentionTcMinTokens && cc >= 80) {  // the bf16 mode's prompt path
      const double tms = time_ms([&] { cu::attention_forward_tc(o.p, q.p, kv, gp.p, gs.p, Tq, n_head, n_kv, hd); }, emulated ? 1 : 3);
      const double tms16 = time_ms([&] { cu::attention_forward_tc(o.p, q.p, kv16, gp.p, gs.p, Tq, n_head, n_kv, hd); }, emulated ? 1 : 3);
      const double flop = 4.0 * double(Tq) * n_head * hd * (n_ctx - (Tq - 1) / 2.0);  // q·k and p·v over each token's positions
      std::printf("attention 32/8 hd=128 T=%-4lld at the end of %d positions  %8.3f ms  bf16 tensor cores (%.3g TFLOP/s; fp32 kernel %.3g)\n",
                  (long long)Tq, n_ctx, tms, flop / tms / 1e9, flop / ms / 1e9);
      std::printf("attention 32/8 hd=128 T=%-4lld at the end of %d positions  %8.3f ms  bf16 tensor cores, bf16 cache (%.3g TFLOP/s)\n",
                  (long long)Tq, n_ctx, tms16, flop / tms16 / 1e9);
    }
  }
  // the training attention (flash-style, causal, forward and backward) at the GPU benchmark's LoRA shapes and at
  // LLaMA-7B's: the fp32 kernels (train.cu) and, on sm_80+, the bf16 tensor-core ones (attention_tc.cu, the bf16
  // mode's). FLOPs as FlashAttention counts them: forward 4·B·nh·hd·T(T+1)/2 (causal), backward 2.5× that
  struct AttShape {
    int B, T, nh, nkv, hd;
    const char* what;
  };
  const std::vector<AttShape> att_shapes =
      emulated ? std::vector<AttShape>{{1, 64, 2, 2, 64, "tiny (emulator)"}}
               : std::vector<AttShape>{{16, 256, 12, 12, 64, "stories110M-shape, the LoRA bench's batch"}, {4, 512, 32, 32, 128, "LLaMA-7B"},
                                       {1, 2048, 32, 32, 128, "LLaMA-7B"}};
  std::printf("\n| training attention | B × T, heads, hd | shape | forward ms | backward ms | TFLOP/s (fwd+bwd) | share of bf16 peak |\n"
              "|---|---|---|---|---|---|---|\n");
  for (const AttShape& a : att_shapes) {
    const int64_t nq = int64_t(a.B) * a.T * a.nh * a.hd, nk = int64_t(a.B) * a.T * a.nkv * a.hd;
    const size_t nrows = size_t(int64_t(a.B) * a.nh * a.T);
    Dev<float> q(randf(size_t(nq))), k(randf(size_t(nk))), v(randf(size_t(nk))), dout(randf(size_t(nq)));
    Dev<float> o{size_t(nq)}, lse{nrows}, dq{size_t(nq)}, dk{size_t(nk)}, dv{size_t(nk)}, scratch{nrows};
    const double fwd_flop = 4.0 * a.B * a.nh * a.hd * (double(a.T) * (a.T + 1) / 2);
    for (int tc = 0; tc < (cc >= 80 && cu::attention_tc_usable(a.hd) ? 2 : 1); tc++) {
      auto fwd = [&] {
        if (tc) cu::attention_forward_train_tc(o.p, lse.p, q.p, k.p, v.p, a.B, a.T, a.nh, a.nkv, a.hd);
        else cu::attention_forward_train(o.p, lse.p, q.p, k.p, v.p, a.B, a.T, a.nh, a.nkv, a.hd);
      };
      auto bwd = [&] {
        if (tc) cu::attention_backward_tc(dq.p, dk.p, dv.p, dout.p, o.p, lse.p, q.p, k.p, v.p, a.B, a.T, a.nh, a.nkv, a.hd, scratch.p);
        else cu::attention_backward(dq.p, dk.p, dv.p, dout.p, o.p, lse.p, q.p, k.p, v.p, a.B, a.T, a.nh, a.nkv, a.hd, scratch.p);
      };
      const double fms = time_adaptive_ms(fwd), bms = time_adaptive_ms(bwd);
      const double tflops = 3.5 * fwd_flop / (fms + bms) / 1e9;
      char share[48];
      if (peak.tflops > 0) std::snprintf(share, sizeof share, "%.1f %%", 100.0 * tflops / peak.tflops);
      else std::snprintf(share, sizeof share, "peak unknown");
      std::printf("| %s | %d × %d, %d/%d, %d | %s | %.3f | %.3f | %.3g | %s |\n", tc ? "bf16 tensor cores (attention_tc)" : "fp32 (train.cu)", a.B, a.T,
                  a.nh, a.nkv, a.hd, a.what, fms, bms, tflops, share);
      std::fflush(stdout);
    }
  }

  // host↔device copies of pageable memory: plain cudaMemcpy against the copy stream's page-locked double
  // buffering (cuda/transfer.h), and the bf16 weight upload with its rounding overlapped
  const size_t nb = emulated ? size_t(8) << 20 : size_t(1) << 30;
  std::vector<float> host(nb / sizeof(float), 0.5f);
  Dev<float> dbuf(nb / sizeof(float));
  cu::Transfer tr;
  std::vector<float> s0v(tr.chunk_bytes() / sizeof(float));
  Dev<float> st0(s0v.size()), st1(s0v.size());
  Dev<uint16_t> wbf(nb / sizeof(float));
  float* const stage[2] = {st0.p, st1.p};
  std::printf("\n| copy (%.0f MiB, pageable host memory) | ms | GB/s |\n|---|---|---|\n", double(nb) / (1 << 20));
  auto copy_row = [&](const char* what, const std::function<void()>& f) {
    const double ms = time_ms(f, emulated ? 1 : 5);
    std::printf("| %s | %.2f | %.1f |\n", what, ms, double(nb) / ms / 1e6);
  };
  copy_row("host → device, cudaMemcpy", [&] { cu::to_device(dbuf.p, host.data(), nb); });
  copy_row("host → device, copy stream (page-locked double buffer)", [&] { tr.upload(dbuf.p, host.data(), nb); });
  copy_row("host fp32 → device bf16, copy stream + rounding kernel", [&] { tr.upload_bf16(wbf.p, host.data(), host.size(), stage); });
  copy_row("device → host, cudaMemcpy", [&] { cu::to_host(host.data(), dbuf.p, nb); });
  copy_row("device → host, copy stream (page-locked double buffer)", [&] { tr.download(host.data(), dbuf.p, nb); });
}

