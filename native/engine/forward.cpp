// forward.cpp — embedding → per layer (RMSNorm → q/k/v → RoPE → causal GQA attention → o_proj → residual;
// RMSNorm → SwiGLU MLP → residual) → final RMSNorm. Layers with no heads or no FFN channels (pruned
// away entirely) pass the residual stream through unchanged.
#include "forward.h"

#include <cmath>
#include <cstring>

#include "errors.h"

namespace tailor {

void KvCache::init(const Config& c, int slots, int ctx) {
  n_slots = slots;
  n_ctx = ctx;
  k.resize(size_t(c.n_layers));
  v.resize(size_t(c.n_layers));
  try {
    for (int l = 0; l < c.n_layers; l++) {
      size_t n = size_t(slots) * size_t(ctx) * size_t(c.layers[l].n_kv_head) * size_t(c.head_dim);
      k[l].assign(n, 0.f);
      v[l].assign(n, 0.f);
    }
  } catch (const std::bad_alloc&) {
    fail(ErrorCode::OOM, "not enough memory for a KV cache of " + std::to_string(slots) + " × " + std::to_string(ctx) + " positions");
  }
}

KvView KvCache::view(const Config& c, int l) {
  return KvView{k[l].data(), v[l].data(), n_ctx, c.layers[l].n_kv_head * c.head_dim};
}

RopeTable make_rope_table(const Config& c) {
  RopeTable r;
  r.head_dim = c.head_dim;
  r.interleaved = c.rope_interleaved;
  int half = c.head_dim / 2;
  r.inv_freq.resize(size_t(half));
  const RopeScaling& s = c.rope_scaling;
  for (int j = 0; j < half; j++) {
    double f = 1.0 / std::pow(double(c.rope_theta), double(2 * j) / double(c.head_dim));
    if (s.type == RopeScalingType::Llama3) {
      // Llama 3.1: long wavelengths slowed by `factor`, short ones kept, a smooth blend between
      double low_wavelen = s.original_max_position / s.low_freq_factor;
      double high_wavelen = s.original_max_position / s.high_freq_factor;
      double wavelen = 2 * M_PI / f;
      if (wavelen > low_wavelen) {
        f = f / s.factor;
      } else if (wavelen >= high_wavelen) {
        double smooth = (s.original_max_position / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        f = (1 - smooth) * f / s.factor + smooth * f;
      }
    }
    if (!c.rope_freq_factors.empty()) f /= double(c.rope_freq_factors[j]);
    r.inv_freq[j] = f;
  }
  r.pos_scale = s.type == RopeScalingType::Linear ? 1.0 / s.factor : 1.0;
  return r;
}

static void grow(std::vector<float>& v, size_t n) {
  if (v.size() < n) v.resize(n);
}

void model_forward(const Model& m, Backend& be, const RopeTable& rope, KvCache& kv, const Batch& b, Workspace& ws,
                   std::vector<float>& out, const CancelToken& cancel) {
  const Config& c = m.cfg;
  const int64_t T = b.size(), D = c.dim, hd = c.head_dim;
  for (int64_t t = 0; t < T; t++) {
    if (b.tokens[t] < 0 || b.tokens[t] >= c.vocab_size) fail(ErrorCode::ARG, "token id " + std::to_string(b.tokens[t]) + " is outside the vocabulary (0.." + std::to_string(c.vocab_size - 1) + ")");
    if (b.slot[t] < 0 || b.slot[t] >= kv.n_slots) fail(ErrorCode::ARG, "batch slot out of range");
    if (b.pos[t] < 0 || b.pos[t] >= kv.n_ctx) fail(ErrorCode::ARG, "position " + std::to_string(b.pos[t]) + " is beyond the context of " + std::to_string(kv.n_ctx) + " tokens");
  }
  grow(ws.x, T * D);
  grow(ws.xn, T * D);
  grow(ws.q, T * c.max_heads() * hd);
  grow(ws.att, T * c.max_heads() * hd);
  grow(ws.k, T * c.max_kv_heads() * hd);
  grow(ws.v, T * c.max_kv_heads() * hd);
  grow(ws.g, T * c.max_ffn());
  grow(ws.u, T * c.max_ffn());
  float* x = ws.x.data();   // [T, D] residual stream
  float* xn = ws.xn.data(); // [T, D] normalised input of the current sublayer
  for (int64_t t = 0; t < T; t++) std::memcpy(x + t * D, m.tok_emb + int64_t(b.tokens[t]) * D, sizeof(float) * D);

  for (int l = 0; l < c.n_layers; l++) {
    cancel.check();
    const LayerWeights& w = m.layers[l];
    const LayerShape& s = c.layers[l];
    if (s.n_head > 0) {
      const int64_t qd = int64_t(s.n_head) * hd, kvd = int64_t(s.n_kv_head) * hd;
      float* q = ws.q.data();     // [T, n_head*hd]
      float* k = ws.k.data();     // [T, n_kv*hd]
      float* v = ws.v.data();     // [T, n_kv*hd]
      float* att = ws.att.data(); // [T, n_head*hd]
      be.rmsnorm_forward(xn, x, w.attn_norm, T, D, c.norm_eps);
      be.matmul_forward(q, xn, w.wq, T, D, qd, false);
      be.matmul_forward(k, xn, w.wk, T, D, kvd, false);
      be.matmul_forward(v, xn, w.wv, T, D, kvd, false);
      be.rope_forward(q, b.pos.data(), T, s.n_head, rope);
      be.rope_forward(k, b.pos.data(), T, s.n_kv_head, rope);
      KvView view = kv.view(c, l);
      be.kv_store(view, k, v, b.pos.data(), b.slot.data(), T);
      be.attention_forward(att, q, view, b.pos.data(), b.slot.data(), T, s.n_head, s.n_kv_head, int(hd));
      be.matmul_forward(x, att, w.wo, T, qd, D, true);  // x += att · woᵀ
    }
    if (s.ffn > 0) {
      const int64_t F = s.ffn;
      float* g = ws.g.data();  // [T, F] gate, then silu(gate)*up
      float* u = ws.u.data();  // [T, F]
      be.rmsnorm_forward(xn, x, w.ffn_norm, T, D, c.norm_eps);
      be.matmul_forward(g, xn, w.w_gate, T, D, F, false);
      be.matmul_forward(u, xn, w.w_up, T, D, F, false);
      be.swiglu_forward(g, g, u, T * F);
      be.matmul_forward(x, g, w.w_down, T, F, D, true);  // x += h · downᵀ
    }
  }
  out.resize(size_t(T * D));
  be.rmsnorm_forward(out.data(), x, m.out_norm, T, D, c.norm_eps);
}

void logits_forward(const Model& m, Backend& be, const float* h, int64_t R, float* logits) {
  be.matmul_forward(logits, h, m.lm_head, R, m.cfg.dim, m.cfg.vocab_size, false);
}

}  // namespace tailor
