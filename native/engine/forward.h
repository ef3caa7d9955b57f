// forward.h — the LLaMA forward pass over a packed batch of tokens (any mix of sequences, each in its
// own KV-cache slot), written once against the Backend interface. Activations and the KV cache are
// backend buffers (host memory on the CPU, device memory on CUDA); the host sees only what it downloads.
#pragma once
#include <memory>
#include <vector>

#include "backend.h"
#include "model.h"

namespace tailor {

// One KV cache for n_slots sequences of up to n_ctx positions, per layer sized to that layer's KV heads.
// Backend buffers, zeroed at init.
struct KvCache {
  int n_slots = 0;
  int n_ctx = 0;
  std::vector<std::unique_ptr<BackendBuffer>> k, v;  // [layer] → [slot, n_ctx, n_kv_l*hd]
  void init(Backend& be, const Config& c, int slots, int ctx);
  KvView view(const Config& c, int layer);
};

// A packed batch: token t is tokens[t] at position pos[t] of sequence slot[t]. Within a slot, positions
// must be stored in order: earlier positions are in the cache or earlier in the batch.
struct Batch {
  std::vector<int> tokens, pos, slot;
  int64_t size() const { return int64_t(tokens.size()); }
};

// Scratch activations (backend buffers), grown on demand and reused across calls.
struct Workspace {
  BackendBuffer x, xn, q, k, v, att, g, u;  // float activations
  BackendBuffer tokens, pos, slot;          // int [T]: the batch, uploaded
};

RopeTable make_rope_table(const Config& c);

// Runs every layer and the final norm: out[T, dim] (a backend buffer, grown to fit) = final hidden
// states (normalised).
void model_forward(const Model& m, Backend& be, const RopeTable& rope, KvCache& kv, const Batch& b, Workspace& ws,
                   BackendBuffer& out, const CancelToken& cancel);

// logits[R, vocab] for R rows of hidden states h[R, dim] (both backend buffers)
void logits_forward(const Model& m, Backend& be, const float* h, int64_t R, float* logits);

}  // namespace tailor
