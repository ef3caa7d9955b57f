// forward.cpp — embedding → per layer (RMSNorm → q/k/v → RoPE → causal GQA attention → o_proj → residual;
// RMSNorm → SwiGLU MLP → residual) → final RMSNorm. Layers with no heads or no FFN channels (pruned
// away entirely) pass the residual stream through unchanged.
#include "forward.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "errors.h"

namespace tailor {

void KvCache::alloc(Backend& be, const Config& c, int layers, int64_t rows) {
  n_slots = 0;
  n_ctx = 0;
  bf16 = be.kv_bf16(c.head_dim);
  k.clear();
  v.clear();
  try {
    for (int l = 0; l < layers; l++) {
      const int kv_heads = layout == Layout::Packed ? c.max_kv_heads() : c.layers[l].n_kv_head;
      size_t bytes = (bf16 ? 2 : sizeof(float)) * size_t(rows) * size_t(kv_heads) * size_t(c.head_dim);
      k.push_back(std::make_unique<BackendBuffer>());
      v.push_back(std::make_unique<BackendBuffer>());
      if (bytes == 0) continue;  // a layer whose attention is pruned away: nothing stored, nothing read
      k.back()->reserve(be, bytes);
      v.back()->reserve(be, bytes);
      be.memset0(k.back()->f(), bytes);
      be.memset0(v.back()->f(), bytes);
    }
  } catch (const EngineError& e) {
    k.clear();
    v.clear();
    if (e.code() != ErrorCode::OOM) throw;
    fail(ErrorCode::OOM, "not enough memory for a KV cache of " + std::to_string(rows) + " positions (" + e.what() + ")");
  } catch (const std::bad_alloc&) {
    k.clear();
    v.clear();
    fail(ErrorCode::OOM, "not enough memory for a KV cache of " + std::to_string(rows) + " positions");
  }
}

void KvCache::init(Backend& be, const Config& c, int slots, int ctx) {
  layout = Layout::Slots;
  alloc(be, c, c.n_layers, int64_t(slots) * ctx);
  n_slots = slots;
  n_ctx = ctx;
}

void KvCache::init_packed(Backend& be, const Config& c, int rows) {
  layout = Layout::Packed;
  alloc(be, c, std::min(c.n_layers, 1), rows);
  n_slots = rows;
  n_ctx = 1;
}

KvView KvCache::view(const Config& c, int l) {
  const size_t i = layout == Layout::Packed ? 0 : size_t(l);
  return KvView{k[i]->f(), v[i]->f(), n_ctx, c.layers[l].n_kv_head * c.head_dim, bf16};
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

static void grow(Backend& be, BackendBuffer& b, size_t floats) { b.reserve(be, sizeof(float) * floats); }

// A packed batch's sequences are whole, each on rows of its own: every token's row is written once, a
// slot's tokens are at consecutive positions, the rows before its first token are written by copies, and
// a copy reads only rows of this batch's tokens (earlier ones: the copies of a layer run at once).
static void check_packed(const Batch& b, int rows) {
  enum : char { kFree, kToken, kCopy };
  std::vector<char> written(size_t(rows), kFree);
  std::vector<int> last(size_t(rows), -1);  // [slot] its last token's position so far
  std::vector<std::pair<int, int>> firsts;  // (slot, its first token's position)
  auto bad = [](const std::string& what) { fail(ErrorCode::ARG, "a packed KV cache needs each sequence of a batch whole, on rows of its own: " + what); };
  for (int64_t t = 0; t < b.size(); t++) {
    const int64_t row = int64_t(b.slot[t]) + b.pos[t];
    int& l = last[size_t(b.slot[t])];
    if (row >= rows || written[size_t(row)] != kFree || (l >= 0 && b.pos[t] != l + 1))
      bad("token " + std::to_string(t) + " (slot " + std::to_string(b.slot[t]) + ", position " + std::to_string(b.pos[t]) + ")");
    written[size_t(row)] = kToken;
    if (l < 0) firsts.push_back({b.slot[t], b.pos[t]});
    l = b.pos[t];
  }
  for (const KvCopy& c : b.copies) {
    if (c.rows <= 0 || c.src < 0 || int64_t(c.src) + c.rows > c.dst || int64_t(c.dst) + c.rows > rows)
      bad("copy of " + std::to_string(c.rows) + " rows from " + std::to_string(c.src) + " to " + std::to_string(c.dst));
    for (int r = 0; r < c.rows; r++) {
      if (written[size_t(c.src + r)] != kToken || written[size_t(c.dst + r)] != kFree) bad("copy to row " + std::to_string(c.dst + r));
      written[size_t(c.dst + r)] = kCopy;
    }
  }
  for (auto [slot, pos] : firsts)  // the positions before a slot's first token are copied in
    for (int r = slot; r < slot + pos; r++)
      if (written[size_t(r)] != kCopy) bad("position " + std::to_string(r - slot) + " of slot " + std::to_string(slot) + " is not written");
}

void model_forward(const Model& m, Backend& be, const RopeTable& rope, KvCache& kv, const Batch& b, Workspace& ws,
                   BackendBuffer& out, const CancelToken& cancel) {
  const Config& c = m.cfg;
  const int64_t T = b.size(), D = c.dim, hd = c.head_dim;
  for (int64_t t = 0; t < T; t++) {
    if (b.tokens[t] < 0 || b.tokens[t] >= c.vocab_size) fail(ErrorCode::ARG, "token id " + std::to_string(b.tokens[t]) + " is outside the vocabulary (0.." + std::to_string(c.vocab_size - 1) + ")");
    if (b.slot[t] < 0 || b.slot[t] >= kv.n_slots) fail(ErrorCode::ARG, "batch slot out of range");
    if (b.pos[t] < 0) fail(ErrorCode::ARG, "position " + std::to_string(b.pos[t]) + " is negative");
    if (kv.layout == KvCache::Layout::Slots && b.pos[t] >= kv.n_ctx)
      fail(ErrorCode::ARG, "position " + std::to_string(b.pos[t]) + " is beyond the context of " + std::to_string(kv.n_ctx) + " tokens");
  }
  if (kv.layout == KvCache::Layout::Packed) {
    check_packed(b, kv.n_slots);
  } else if (!b.copies.empty()) {
    fail(ErrorCode::ARG, "KV-cache row copies need a packed cache");
  }
  grow(be, ws.x, T * D);
  grow(be, ws.xn, T * D);
  grow(be, ws.q, T * c.max_heads() * hd);
  grow(be, ws.att, T * c.max_heads() * hd);
  grow(be, ws.k, T * c.max_kv_heads() * hd);
  grow(be, ws.v, T * c.max_kv_heads() * hd);
  grow(be, ws.g, T * c.max_ffn());
  grow(be, ws.u, T * c.max_ffn());
  const size_t ib = sizeof(int) * size_t(T);
  ws.tokens.reserve(be, ib);
  ws.pos.reserve(be, ib);
  ws.slot.reserve(be, ib);
  be.upload(ws.tokens.i(), b.tokens.data(), ib);
  be.upload(ws.pos.i(), b.pos.data(), ib);
  be.upload(ws.slot.i(), b.slot.data(), ib);
  const int n_copies = int(b.copies.size());  // (none outside scoring: sessions add nothing per token)
  int max_copy_rows = 0;
  for (const KvCopy& c : b.copies) max_copy_rows = std::max(max_copy_rows, c.rows);
  if (n_copies) {
    ws.copies.reserve(be, sizeof(KvCopy) * b.copies.size());
    be.upload(ws.copies.p(), b.copies.data(), sizeof(KvCopy) * b.copies.size());
  }
  const KvCopy* copies = static_cast<const KvCopy*>(ws.copies.p());  // [n_copies] (backend buffer)
  const int* pos = ws.pos.i();    // [T] positions (backend buffer)
  const int* slot = ws.slot.i();  // [T] KV-cache slots (backend buffer)
  float* x = ws.x.f();   // [T, D] residual stream
  float* xn = ws.xn.f(); // [T, D] normalised input of the current sublayer
  be.embed_rows(x, be.weight(m.tok_emb), ws.tokens.i(), T, D);

  for (int l = 0; l < c.n_layers; l++) {
    cancel.check();
    const LayerWeights& w = m.layers[l];
    const LayerShape& s = c.layers[l];
    if (s.n_head > 0) {
      const int64_t qd = int64_t(s.n_head) * hd, kvd = int64_t(s.n_kv_head) * hd;
      float* q = ws.q.f();     // [T, n_head*hd]
      float* k = ws.k.f();     // [T, n_kv*hd]
      float* v = ws.v.f();     // [T, n_kv*hd]
      float* att = ws.att.f(); // [T, n_head*hd]
      be.rmsnorm_forward(xn, x, be.weight(w.attn_norm), T, D, c.norm_eps);
      be.matmul_forward(q, xn, be.weight(w.wq), T, D, qd, false);
      be.matmul_forward(k, xn, be.weight(w.wk), T, D, kvd, false);
      be.matmul_forward(v, xn, be.weight(w.wv), T, D, kvd, false);
      be.rope_forward(q, pos, T, s.n_head, rope);
      be.rope_forward(k, pos, T, s.n_kv_head, rope);
      KvView view = kv.view(c, l);
      be.kv_store(view, k, v, pos, slot, T);
      if (n_copies) be.kv_copy(view, copies, n_copies, max_copy_rows);  // shared prefixes, in this layer's keys and values
      be.attention_forward(att, q, view, pos, slot, T, s.n_head, s.n_kv_head, int(hd));
      be.matmul_forward(x, att, be.weight(w.wo), T, qd, D, true);  // x += att · woᵀ
    }
    if (s.ffn > 0) {
      const int64_t F = s.ffn;
      float* g = ws.g.f();  // [T, F] gate, then silu(gate)*up
      float* u = ws.u.f();  // [T, F]
      be.rmsnorm_forward(xn, x, be.weight(w.ffn_norm), T, D, c.norm_eps);
      be.matmul_forward(g, xn, be.weight(w.w_gate), T, D, F, false);
      be.matmul_forward(u, xn, be.weight(w.w_up), T, D, F, false);
      be.swiglu_forward(g, g, u, T * F);
      be.matmul_forward(x, g, be.weight(w.w_down), T, F, D, true);  // x += h · downᵀ
    }
  }
  grow(be, out, T * D);
  be.rmsnorm_forward(out.f(), x, be.weight(m.out_norm), T, D, c.norm_eps);
}

void logits_forward(const Model& m, Backend& be, const float* h, int64_t R, float* logits) {
  be.matmul_forward(logits, h, be.weight(m.lm_head), R, m.cfg.dim, m.cfg.vocab_size, false);
}

}  // namespace tailor
