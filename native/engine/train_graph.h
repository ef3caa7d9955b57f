// train_graph.h — one training forward + backward through the whole LLaMA model, templated on the
// scalar type (float for training, double for finite-difference checks). A batch is B right-padded
// sequences of Tn tokens; the loss is the weighted mean next-token cross-entropy (weight 0 = padding or
// a prompt token, so "loss on answer tokens only" is a weight mask). Gradients go to the LoRA arena
// and, when asked, to base weights (importance, full fine-tuning) — per layer through a callback so
// the caller can reduce them (e.g. into per-group sums) without holding a gradient copy of the model.
#pragma once
#include <functional>
#include <vector>

#include "forward.h"
#include "lora.h"
#include "model.h"
#include "train_ops.h"

namespace tailor {

// Pointers to every weight in scalar type T (float: straight into Model's arena).
template <typename T>
struct WeightsT {
  struct Layer { const T *attn_norm, *wq, *wk, *wv, *wo, *ffn_norm, *w_gate, *w_up, *w_down; };
  const T* tok_emb = nullptr;
  const T* out_norm = nullptr;
  const T* lm_head = nullptr;
  std::vector<Layer> layers;
};

// Gradient buffers for base weights, same layout (nullptr entries = not wanted).
template <typename T>
struct GradsT {
  struct Layer { T *attn_norm = nullptr, *wq = nullptr, *wk = nullptr, *wv = nullptr, *wo = nullptr, *ffn_norm = nullptr,
                   *w_gate = nullptr, *w_up = nullptr, *w_down = nullptr; };
  T* tok_emb = nullptr;
  T* out_norm = nullptr;
  T* lm_head = nullptr;  // with tied embeddings, lm_head gradients go to tok_emb
  std::vector<Layer> layers;
};

struct TrainBatch {
  int B = 0, Tn = 0;
  std::vector<int> ids;        // [B*Tn] inputs (padding: any valid id)
  std::vector<int> targets;    // [B*Tn] next-token targets
  std::vector<float> weight;   // [B*Tn] loss weight (0 = ignore)
};

struct TrainOptions {
  bool checkpoint = false;     // keep only each layer's input; recompute the layer in backward
  uint64_t dropout_seed = 0;   // LoRA dropout draws (with step)
  uint64_t step = 0;
  bool training = true;        // false: no dropout (evaluation loss)
  double loss_scale = 1.0;     // multiplies the gradient (micro-batch share of a larger batch)
  // the output head and cross-entropy run over chunks of rows when the batch's logits would exceed this
  // many floats (default 2^25 = 128 MiB): each chunk's logits and their gradient are made, used for the
  // head's gradients and dropped, so B×T×vocab logits never exist at once
  int64_t head_chunk_floats = int64_t(1) << 25;
  CancelToken cancel;          // checked at every layer
  // float forward only: called after layer l's forward with its sublayer inputs (rows = B·Tn), buffers
  // of the backend (host memory without one): xn1 [N, dim], ao [N, n_head·hd], xn2 [N, dim], h [N, ffn]
  // (null where the sublayer is pruned away)
  std::function<void(int layer, const float* xn1, const float* ao, const float* xn2, const float* h, int64_t N)> on_layer_forward;
};

// Called after layer l's base-weight gradients are complete (layer = -1: embeddings, final norm, head).
template <typename T>
using LayerGradHook = std::function<void(int layer, const GradsT<T>& grads)>;

// Forward + backward. Returns the loss. With a backend (float only) matrix products and attention run
// on its threads/BLAS; without, the scalar reference ops run (the float64 checks). lora_params may be null (no LoRA); lora_grads null = no LoRA
// gradients; base_grads null = no base gradients. Backward is skipped when all are null.
template <typename T>
double train_forward_backward(const Config& c, const WeightsT<T>& w, const RopeTable& rope, const LoraLayout* lay, const T* lora_params,
                              T* lora_grads, GradsT<T>* base_grads, const LayerGradHook<T>& hook, const TrainBatch& batch,
                              const TrainOptions& opt, Backend* be = nullptr);

WeightsT<float> weights_view(const Model& m);
// a float64 copy of the model's weights (for gradient checks); storage holds the values
WeightsT<double> weights_copy_f64(const Model& m, std::vector<double>& storage);

}  // namespace tailor
