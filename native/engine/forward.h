// forward.h — the LLaMA forward pass over a packed batch of tokens (any mix of sequences, each in its
// own KV-cache slot), written once against the Backend interface. Activations and the KV cache are
// backend buffers (host memory on the CPU, device memory on CUDA); the host sees only what it downloads.
#pragma once
#include <memory>
#include <vector>

#include "backend.h"
#include "model.h"

namespace tailor {

// A KV cache: backend buffers of rows [rows, n_kv_l*hd], zeroed at init, fp32 or bf16 as the backend keeps
// them (Backend::kv_bf16: half the bytes in the CUDA backend's bf16 mode, where its tensor cores take the head size). Token t's keys and values are
// row slot[t]·n_ctx + pos[t], and it attends to rows slot[t]·n_ctx + 0..pos[t] (the kernels' one rule).
//  - Layout::Slots (sessions, which grow a token at a time): n_slots sequences of up to n_ctx positions,
//    every layer its own, sized to its KV heads.
//  - Layout::Packed (scoring, whose batches hold their sequences whole from position 0): the batch's
//    positions one after another, n_ctx = 1, a sequence's slot being its first row; and one layer's rows,
//    which each layer overwrites in turn, since a layer's attention reads only what that layer has just
//    stored (a shared prefix's rows are copied in each layer: KvCopy). So a batch holds each position once —
//    not its sequence count × its longest, nor once per layer: for LLaMA-7B, 4,096 positions hold 128 MiB,
//    where the 64 BoolQ requests of one evaluation call, padded to 41,160 positions in every layer, held
//    40 GiB (docs/memory-plan.md). model_forward refuses a batch that does not hold its sequences whole.
struct KvCache {
  enum class Layout { Slots, Packed };
  Layout layout = Layout::Slots;
  int n_slots = 0;  // Slots: sequences; Packed: rows
  int n_ctx = 0;    // Slots: positions per sequence; Packed: 1
  bool bf16 = false;  // elements in bf16 (the backend's kv_bf16(head_dim)), else fp32
  std::vector<std::unique_ptr<BackendBuffer>> k, v;  // [layer] (Packed: one) → [n_slots·n_ctx, n_kv_l*hd]
  void init(Backend& be, const Config& c, int slots, int ctx);  // Slots
  void init_packed(Backend& be, const Config& c, int rows);     // Packed
  KvView view(const Config& c, int layer);

 private:
  void alloc(Backend& be, const Config& c, int layers, int64_t rows);
};

// A packed batch: token t is tokens[t] at position pos[t] of sequence slot[t]. Within a slot, positions
// must be stored in order: earlier positions are in the cache or earlier in the batch. With a Packed cache,
// slot[t] is the first row of t's sequence, and every sequence is whole: positions 0, 1, … on rows of its
// own, the first of them copied, in each layer, from the rows where an earlier sequence computed the same
// tokens (a shared prefix, computed once: KvCopy), the rest in the batch.
struct Batch {
  std::vector<int> tokens, pos, slot;
  std::vector<KvCopy> copies;  // Packed only, after each layer's keys and values are stored, all at once: each reads rows of this batch's tokens
  int64_t size() const { return int64_t(tokens.size()); }
};

// Scratch activations (backend buffers), grown on demand and reused across calls.
struct Workspace {
  BackendBuffer x, xn, q, k, v, att, g, u;  // float activations
  BackendBuffer tokens, pos, slot;          // int [T]: the batch, uploaded
  BackendBuffer copies;                     // KvCopy [copies]: the batch's, uploaded
};

RopeTable make_rope_table(const Config& c);

// Runs every layer and the final norm: out[T, dim] (a backend buffer, grown to fit) = final hidden
// states (normalised).
void model_forward(const Model& m, Backend& be, const RopeTable& rope, KvCache& kv, const Batch& b, Workspace& ws,
                   BackendBuffer& out, const CancelToken& cancel);

// logits[R, vocab] for R rows of hidden states h[R, dim] (both backend buffers)
void logits_forward(const Model& m, Backend& be, const float* h, int64_t R, float* logits);

}  // namespace tailor
