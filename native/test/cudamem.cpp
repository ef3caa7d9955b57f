// cudamem.cpp — tailor_cudacheck --memory-plan SHAPE: docs/memory-plan.md checked by the CUDA backend's own
// allocator accounting. Builds a random-weight model of the given shape in host memory (no download), binds
// it to the CUDA backend in bf16, then measures with memory_stats(): the weights; the LoRA parameters,
// gradients and AdamW moments; the peak of one LoRA training step (batch × sequence as in the plan, rank 8
// on all seven projections, activation checkpointing); the peak of one Taylor importance pass; and the peak
// of one evaluation batch (the plan's largest: 4,096 computed tokens over 8,082 positions). Prints
// the measured GiB beside the plan's estimate for the same setting. Shapes: "7b" (LLaMA-7B: the largest the
// plan covers), "tiny" (seconds, for the emulator).
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "backend.h"
#include "errors.h"
#include "grad_pass.h"
#include "model.h"
#include "prune.h"
#include "runtime.h"
#include "trainer.h"

using namespace tailor;

namespace {

struct Shape {
  int dim, layers, heads, ffn, vocab, batch, seq;
  double plan_weights, plan_lora, plan_step, plan_taylor, plan_eval;  // GiB, from docs/memory-plan.md (0: no estimate)
  int eval_len, eval_shared;  // the evaluation batch: two requests of eval_len tokens, the second taking eval_shared from the first
};

double gib(uint64_t b) { return double(b) / double(1ull << 30); }

// fills the arena with small values quickly (several threads, a cheap generator)
void fill(Arena& a) {
  const size_t n = a.size();
  const unsigned th = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> ts;
  for (unsigned t = 0; t < th; t++)
    ts.emplace_back([&, t] {
      uint64_t x = 0x9E3779B97F4A7C15ull * (t + 1);
      for (size_t i = n * t / th; i < n * (t + 1) / th; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        a[i] = (float(x >> 40) * (1.f / 16777216.f) - 0.5f) * 0.04f;
      }
    });
  for (auto& t : ts) t.join();
}

}  // namespace

int memory_plan_run(int device, const std::string& which) {
  Shape s;
  // 7b's evaluation batch is BoolQ's largest in the plan: 4,041 + 55 = 4,096 computed tokens, 8,082 positions
  if (which == "7b") s = {4096, 32, 32, 11008, 32000, 4, 256, 12.55, 0.30, 1.26, 15.03, 13.98, 4041, 3986};
  else if (which == "tiny") s = {128, 4, 4, 344, 512, 2, 32, 0, 0, 0, 0, 0, 200, 150};
  else fail(ErrorCode::ARG, "--memory-plan takes 7b or tiny");
  auto t0 = std::chrono::steady_clock::now();
  auto secs = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  Model m;
  Config& c = m.cfg;
  c.format = "hf", c.architecture = "llama", c.source_dtype = "F32";
  c.dim = s.dim, c.n_layers = s.layers, c.head_dim = s.dim / s.heads, c.vocab_size = s.vocab, c.context_length = 4096;
  c.rope_theta = 10000.f, c.tied = false;
  for (int l = 0; l < s.layers; l++) c.layers.push_back({s.heads, s.heads, s.ffn});
  model_allocate(m);
  fill(m.arena);
  for (auto& L : m.layers)
    for (float* p : {L.attn_norm, L.ffn_norm}) std::fill(p, p + c.dim, 1.f);
  std::fill(m.out_norm, m.out_norm + c.dim, 1.f);
  std::printf("memory plan: %s-shaped random model, %zu parameters, built in %.1f s\n", which.c_str(), m.arena.size(), secs());

  BackendOptions bo;
  bo.bf16_weights = true;
  auto gpu = make_cuda_backend(device, bo);
  const Backend::MemoryStats s0 = gpu->memory_stats();
  gpu->bind_weights(m);
  const Backend::MemoryStats s1 = gpu->memory_stats();
  const uint64_t weights = s1.in_use - s0.in_use;

  // one LoRA step: batch × seq tokens, every token weighted, rank 8 on all projections, checkpointing
  std::mt19937 rng(3);
  std::vector<Example> data;
  for (int b = 0; b < s.batch; b++) {
    Example e;
    for (int t = 0; t <= s.seq; t++) e.ids.push_back(int(rng() % uint32_t(s.vocab)));
    e.weight.assign(size_t(s.seq), 1.f);
    data.push_back(e);
  }
  TrainConfig tc;
  tc.lora.rank = 8, tc.lora.alpha = 16;
  tc.batch = s.batch, tc.micro_batch = s.batch, tc.max_len = s.seq, tc.checkpoint_activations = true;
  uint64_t lora = 0, step_peak = 0;
  double step_s = 0;
  {
    Trainer tr(m, *gpu, tc, data);
    lora = gpu->memory_stats().in_use - s1.in_use;
    gpu->reset_peak();
    auto a = std::chrono::steady_clock::now();
    StepStats st = tr.train_step(CancelToken{});
    step_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count();
    step_peak = gpu->memory_stats().peak - s1.in_use - lora;
    std::printf("memory plan: one LoRA step, loss %.4f, %.2f s (%.0f tokens/s)\n", st.loss, step_s, double(s.batch * s.seq) / step_s);
  }
  // one Taylor importance pass (10 × 64 calibration tokens, as in the plan)
  std::vector<Example> calib;
  for (int b = 0; b < 10; b++) {
    Example e;
    for (int t = 0; t <= 64; t++) e.ids.push_back(int(rng() % uint32_t(s.vocab)));
    e.weight.assign(64, 1.f);
    calib.push_back(e);
  }
  gpu->reset_peak();
  TaylorStats ts = taylor_tensor_stats(m, *gpu, calibration_batch(calib), CancelToken{});
  const uint64_t taylor_peak = gpu->memory_stats().peak - s0.in_use;
  std::printf("memory plan: Taylor pass loss %.4f\n", ts.loss);
  // one evaluation batch as eval.ts makes them (batches of up to 4,096 computed tokens): the second request's
  // prefix in common with the first is copied in the packed cache, not computed
  std::vector<std::vector<int>> reqs(2);
  for (int t = 0; t < s.eval_len; t++) reqs[0].push_back(int(rng() % uint32_t(s.vocab)));
  // eval_shared + 1 tokens in common: the last of them is computed again, as it predicts the first of its own
  reqs[1].assign(reqs[0].begin(), reqs[0].begin() + s.eval_shared + 1);
  reqs[1].push_back((reqs[0][size_t(s.eval_shared) + 1] + 1) % s.vocab);
  while (int(reqs[1].size()) < s.eval_len) reqs[1].push_back(int(rng() % uint32_t(s.vocab)));
  ScoreOptions so;
  so.max_batch_tokens = 2 * s.eval_len - s.eval_shared;
  gpu->reset_peak();
  auto scored = score_sequences(m, *gpu, reqs, so, CancelToken{}, nullptr);
  const uint64_t eval_peak = gpu->memory_stats().peak - s0.in_use;
  const Backend::MemoryStats s2 = gpu->memory_stats();
  if (scored[1].shared != s.eval_shared) fail(ErrorCode::INTERNAL, "memory plan: the evaluation batch shared " + std::to_string(scored[1].shared) + " positions");
  std::printf("memory plan: evaluation batch of %lld computed tokens over %d positions (%d shared), mean log-prob %.4f\n\n",
              (long long)so.max_batch_tokens, 2 * s.eval_len, scored[1].shared, scored[0].nll_sum / -double(s.eval_len - 1));

  std::printf("%-58s %12s %12s\n", "part (CUDA allocator's accounting, bf16 weights)", "measured GiB", "plan GiB");
  auto line = [](const char* what, uint64_t b, double plan) {
    if (plan > 0) std::printf("%-58s %12.2f %12.2f\n", what, gib(b), plan);
    else std::printf("%-58s %12.3f %12s\n", what, gib(b), "-");
  };
  line("weights (bf16, norms fp32)", weights, s.plan_weights);
  line("LoRA params + grads + AdamW m, v (fp32)", lora, s.plan_lora);
  line("one training step above weights + LoRA (peak)", step_peak, s.plan_step);
  line("Taylor importance pass, all included (peak)", taylor_peak, s.plan_taylor);
  line("evaluation batch, all included (peak)", eval_peak, s.plan_eval);
  std::printf("%-58s %12.2f %12s\n", "device: total", gib(s2.device_total), "");
  std::printf("%-58s %12.2f %12s\n", "device: free now (cache held: see next line)", gib(s2.device_free), "");
  std::printf("%-58s %12.2f %12s\n", "allocator cache held for reuse", gib(s2.cached), "");
  std::printf("%-58s %12.3f %12s\n", "held outside the allocator (cuBLASLt workspace)", gib(s2.library), "");
  std::printf("memory plan done in %.1f s\n", secs());
  return 0;
}
