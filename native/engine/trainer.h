// trainer.h — LoRA fine-tuning: examples (token ids with a per-token loss weight) in seeded epoch order,
// micro-batches of right-padded sequences accumulated into one optimizer step, global-norm gradient
// clipping, AdamW with linear warm-up then a constant or cosine schedule. Deterministic on the CPU:
// the same seed gives the same loss curve bit for bit, and a run restored from a checkpoint (LoRA
// weights, AdamW moments, step) continues exactly as the uninterrupted run — the data order and the
// dropout masks are functions of (seed, step), not state. Runs on any backend: on a device, the LoRA
// parameters, gradients and AdamW moments stay on the device between steps.
#pragma once
#include <cstdint>
#include <vector>

#include "backend.h"
#include "forward.h"
#include "lora.h"
#include "model.h"
#include "train_graph.h"

namespace tailor {

struct OptimConfig {
  float lr = 2e-4f;
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
  float weight_decay = 0.f;
  int warmup_steps = 0;
  bool cosine = true;        // false: constant after warm-up
  float min_lr_ratio = 0.f;  // cosine floor as a share of lr
  float clip = 1.f;          // global gradient-norm clip (0 = off)
};

struct Example {
  std::vector<int> ids;        // the whole sequence (BOS + prompt + completion)
  std::vector<float> weight;   // [ids.size()-1]: loss weight of predicting ids[t+1] (0 = prompt token)
};

struct TrainConfig {
  LoraConfig lora;
  OptimConfig optim;
  int epochs = 1;
  int batch = 8;          // sequences per optimizer step
  int micro_batch = 8;    // sequences per forward/backward (gradient accumulation when < batch)
  int max_len = 256;      // longer examples are truncated
  uint64_t seed = 0;
  bool checkpoint_activations = false;
  bool full = false;      // full fine-tuning: every base weight is trained (no LoRA); needs ~4× the model's memory
  int64_t head_chunk_floats = int64_t(1) << 25;  // logits per head chunk (TrainOptions::head_chunk_floats)
};

struct StepStats {
  int64_t step;       // optimizer steps done after this one
  double loss;        // mean loss over the step's weighted tokens
  double lr;
  double grad_norm;   // before clipping
  int64_t tokens;     // tokens processed (including prompt tokens)
};

class Trainer {
 public:
  // (full fine-tuning writes the model's weights in place)
  Trainer(Model& m, Backend& be, const TrainConfig& cfg, std::vector<Example> data);
  int64_t total_steps() const { return total_steps_; }
  int64_t step() const { return step_; }
  bool done() const { return step_ >= total_steps_; }
  // one optimizer step; throws E_CANCELLED leaving the state at the last completed step
  StepStats train_step(const CancelToken& cancel);
  // mean loss of `data` under the current weights (no dropout)
  double eval_loss(const std::vector<Example>& data, const CancelToken& cancel);

  const LoraLayout& layout() const { return lay_; }
  // the trained parameters: the LoRA arena, or (full) the model's own weight arena. On a device backend
  // the state lives on the device: state_to_host() refreshes these host copies before they are read, and
  // state_to_device() sends them back after they were written (both nothing to do on the CPU).
  Arena& params() { return cfg_.full ? m_.arena : p_; }
  std::vector<float>& adam_m() { return am_; }
  std::vector<float>& adam_v() { return av_; }
  void state_to_host();
  void state_to_device();
  void set_step(int64_t s) { step_ = s; }
  const TrainConfig& config() const { return cfg_; }
  Backend& backend() const { return be_; }
  double lr_at(int64_t step) const;

 private:
  std::vector<int> epoch_order(int64_t epoch) const;
  TrainBatch make_batch(const std::vector<const Example*>& ex) const;

  Model& m_;
  Backend& be_;
  TrainConfig cfg_;
  std::vector<Example> data_;
  LoraLayout lay_;
  RopeTable rope_;
  WeightsT<float> w_;
  Arena p_;                             // LoRA params (full fine-tuning: the model's arena)
  std::vector<float> g_, am_, av_;      // grads, AdamW moments (grads/moments cover the
                                        // model's arena when full); on a device backend, host copies
  BackendBuffer dp_, dg_, dm_, dv_;     // the same four on the device (device backends only)
  float *P_ = nullptr, *G_ = nullptr, *M_ = nullptr, *V_ = nullptr;  // where the backend reads them
  GradsT<float> full_grads_;            // full: gradient pointers into g_, laid out like the arena
  int64_t step_ = 0, steps_per_epoch_ = 0, total_steps_ = 0;
};

}  // namespace tailor
