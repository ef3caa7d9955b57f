// model.h — a LLaMA model in memory: its configuration (with per-layer shapes, since a pruned model has
// its own number of heads, KV heads and FFN channels in each layer) and its weights in one F32 arena.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <type_traits>
#include <string>
#include <vector>

#include "meta.h"

namespace tailor {

// The weight arena's blocks: zero pages from calloc, or (reserve_only) an address range that the system
// grants without counting it against its memory — POSIX: an anonymous mapping made with MAP_NORESERVE;
// Windows: a MEM_RESERVE range whose pages are committed as each tensor is decoded (commit_pages) — for an
// arena whose pages go back as soon as each tensor is on a device (LoadHooks::release), so that a 7B model
// (25 GiB of fp32 address space) loads on a machine with less memory than that. A plain arena keeps the system's accounting,
// so a model that cannot fit is a clean E_OOM rather than a process killed later.
void* arena_alloc(size_t bytes, bool reserve_only);
void arena_free(void* p, size_t bytes, bool reserve_only);

// The arena's allocator: zero blocks (arena_alloc: sizing a 7B model's arena touches no memory until a tensor
// is decoded into it; host_weights.h can hand pages back) and default-initialising construction (resize
// writes nothing; the block is already zero). It travels with its block on swap and move.
template <class T>
struct ZeroPages {
  using value_type = T;
  using propagate_on_container_swap = std::true_type;
  using propagate_on_container_move_assignment = std::true_type;
  bool reserve_only = false;
  ZeroPages() = default;
  explicit ZeroPages(bool reserve) : reserve_only(reserve) {}
  template <class U>
  ZeroPages(const ZeroPages<U>& o) : reserve_only(o.reserve_only) {}
  T* allocate(size_t n) { return static_cast<T*>(arena_alloc(n * sizeof(T), reserve_only)); }
  void deallocate(T* p, size_t n) { arena_free(p, n * sizeof(T), reserve_only); }
  template <class U>
  void construct(U* p) noexcept { ::new (static_cast<void*>(p)) U; }
  template <class U, class... A>
  void construct(U* p, A&&... a) { ::new (static_cast<void*>(p)) U(std::forward<A>(a)...); }
  template <class U>
  bool operator==(const ZeroPages<U>& o) const { return reserve_only == o.reserve_only; }
  template <class U>
  bool operator!=(const ZeroPages<U>& o) const { return reserve_only != o.reserve_only; }
};
using Arena = std::vector<float, ZeroPages<float>>;

struct WeightSource;  // host_weights.h

struct LayerShape {
  int n_head = 0;     // query heads (0 = attention pruned away)
  int n_kv_head = 0;  // key/value heads; n_head is a multiple of it
  int ffn = 0;        // SwiGLU channels (0 = MLP pruned away)
};

enum class RopeScalingType { None, Linear, Llama3 };

struct RopeScaling {
  RopeScalingType type = RopeScalingType::None;
  float factor = 1.f;
  float low_freq_factor = 1.f;
  float high_freq_factor = 4.f;
  int original_max_position = 8192;
};

struct Config {
  std::string format;        // "hf" | "gguf" | "llama2c"
  std::string architecture;  // "llama" | "deci"
  std::string source_dtype;  // dtype(s) of the file's weights, e.g. "F32", "F16+F32"
  int dim = 0;
  int n_layers = 0;
  int head_dim = 0;
  int vocab_size = 0;
  int context_length = 0;
  float norm_eps = 1e-5f;
  float rope_theta = 10000.f;
  bool rope_interleaved = false;  // true: pairs (2j, 2j+1) (GGUF, llama2.c); false: HF rotate-half (j, j+hd/2)
  bool source_rope_interleaved = false;  // the layout in the file (loaded models are made interleaved)
  RopeScaling rope_scaling;
  std::vector<float> rope_freq_factors;  // GGUF rope_freqs: divides each pair's frequency; empty = none
  bool tied = true;                      // lm_head shares token embeddings
  int bos_id = 1;
  int eos_id = 2;
  std::vector<LayerShape> layers;

  int max_heads() const;
  int max_kv_heads() const;
  int max_ffn() const;
};

struct LayerWeights {
  float* attn_norm;  // [dim]
  float* wq;         // [n_head*hd, dim]
  float* wk;         // [n_kv*hd, dim]
  float* wv;         // [n_kv*hd, dim]
  float* wo;         // [dim, n_head*hd]
  float* ffn_norm;   // [dim]
  float* w_gate;     // [ffn, dim]
  float* w_up;       // [ffn, dim]
  float* w_down;     // [dim, ffn]
};

// Which tensor of the model a file tensor is. Layer tensors carry their layer index.
enum class TensorKind { TokEmb, OutNorm, LmHead, AttnNorm, Wq, Wk, Wv, Wo, FfnNorm, WGate, WUp, WDown, RopeFreqs };
// the nine tensors of every layer, in arena order
inline constexpr TensorKind kLayerKinds[] = {TensorKind::AttnNorm, TensorKind::Wq, TensorKind::Wk, TensorKind::Wv, TensorKind::Wo,
                                             TensorKind::FfnNorm, TensorKind::WGate, TensorKind::WUp, TensorKind::WDown};

struct Model {
  Config cfg;
  Arena arena;               // every weight, one allocation
  float* tok_emb = nullptr;  // [vocab, dim]
  float* out_norm = nullptr; // [dim]
  float* lm_head = nullptr;  // [vocab, dim] (== tok_emb when tied)
  std::vector<LayerWeights> layers;
  Metadata metadata;         // format metadata (GGUF key/values: the embedded tokenizer lives here)
  // Where the weights can be decoded again (the mapped file, LoRA merges since), held exactly while the
  // model is released (LoadHooks::release): the arena's pages were handed back to the system once a device
  // backend held its copy, and host_weights.h reads a tensor from here (host_read, HostTensor).
  std::shared_ptr<WeightSource> source;
  bool host_released() const { return source != nullptr; }

  // expected row-major shape of a tensor given the config (empty if the tensor does not exist)
  std::vector<int64_t> expected_shape(TensorKind kind, int layer) const;
  float* tensor_ptr(TensorKind kind, int layer);
  uint64_t param_count() const;  // parameters, tied embeddings counted once
};

// Rewrites one q or k weight w[heads*head_dim, dim] of a rotate-half (HF) model into the interleaved layout
// (row j + p*head_dim/2 of each head becomes row 2j + p), so every model runs with one RoPE layout in memory
// and a file's layout never changes the arithmetic (a model exported to GGUF and read back scores bit for
// bit the same). The loader applies it to each q/k tensor as it is decoded.
void rows_to_interleaved(float* w, int heads, int head_dim, int64_t dim);

// Sizes the arena from cfg (validated first) and sets all tensor pointers. Weights are left zeroed. With
// reserve_only the block is mapped without reserving memory (arena_alloc): only for an arena released as it
// is filled. E_OOM when the system refuses the block (the model is then unchanged).
void model_allocate(Model& m, bool reserve_only = false);
// Checks a config for internal consistency; throws E_SHAPE / E_FORMAT with a message saying what is wrong.
void config_validate(const Config& c);
const char* tensor_kind_name(TensorKind k);

}  // namespace tailor
