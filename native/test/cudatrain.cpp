// cudatrain.cpp — the training part of tailor_cudacheck's whole-model rows: the same model trained and
// measured on the CPU backend and on the CUDA backend. Rows: LoRA training (rank 4 on every projection,
// dropout 0.1, micro-batches accumulated into each AdamW step, clipping on) — the loss and gradient norm
// of every step, the trained adapter, the evaluation loss, and the GPU run again with activation
// checkpointing; the pruner's Taylor statistics per tensor and its group scores, and the groups a 20% and
// a 50% prune would remove (identical sets); LoRA on bf16 weights; and the caching allocator's accounting.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backend.h"
#include "bf16ref.h"
#include "cudacheck.h"
#include "errors.h"
#include "grad_pass.h"
#include "model.h"
#include "prune.h"
#include "trainer.h"

using namespace tailor;

namespace {

using cudacheck::row;

double rel(double a, double b) { return std::fabs(a - b) / std::max(std::fabs(b), 1e-30); }

// normwise relative difference of two vectors (non-finite: +inf)
double normwise(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0, s = 0;
  for (size_t i = 0; i < a.size(); i++) {
    if (!std::isfinite(a[i])) return INFINITY;
    d = std::max(d, double(std::fabs(a[i] - b[i])));
    s = std::max(s, double(std::fabs(b[i])));
  }
  return d / std::max(s, 1e-30);
}

// seeded examples: 10..24 tokens, the first third a prompt (weight 0)
std::vector<Example> examples(const Model& m, int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Example> out;
  for (int i = 0; i < n; i++) {
    Example e;
    int len = 10 + int(rng() % 15);
    e.ids.push_back(1);
    for (int t = 1; t < len; t++) e.ids.push_back(3 + int(rng() % uint64_t(m.cfg.vocab_size - 3)));
    for (int t = 0; t + 1 < len; t++) e.weight.push_back(t < len / 3 ? 0.f : 1.f);
    out.push_back(e);
  }
  return out;
}

TrainConfig lora_config(bool checkpoint, int64_t head_chunk_floats = int64_t(1) << 25) {
  TrainConfig tc;
  tc.lora.rank = 4;
  tc.lora.alpha = 8;
  tc.lora.dropout = 0.1f;
  tc.optim.lr = 5e-3f;
  tc.optim.warmup_steps = 1;
  tc.optim.clip = 0.5f;
  tc.optim.weight_decay = 0.01f;
  tc.epochs = 2;
  tc.batch = 4;
  tc.micro_batch = 2;
  tc.max_len = 24;
  tc.seed = 11;
  tc.checkpoint_activations = checkpoint;
  tc.head_chunk_floats = head_chunk_floats;
  return tc;
}

struct Curve {
  std::vector<StepStats> steps;
  std::vector<float> params;
  double eval = 0;
};

Curve train(Model& m, Backend& be, bool checkpoint, int64_t head_chunk_floats = int64_t(1) << 25) {
  auto data = examples(m, 8, 5);
  Trainer t(m, be, lora_config(checkpoint, head_chunk_floats), data);
  Curve c;
  while (!t.done()) c.steps.push_back(t.train_step(CancelToken{}));
  t.state_to_host();
  c.params.assign(t.params().begin(), t.params().end());
  c.eval = t.eval_loss(examples(m, 4, 9), CancelToken{});
  return c;
}

void check_training(Model& m, const std::string& label, Backend& cpu, Backend& gpu) {
  // bc: checkpointing, and the head in chunks of 5 rows (cross-entropy fused with the head)
  Curve a = train(m, cpu, false), b = train(m, gpu, false), bc = train(m, gpu, true, int64_t(m.cfg.vocab_size) * 5);
  double dl = 0, dn = 0, dlc = 0;
  for (size_t i = 0; i < a.steps.size(); i++) {
    dl = std::max(dl, rel(b.steps[i].loss, a.steps[i].loss));
    dn = std::max(dn, rel(b.steps[i].grad_norm, a.steps[i].grad_norm));
    dlc = std::max(dlc, std::max(rel(bc.steps[i].loss, a.steps[i].loss), rel(bc.steps[i].grad_norm, a.steps[i].grad_norm)));
  }
  const std::string steps = std::to_string(a.steps.size()) + " steps";
  row("LoRA training", label + " loss, " + steps + " (rel)", dl, 1e-4, dl <= 1e-4);
  row("LoRA training", label + " grad norm, " + steps + " (rel)", dn, 1e-4, dn <= 1e-4);
  // AdamW divides by √v: an update is ~lr whatever the gradient's size, so the adapter inherits the
  // gradients' relative error, not more
  double dp = normwise(b.params, a.params);
  row("LoRA training", label + " trained adapter (normwise)", dp, 1e-3, dp <= 1e-3);
  double de = rel(b.eval, a.eval);
  row("LoRA training", label + " eval loss after training (rel)", de, 1e-4, de <= 1e-4);
  row("LoRA training", label + " GPU, checkpointing + head in 5-row chunks", dlc, 1e-4, dlc <= 1e-4);
}

// LoRA on bf16 weights (tensor cores where the device has them): the first step's loss is the forward of
// the bf16 model; against a CPU run on the bf16-rounded weights (with the weight products' inputs rounded
// too on tensor cores) it must be within half of bf16's own effect on that loss (within 1e-4 on the tiled
// path, whose arithmetic is the reference's); the whole curve against fp32 is reported
void check_training_bf16(Model& m, const std::string& label, Backend& cpu, int device) {
  auto gpu = cudacheck::harness_backend(device, true);
  gpu->bind_weights(m);
  const bool tc = on_tensor_cores(*gpu);
  const cuda::LtCalls lt_before = cuda::lt_calls();
  Curve f = train(m, cpu, false), g = train(m, *gpu, false);
  // where cuBLASLt is active (and bf16 has tensor cores) the frozen bf16 weights' products go through it,
  // forward and the backward's dx
  const cuda::LtCalls lt_after = cuda::lt_calls();
  const uint64_t fwd = lt_after.bf16 - lt_before.bf16, dx = lt_after.dx_bf16 - lt_before.dx_bf16;
  uint64_t least = 0;  // one forward's (or backward's) products of the layers' weights
  for (const LayerShape& L : m.cfg.layers) least += (L.n_head > 0 ? 4 : 0) + (L.ffn > 0 ? 3 : 0);
  if (tc && cuda::lt_enabled())
    row("LoRA on bf16 weights", label + " products through cuBLASLt (fewest of fwd, dx)", double(std::min(fwd, dx)), double(least),
        fwd >= least && dx >= least, " (" + std::to_string(fwd) + " forward, " + std::to_string(dx) + " dx; at least one step's)");
  Arena saved = round_weights_bf16(m);
  Bf16InputsCpu cpu_tc(cpu, &m, cuda::attention_tc_usable, cuda::kAttentionTcMinTokens);  // on tensor cores the products' (and attention's) inputs are rounded too
  Curve r = train(m, tc ? static_cast<Backend&>(cpu_tc) : cpu, false);
  m.arena = saved;
  const double dev = std::fabs(g.steps[0].loss - r.steps[0].loss), effect = std::fabs(r.steps[0].loss - f.steps[0].loss);
  const double ratio = dev / std::max(effect, 1e-12);
  row("LoRA on bf16 weights", label + " step-1 loss: |GPU − CPU bf16| / bf16 effect", ratio, 0.5, tc ? ratio <= 0.5 : dev <= 1e-4 * std::fabs(r.steps[0].loss),
      tc ? "" : " (tiled: within 1e-4 rel)");
  double worst = 0;
  for (size_t i = 0; i < f.steps.size(); i++) worst = std::max(worst, rel(g.steps[i].loss, f.steps[i].loss));
  std::printf("%-22s %-44s %11.3e %11s %9s  (reported)\n", "LoRA on bf16 weights", (label + " loss curve vs fp32 CPU (rel)").c_str(), worst, "", "");
}

void check_pruning(const Model& m, const std::string& label, Backend& cpu, Backend& gpu) {
  auto calib = examples(m, 6, 21);
  TrainBatch batch = calibration_batch(calib);
  TaylorStats sa = taylor_tensor_stats(m, cpu, batch, CancelToken{}), sb = taylor_tensor_stats(m, gpu, batch, CancelToken{});
  double d = rel(sb.loss, sa.loss);
  for (size_t l = 0; l < sa.layers.size(); l++)
    for (size_t k = 0; k < 9; k++) {
      const TensorTaylor &x = sa.layers[l][k], &y = sb.layers[l][k];
      if (x.sum_abs_wg > 0) d = std::max(d, rel(y.sum_abs_wg, x.sum_abs_wg));
      if (x.grad_sq > 0) d = std::max(d, rel(y.grad_sq, x.grad_sq));
    }
  for (int h = 0; h < 3; h++)
    if (sa.head[h].sum_abs_wg > 0) d = std::max(d, rel(sb.head[h].sum_abs_wg, sa.head[h].sum_abs_wg));
  row("pruning statistics", label + " Taylor Σ|w·g|, Σg² per tensor (rel)", d, 1e-3, d <= 1e-3);

  for (ImportanceMethod method : {ImportanceMethod::Taylor, ImportanceMethod::WandaSp}) {
    const std::string nm = method == ImportanceMethod::Taylor ? "taylor" : "wanda-sp";
    GroupScores ga = group_importance(m, cpu, calib, method, GroupAgg::Sum, 1, CancelToken{});
    GroupScores gb = group_importance(m, gpu, calib, method, GroupAgg::Sum, 1, CancelToken{});
    // all MLP channels of all layers ranked together, as a global prune would
    std::vector<std::pair<double, int64_t>> ra, rb;
    double ds = 0;
    int64_t id = 0;
    for (size_t l = 0; l < ga.mlp.size(); l++)
      for (size_t k = 0; k < ga.mlp[l].size(); k++, id++) {
        ra.push_back({ga.mlp[l][k], id});
        rb.push_back({gb.mlp[l][k], id});
        ds = std::max(ds, rel(gb.mlp[l][k], ga.mlp[l][k]));
      }
    for (size_t l = 0; l < ga.attn.size(); l++)
      for (size_t k = 0; k < ga.attn[l].size(); k++) ds = std::max(ds, rel(gb.attn[l][k], ga.attn[l][k]));
    row("pruning statistics", label + " group scores, " + nm + " (rel)", ds, 1e-3, ds <= 1e-3);
    std::sort(ra.begin(), ra.end());
    std::sort(rb.begin(), rb.end());
    for (double ratio : {0.2, 0.5}) {
      size_t n = size_t(double(ra.size()) * ratio);
      std::vector<int64_t> sa_, sb_;
      for (size_t i = 0; i < n; i++) sa_.push_back(ra[i].second), sb_.push_back(rb[i].second);
      std::sort(sa_.begin(), sa_.end());
      std::sort(sb_.begin(), sb_.end());
      int diff = 0;
      for (size_t i = 0; i < n; i++) diff += sa_[i] != sb_[i];
      row("pruning selection", label + " " + nm + " " + std::to_string(int(ratio * 100)) + "% of MLP channels: differing picks", double(diff), 0, diff == 0);
    }
  }
}

void check_allocator(Backend& gpu) {
  Backend::MemoryStats s0 = gpu.memory_stats();
  // cuBLASLt's workspace (made with its handle) is counted, outside the allocator's own bytes
  const uint64_t ws = tailor::cuda::lt_enabled() ? uint64_t(32) << 20 : 0;
  const uint64_t lib = gpu.memory_stats().library;
  row("caching allocator", "cuBLASLt workspace reported as library bytes", std::fabs(double(lib) - double(ws)), 0, lib == ws);
  s0 = gpu.memory_stats();
  {
    BackendBuffer a, b;
    a.reserve(gpu, 3 << 20);
    b.reserve(gpu, 1000);
    Backend::MemoryStats s1 = gpu.memory_stats();
    bool ok = s1.in_use == s0.in_use + (3u << 20) + 1024 && s1.peak >= s1.in_use;
    row("caching allocator", "in use after 3 MiB + 1000 B (rounded)", double(s1.in_use - s0.in_use), 0, ok);
  }
  Backend::MemoryStats s2 = gpu.memory_stats();
  bool ok = s2.in_use == s0.in_use && s2.cached >= s0.cached + (3u << 20);
  row("caching allocator", "freed blocks return to the cache, not the driver", double(s2.cached - s0.cached), 0, ok);
  BackendBuffer c;
  c.reserve(gpu, (3 << 20) - 100);  // served from the cache: the device's free memory does not move
  Backend::MemoryStats s3 = gpu.memory_stats();
  ok = s3.device_free == s2.device_free && s3.cached == s2.cached - (3u << 20);
  row("caching allocator", "a smaller request reuses a cached block", double(s2.device_free - s3.device_free), 0, ok);
  try {
    BackendBuffer huge;
    huge.reserve(gpu, size_t(s3.device_total) + (size_t(1) << 30));
    row("caching allocator", "a request beyond the device is E_OOM", 1, 0, false, " (it succeeded)");
  } catch (const EngineError& e) {
    std::string msg = e.what();
    bool says = e.code() == ErrorCode::OOM && msg.find("MiB more needed") != std::string::npos && msg.find("free of") != std::string::npos &&
                msg.find("checkpointing") != std::string::npos;
    row("caching allocator", "a request beyond the device is E_OOM", 0, 0, says, says ? "" : std::string(" (message: ") + msg + ")");
  }
}

}  // namespace

void check_training_rows(Model& m, const std::string& label, Backend& cpu, Backend& gpu, int device) {
  check_training(m, label, cpu, gpu);
  check_training_bf16(m, label, cpu, device);
  check_pruning(m, label, cpu, gpu);
  check_allocator(gpu);
}
