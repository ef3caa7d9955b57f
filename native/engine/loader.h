// loader.h — loading a model from any supported file: the format loaders (safetensors folders, GGUF,
// llama2.c) describe their tensors as TensorRefs into untrusted mapped bytes; fill_weights checks every
// one against the config and decodes it into the model's arena.
#pragma once
#include <memory>
#include <string>
#include <vector>

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

// Validates m.cfg, checks shapes and presence (each expected tensor exactly once), then allocates m and
// decodes the tensors into it.
// `what` names the source in messages.
void fill_weights(Model& m, const std::vector<TensorRef>& refs, const std::string& what);

// Detects the format of `path` (a HF folder, a .safetensors file with config.json beside it, a GGUF, a
// llama2.c .bin) and loads it. Throws EngineError.
std::unique_ptr<Model> load_model(const std::string& path);

std::unique_ptr<Model> load_hf(const std::string& dir);
std::unique_ptr<Model> load_gguf(const std::string& path);
std::unique_ptr<Model> load_llama2c(const std::string& path);

// Parses a LLaMA config.json (HF) into cfg; per-layer lists (Tailor's pruned-model convention:
// layer_num_attention_heads, layer_num_key_value_heads, layer_intermediate_sizes) override uniform sizes.
void parse_hf_config(const std::string& text, const std::string& what, Config& cfg);

}  // namespace tailor
