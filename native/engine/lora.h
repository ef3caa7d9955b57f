// lora.h — LoRA as PEFT defines it: for each targeted projection W[out, in] of each layer, A[r, in]
// (Kaiming-uniform init) and B[out, r] (zeros), y = x·Wᵀ + s·(dropout(x)·Aᵀ)·Bᵀ with s = alpha/r
// (or alpha/√r for rsLoRA). All LoRA parameters live in one arena so the optimizer is a flat loop.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model.h"

namespace tailor {

enum LoraTarget { kQ = 0, kK, kV, kO, kGate, kUp, kDown, kNumTargets };
const char* lora_target_name(int t);              // "q_proj", ..., "down_proj"
const char* lora_target_module(int t);            // "self_attn" or "mlp"

struct LoraConfig {
  int rank = 8;
  float alpha = 16.f;
  bool rslora = false;
  float dropout = 0.f;
  uint32_t targets = (1u << kNumTargets) - 1;  // bit t set = target t adapted
  float scale() const;
};

// in/out sizes of target t in layer l (0 when the projection is pruned away)
void lora_dims(const Config& c, int layer, int t, int64_t& in, int64_t& out);

struct LoraSlot {
  int64_t a = -1, b = -1;  // offsets of A[r, in] and B[out, r] in the arena (-1 = not adapted)
  int64_t in = 0, out = 0;
};

struct LoraLayout {
  LoraConfig cfg;
  std::vector<std::vector<LoraSlot>> slots;  // [layer][target]
  int64_t size = 0;                          // floats in the arena
  void build(const Config& c, const LoraConfig& lc);
  const LoraSlot& at(int layer, int t) const { return slots[size_t(layer)][size_t(t)]; }
};

// A: Kaiming-uniform (a = √5, as torch.nn.Linear / PEFT), B: zeros; seeded and platform independent.
void lora_init(const LoraLayout& lay, float* params, uint64_t seed);

// W += s·B·A for every adapted projection (the model then scores as base + adapter)
void lora_merge(Model& m, const LoraLayout& lay, const float* params);
// the same for one projection W[out, in] of one layer (target t); lora_merge is this over every slot
void lora_merge_one(const LoraLayout& lay, const float* params, int layer, int t, float* W);
// the LoRA target of a projection's tensor kind (-1 for the embeddings and norms)
int lora_target_of(TensorKind k);

// counter-based uniform in [0, 1) for dropout masks: the same (seed, step, layer, target, index) gives
// the same draw, so backward regenerates forward's mask without storing it
double lora_dropout_uniform(uint64_t seed, uint64_t step, int layer, int target, uint64_t index);

}  // namespace tailor
