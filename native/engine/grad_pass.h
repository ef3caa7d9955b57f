// grad_pass.h — one full-gradient pass over base weights (Taylor importance's input) that never holds
// more than one layer's gradients: every layer's gradient pointers share one scratch set, and a hook
// reduces layer l's gradients (e.g. into per-group sums) as soon as its backward is complete.
#pragma once
#include <functional>
#include <vector>

#include "backend.h"
#include "model.h"
#include "train_graph.h"

namespace tailor {

// Calls reduce(layer, grads) for layers L-1 … 0, then for layer -1 (embeddings, final norm, lm_head).
// The gradients are backend buffers (on a device they stay there: reduce them with wg_sums). Returns the
// loss. Memory: one layer's gradients plus the embedding/head gradients.
double weight_gradient_pass(const Model& m, Backend& be, const TrainBatch& batch, const CancelToken& cancel,
                            const std::function<void(int layer, const GradsT<float>& g)>& reduce);

// Per-row (or, by_column, per-column) sums of term(w, g) over W[rows, cols] (w the model's host weight
// pointer, g a backend buffer), computed where the backend computes; only the sums come back.
std::vector<double> wg_sums(Backend& be, const float* w_host, const float* g, int64_t rows, int64_t cols, WgTerm term, bool by_column);
// the same with w a backend buffer too (or a weight() pointer); w = g = x with WgTerm::WG gives Σ x²
std::vector<double> term_sums(Backend& be, const float* w, const float* g, int64_t rows, int64_t cols, WgTerm term, bool by_column);

// Per-tensor reductions of w·g (the element-wise first-order Taylor terms)
struct TensorTaylor {
  double sum_abs_wg = 0;  // Σ |w·g|   (LLM-Pruner's param_first summed over the tensor)
  double sum_wg = 0;      // Σ w·g
  double grad_sq = 0;     // Σ g²
};
// [layer][tensor 0..8: attn_norm, q, k, v, o, ffn_norm, gate, up, down]; head: tok_emb, out_norm, lm_head
struct TaylorStats {
  std::vector<std::vector<TensorTaylor>> layers;
  TensorTaylor head[3];
  double loss = 0;
};
TaylorStats taylor_tensor_stats(const Model& m, Backend& be, const TrainBatch& batch, const CancelToken& cancel);

}  // namespace tailor
