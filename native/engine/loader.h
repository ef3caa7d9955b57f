// loader.h — loading a model from any supported file: the format loaders (safetensors folders, GGUF,
// llama2.c) describe their tensors as TensorRefs into untrusted mapped bytes; fill_weights checks every
// one against the config and decodes it into the model's arena.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backend.h"
#include "bytes.h"
#include "dtype.h"
#include "model.h"

namespace tailor {

struct TensorRef {
  std::string name;             // name in the file (for messages)
  TensorKind kind;
  int layer;                    // -1 for non-layer tensors
  DType dtype;
  std::vector<int64_t> shape;   // row-major, outermost first
  const uint8_t* data;          // inside a mapped file, already bounds-checked by the format loader
  uint64_t nbytes;
};

// Watching a load as it happens (every member optional). Tensors are decoded one at a time; after each:
//  - `tensor` is told the arena range it filled, already in its final form (RoPE rows interleaved), so a
//    device backend can upload it (Backend::bind_part) while the next one is decoded;
//  - `progress` gets the file bytes decoded so far and in all;
//  - `cancel` is checked (E_CANCELLED).
// `allocated` is called once the arena's size and tensor pointers are set, before any tensor is decoded
// (Backend::bind_begin). Ranges no tensor fills (alignment padding, sublayers pruned away) stay zero.
// With `header_only`, the file and every tensor are checked against the config as for a load, then the load
// stops: the model has its config and metadata but no arena (Model::arena empty; not for computing).
// With `release`, the model keeps its file(s) mapped and each tensor's place in them (Model::source), each
// tensor's host pages are handed back right after `tensor` returns (a device backend has its copy by then),
// and the model ends host_released(): the host never holds more than the tensor being decoded, and reads a
// tensor again from the file (host_weights.h).
struct LoadHooks {
  bool header_only = false;
  bool release = false;
  CancelToken cancel;
  std::function<void(uint64_t bytes_done, uint64_t bytes_total)> progress;
  std::function<void(const Model&)> allocated;
  std::function<void(const Model&, const float* first, size_t n)> tensor;
};

// Validates m.cfg, checks shapes and presence (each expected tensor exactly once), then allocates m and
// decodes the tensors into it, rewriting a rotate-half (HF) model's q/k rows into the interleaved layout
// tensor by tensor (model_to_interleaved's permutation), so every loaded model runs with one RoPE layout.
// `what` names the source in messages.
// `files` are the mappings the refs point into (kept by the model with LoadHooks::release).
void fill_weights(Model& m, const std::vector<TensorRef>& refs, const std::vector<std::shared_ptr<const MappedFile>>& files,
                  const std::string& what, const LoadHooks* hooks = nullptr);

// Detects the format of `path` (a HF folder, a .safetensors file with config.json beside it, a GGUF, a
// llama2.c .bin) and loads it. Throws EngineError.
std::unique_ptr<Model> load_model(const std::string& path, const LoadHooks* hooks = nullptr);

std::unique_ptr<Model> load_hf(const std::string& dir, const LoadHooks* hooks = nullptr);
std::unique_ptr<Model> load_gguf(const std::string& path, const LoadHooks* hooks = nullptr);
std::unique_ptr<Model> load_llama2c(const std::string& path, const LoadHooks* hooks = nullptr);

// Parses a LLaMA config.json (HF) into cfg; per-layer lists (Tailor's pruned-model convention:
// layer_num_attention_heads, layer_num_key_value_heads, layer_intermediate_sizes) override uniform sizes.
void parse_hf_config(const std::string& text, const std::string& what, Config& cfg);

}  // namespace tailor
