// lora.cpp — LoRA layout, initialisation, merging and dropout draws (see lora.h).
#include "lora.h"

#include "lora_hash.h"

#include <cmath>

#include "errors.h"

namespace tailor {

static const char* kNames[kNumTargets] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};

const char* lora_target_name(int t) { return kNames[t]; }
const char* lora_target_module(int t) { return t <= kO ? "self_attn" : "mlp"; }

float LoraConfig::scale() const { return rslora ? alpha / std::sqrt(float(rank)) : alpha / float(rank); }

void lora_dims(const Config& c, int l, int t, int64_t& in, int64_t& out) {
  const LayerShape& s = c.layers[size_t(l)];
  const int64_t d = c.dim, hd = c.head_dim;
  switch (t) {
    case kQ: in = d; out = s.n_head * hd; break;
    case kK: in = d; out = s.n_kv_head * hd; break;
    case kV: in = d; out = s.n_kv_head * hd; break;
    case kO: in = s.n_head * hd; out = d; break;
    case kGate: in = d; out = s.ffn; break;
    case kUp: in = d; out = s.ffn; break;
    default: in = s.ffn; out = d; break;
  }
  if (in == 0 || out == 0) in = out = 0;
}

void LoraLayout::build(const Config& c, const LoraConfig& lc) {
  if (lc.rank <= 0 || lc.rank > 4096) fail(ErrorCode::ARG, "LoRA rank must be between 1 and 4096");
  if (!(lc.alpha > 0)) fail(ErrorCode::ARG, "LoRA alpha must be positive");
  if (!(lc.dropout >= 0 && lc.dropout < 1)) fail(ErrorCode::ARG, "LoRA dropout must be in [0, 1)");
  if ((lc.targets & ((1u << kNumTargets) - 1)) == 0) fail(ErrorCode::ARG, "LoRA needs at least one target projection");
  cfg = lc;
  size = 0;
  slots.assign(size_t(c.n_layers), std::vector<LoraSlot>(kNumTargets));
  for (int l = 0; l < c.n_layers; l++)
    for (int t = 0; t < kNumTargets; t++) {
      LoraSlot& s = slots[size_t(l)][size_t(t)];
      lora_dims(c, l, t, s.in, s.out);
      if (!(lc.targets & (1u << t)) || s.in == 0) continue;
      s.a = size;
      size += int64_t(lc.rank) * s.in;
      s.b = size;
      size += s.out * int64_t(lc.rank);
    }
}


void lora_init(const LoraLayout& lay, float* p, uint64_t seed) {
  for (size_t l = 0; l < lay.slots.size(); l++)
    for (int t = 0; t < kNumTargets; t++) {
      const LoraSlot& s = lay.slots[l][size_t(t)];
      if (s.a < 0) continue;
      // kaiming_uniform_(a=√5) on a [r, in] weight: bound = 1/√in
      double bound = 1.0 / std::sqrt(double(s.in));
      uint64_t key = mix64(seed ^ mix64(l * 16 + uint64_t(t) + 1));
      for (int64_t i = 0; i < int64_t(lay.cfg.rank) * s.in; i++) {
        double u = double(mix64(key + uint64_t(i)) >> 11) * (1.0 / 9007199254740992.0);
        p[s.a + i] = float((2 * u - 1) * bound);
      }
      for (int64_t i = 0; i < s.out * int64_t(lay.cfg.rank); i++) p[s.b + i] = 0.f;
    }
}

void lora_merge_one(const LoraLayout& lay, const float* p, int l, int t, float* W) {
  const LoraSlot& s = lay.at(l, t);
  if (s.a < 0 || !W) return;
  const float sc = lay.cfg.scale();
  const int r = lay.cfg.rank;
  const float* A = p + s.a;  // [r, in]
  const float* B = p + s.b;  // [out, r]
  for (int64_t o = 0; o < s.out; o++)
    for (int k = 0; k < r; k++) {
      float bk = sc * B[o * r + k];
      if (bk == 0.f) continue;
      const float* ar = A + int64_t(k) * s.in;
      float* wr = W + o * s.in;  // W[out, in]
      for (int64_t i = 0; i < s.in; i++) wr[i] += bk * ar[i];
    }
}

int lora_target_of(TensorKind k) {
  switch (k) {
    case TensorKind::Wq: return kQ;
    case TensorKind::Wk: return kK;
    case TensorKind::Wv: return kV;
    case TensorKind::Wo: return kO;
    case TensorKind::WGate: return kGate;
    case TensorKind::WUp: return kUp;
    case TensorKind::WDown: return kDown;
    default: return -1;
  }
}

void lora_merge(Model& m, const LoraLayout& lay, const float* p) {
  static const TensorKind kProj[kNumTargets] = {TensorKind::Wq, TensorKind::Wk, TensorKind::Wv, TensorKind::Wo, TensorKind::WGate, TensorKind::WUp, TensorKind::WDown};
  for (int l = 0; l < m.cfg.n_layers; l++)
    for (int t = 0; t < kNumTargets; t++) lora_merge_one(lay, p, l, t, m.tensor_ptr(kProj[t], l));
}

double lora_dropout_uniform(uint64_t seed, uint64_t step, int layer, int target, uint64_t index) {
  return dropout_draw(dropout_key(seed, step, layer, target), index);
}

}  // namespace tailor
