// forward.h — the LLaMA forward pass over a packed batch of tokens (any mix of sequences, each in its
// own KV-cache slot), written once against the Backend interface.
#pragma once
#include <vector>

#include "backend.h"
#include "model.h"

namespace tailor {

// One KV cache for n_slots sequences of up to n_ctx positions, per layer sized to that layer's KV heads.
struct KvCache {
  int n_slots = 0;
  int n_ctx = 0;
  std::vector<std::vector<float>> k, v;  // [layer][slot, n_ctx, n_kv_l*hd]
  void init(const Config& c, int slots, int ctx);
  KvView view(const Config& c, int layer);
};

// A packed batch: token t is tokens[t] at position pos[t] of sequence slot[t]. Within a slot, positions
// must be stored in order: earlier positions are in the cache or earlier in the batch.
struct Batch {
  std::vector<int> tokens, pos, slot;
  int64_t size() const { return int64_t(tokens.size()); }
};

// Scratch activations, grown on demand and reused across calls.
struct Workspace {
  std::vector<float> x, xn, q, k, v, att, g, u;
};

RopeTable make_rope_table(const Config& c);

// Runs every layer and the final norm: out[T, dim] = final hidden states (normalised).
void model_forward(const Model& m, Backend& be, const RopeTable& rope, KvCache& kv, const Batch& b, Workspace& ws,
                   std::vector<float>& out, const CancelToken& cancel);

// logits[R, vocab] for R rows of hidden states h[R, dim]
void logits_forward(const Model& m, Backend& be, const float* h, int64_t R, float* logits);

}  // namespace tailor
