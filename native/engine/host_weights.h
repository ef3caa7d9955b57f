// host_weights.h — a loaded model's host copy of its weights once a device backend holds the copy that
// computes. A load can hand the host pages back tensor by tensor as each is uploaded (LoadHooks::release),
// so LLaMA-7B on a GPU keeps about one tensor of its 25 GiB fp32 arena in host memory. A tensor is then read
// by decoding it again from the file the model came from (kept mapped: Model::source) and applying, in
// order, the LoRA adapters merged since: bit for bit the values a kept arena would hold. The arena's
// address range stays reserved, so its pointers still name the tensors (the device backend maps them).
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "backend.h"
#include "bytes.h"
#include "dtype.h"
#include "lora.h"
#include "model.h"

namespace tailor {

// One tensor's bytes in a mapped file (already checked against the config by fill_weights).
struct SourceTensor {
  TensorKind kind;
  int layer;       // -1 for the non-layer tensors
  DType dtype;
  const uint8_t* data;
  uint64_t n;      // elements
};

struct WeightSource {
  std::vector<std::shared_ptr<const MappedFile>> files;  // kept mapped while the model lives
  std::vector<SourceTensor> tensors;                     // every tensor the arena holds, in file order
  bool permute_qk = false;                               // rotate-half file: q/k rows interleaved on decode
  struct Merge {
    LoraLayout lay;
    std::vector<float> params;  // [lay.size]
  };
  std::vector<Merge> merges;  // LoRA adapters merged since the load, in order
  const SourceTensor* find(TensorKind k, int layer) const;
  // E_IO when a file was written or truncated in place since the load (MappedFile::check_unchanged)
  void check_unchanged() const;
};

// dst[n] ← one tensor of a file in its final in-memory form (q/k rows interleaved when `permute`).
void decode_tensor(const Model& m, TensorKind kind, int layer, DType dtype, const uint8_t* data, uint64_t n, bool permute, float* dst);

// elements of a tensor (0 when it does not exist; a tied lm_head is the embedding table)
uint64_t tensor_numel(const Model& m, TensorKind k, int layer);

// dst[tensor_numel] ← the tensor's values: a copy from the arena, or decoded from the source when released.
void host_read(const Model& m, TensorKind k, int layer, float* dst);

// The arena holds the tensor's values while this lives (decoded into its range when the model is
// released; those pages are handed back again at the end of the scope). The values are the model's own, so
// a const model may be read this way (only its host pages come and go).
class HostTensor {
 public:
  HostTensor(const Model& m, TensorKind k, int layer);
  ~HostTensor();
  HostTensor(const HostTensor&) = delete;
  HostTensor& operator=(const HostTensor&) = delete;
  float* data() const { return p_; }
  uint64_t size() const { return n_; }

 private:
  const Model& m_;
  float* p_;
  uint64_t n_;
};

// The nine tensors of one layer held in the arena for the scope (m.layers[l]'s pointers read them).
class HostLayer {
 public:
  HostLayer(const Model& m, int layer);

 private:
  std::vector<std::unique_ptr<HostTensor>> t_;
};

// Decodes every tensor into a new arena (one the system reserves memory for: E_OOM, the model unchanged, when
// it cannot) and ends the release; the tensor pointers change, so a device copy must be bound again. The
// source is dropped: the arena may now be written in place (full fine-tuning) and is the model of record.
void host_restore(Model& m);

// W += s·B·A for every adapted projection: on the arena, or (released) recorded in the source and applied
// whenever a tensor is decoded. Either way the model's weights are base + adapter, bit for bit alike.
void host_merge_lora(Model& m, const LoraLayout& lay, const float* params);

// A device backend's copy of the model, made tensor by tensor (bind_begin / bind_part / bind_end): a
// released model is decoded one tensor at a time and never held whole.
void host_bind(Model& m, Backend& be);

// Bytes of the arena now resident in host memory (mincore; Windows: committed, which holds the resident), or -1
// where the system cannot say.
int64_t host_resident_bytes(const Model& m);
// the system's page size in bytes
size_t host_page_size();

// For writing [p, p + bytes) of a released (reserve_only) arena: commits the pages it touches (Windows, where a
// reserved page faults until committed; E_OOM when the system cannot), nothing elsewhere.
void commit_pages(void* p, size_t bytes);
// Hands the whole pages inside [p, p + bytes) of a released arena back to the system (their contents are
// lost; Windows: decommitted, so the range must be committed again before it is written or read).
void discard_pages(void* p, size_t bytes);

}  // namespace tailor
