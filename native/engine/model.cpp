// model.cpp — config validation, arena blocks and layout, and parameter accounting for Model.
#include "model.h"

#include <algorithm>
#include <cstdlib>

#ifdef _WIN32
#include "win32.h"
#else
#include <sys/mman.h>
#endif

#include "errors.h"

namespace tailor {

int Config::max_heads() const {
  int m = 0;
  for (auto& l : layers) m = std::max(m, l.n_head);
  return m;
}
int Config::max_kv_heads() const {
  int m = 0;
  for (auto& l : layers) m = std::max(m, l.n_kv_head);
  return m;
}
int Config::max_ffn() const {
  int m = 0;
  for (auto& l : layers) m = std::max(m, l.ffn);
  return m;
}

const char* tensor_kind_name(TensorKind k) {
  switch (k) {
    case TensorKind::TokEmb: return "token embeddings";
    case TensorKind::OutNorm: return "final norm";
    case TensorKind::LmHead: return "lm_head";
    case TensorKind::AttnNorm: return "attention norm";
    case TensorKind::Wq: return "q_proj";
    case TensorKind::Wk: return "k_proj";
    case TensorKind::Wv: return "v_proj";
    case TensorKind::Wo: return "o_proj";
    case TensorKind::FfnNorm: return "MLP norm";
    case TensorKind::WGate: return "gate_proj";
    case TensorKind::WUp: return "up_proj";
    case TensorKind::WDown: return "down_proj";
    case TensorKind::RopeFreqs: return "rope_freqs";
  }
  return "?";
}

void config_validate(const Config& c) {
  const int64_t kMax = int64_t(1) << 24;  // no dimension of a real LLaMA comes near 16M
  auto bad = [](const std::string& m) { fail(ErrorCode::SHAPE, "model configuration: " + m); };
  if (c.dim <= 0 || c.dim > kMax) bad("hidden size " + std::to_string(c.dim) + " is out of range");
  if (c.n_layers <= 0 || c.n_layers > 4096) bad("layer count " + std::to_string(c.n_layers) + " is out of range");
  if (c.vocab_size <= 0 || c.vocab_size > kMax) bad("vocabulary size " + std::to_string(c.vocab_size) + " is out of range");
  if (c.head_dim <= 0 || c.head_dim > 4096 || c.head_dim % 2 != 0) bad("head dimension " + std::to_string(c.head_dim) + " must be a positive even number");
  if (c.context_length <= 0 || c.context_length > (1 << 22)) bad("context length " + std::to_string(c.context_length) + " is out of range");
  if (!(c.norm_eps > 0) || !(c.rope_theta > 0)) bad("rms_norm_eps and rope_theta must be positive");
  if (int(c.layers.size()) != c.n_layers) bad("per-layer shape list has " + std::to_string(c.layers.size()) + " entries for " + std::to_string(c.n_layers) + " layers");
  if (!c.rope_freq_factors.empty() && int(c.rope_freq_factors.size()) != c.head_dim / 2) bad("rope_freqs must have head_dim/2 entries");
  if (c.rope_scaling.type != RopeScalingType::None && !(c.rope_scaling.factor > 0)) bad("rope scaling factor must be positive");
  for (size_t l = 0; l < c.layers.size(); l++) {
    const LayerShape& s = c.layers[l];
    std::string at = "layer " + std::to_string(l) + ": ";
    if (s.n_head < 0 || s.n_kv_head < 0 || s.ffn < 0 || s.n_head > 65536 || s.n_kv_head > 65536 || s.ffn > kMax) bad(at + "head/FFN counts out of range");
    if ((s.n_head == 0) != (s.n_kv_head == 0)) bad(at + std::to_string(s.n_head) + " query heads but " + std::to_string(s.n_kv_head) + " KV heads");
    if (s.n_kv_head > 0 && s.n_head % s.n_kv_head != 0)
      bad(at + std::to_string(s.n_head) + " query heads are not a multiple of " + std::to_string(s.n_kv_head) + " KV heads");
  }
}

std::vector<int64_t> Model::expected_shape(TensorKind kind, int l) const {
  const Config& c = cfg;
  const int64_t d = c.dim, hd = c.head_dim;
  auto L = [&]() -> const LayerShape& { return c.layers.at(l); };
  switch (kind) {
    case TensorKind::TokEmb: return {c.vocab_size, d};
    case TensorKind::OutNorm: return {d};
    case TensorKind::LmHead: return c.tied ? std::vector<int64_t>{} : std::vector<int64_t>{c.vocab_size, d};
    case TensorKind::AttnNorm: return {d};
    case TensorKind::FfnNorm: return {d};
    case TensorKind::Wq: return {L().n_head * hd, d};
    case TensorKind::Wk: return {L().n_kv_head * hd, d};
    case TensorKind::Wv: return {L().n_kv_head * hd, d};
    case TensorKind::Wo: return {d, L().n_head * hd};
    case TensorKind::WGate: return {L().ffn, d};
    case TensorKind::WUp: return {L().ffn, d};
    case TensorKind::WDown: return {d, L().ffn};
    case TensorKind::RopeFreqs: return {hd / 2};
  }
  return {};
}

float* Model::tensor_ptr(TensorKind kind, int l) {
  switch (kind) {
    case TensorKind::TokEmb: return tok_emb;
    case TensorKind::OutNorm: return out_norm;
    case TensorKind::LmHead: return cfg.tied ? nullptr : lm_head;
    case TensorKind::AttnNorm: return layers.at(l).attn_norm;
    case TensorKind::Wq: return layers.at(l).wq;
    case TensorKind::Wk: return layers.at(l).wk;
    case TensorKind::Wv: return layers.at(l).wv;
    case TensorKind::Wo: return layers.at(l).wo;
    case TensorKind::FfnNorm: return layers.at(l).ffn_norm;
    case TensorKind::WGate: return layers.at(l).w_gate;
    case TensorKind::WUp: return layers.at(l).w_up;
    case TensorKind::WDown: return layers.at(l).w_down;
    case TensorKind::RopeFreqs: return nullptr;
  }
  return nullptr;
}

static uint64_t numel(const std::vector<int64_t>& s) {
  uint64_t n = 1;
  for (auto v : s) n *= uint64_t(v);
  return s.empty() ? 0 : n;
}

uint64_t Model::param_count() const {
  uint64_t n = numel(expected_shape(TensorKind::TokEmb, 0)) + numel(expected_shape(TensorKind::OutNorm, 0)) +
               numel(expected_shape(TensorKind::LmHead, 0));
  for (int l = 0; l < cfg.n_layers; l++)
    for (TensorKind k : kLayerKinds) n += numel(expected_shape(k, l));
  return n;
}

void rows_to_interleaved(float* w, int heads, int head_dim, int64_t dim) {
  const int64_t hd = head_dim, half = hd / 2, D = dim;
  std::vector<float> tmp(size_t(hd * D));  // one head's rows
  for (int h = 0; h < heads; h++) {
    float* blk = w + int64_t(h) * hd * D;  // [hd, D]
    for (int64_t p = 0; p < 2; p++)
      for (int64_t j = 0; j < half; j++) std::copy(blk + (p * half + j) * D, blk + (p * half + j + 1) * D, tmp.begin() + (2 * j + p) * D);
    std::copy(tmp.begin(), tmp.end(), blk);
  }
}

void* arena_alloc(size_t bytes, bool reserve_only) {
  if (reserve_only && bytes) {
#ifdef _WIN32
    // an address range only: pages are committed as each tensor is decoded (commit_pages, host_weights.h)
    void* p = VirtualAlloc(nullptr, bytes, MEM_RESERVE, PAGE_READWRITE);
    if (!p) throw std::bad_alloc();
#else
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
#endif
    return p;
  }
  void* p = std::calloc(bytes ? bytes : 1, 1);
  if (!p) throw std::bad_alloc();
  return p;
}

void arena_free(void* p, size_t bytes, bool reserve_only) {
  if (reserve_only && bytes) {
#ifdef _WIN32
    VirtualFree(p, 0, MEM_RELEASE);
#else
    ::munmap(p, bytes);
#endif
    return;
  }
  std::free(p);
}

void model_allocate(Model& m, bool reserve_only) {
  config_validate(m.cfg);
  uint64_t total = m.param_count();
  // keep every tensor 16-float aligned within the arena
  total += 16ull * (4 + 9ull * m.cfg.n_layers);
  try {
    Arena fresh{ZeroPages<float>(reserve_only)};
    fresh.resize(total);  // zero pages, untouched
    m.arena.swap(fresh);
  } catch (const std::bad_alloc&) {
    fail(ErrorCode::OOM, "not enough memory for " + std::to_string(total * 4 / (1 << 20)) + " MiB of weights");
  }
  uint64_t off = 0;
  auto take = [&](const std::vector<int64_t>& shape) -> float* {
    float* p = m.arena.data() + off;
    off += (numel(shape) + 15) / 16 * 16;
    return p;
  };
  m.tok_emb = take(m.expected_shape(TensorKind::TokEmb, 0));
  m.out_norm = take(m.expected_shape(TensorKind::OutNorm, 0));
  m.lm_head = m.cfg.tied ? m.tok_emb : take(m.expected_shape(TensorKind::LmHead, 0));
  m.layers.assign(m.cfg.n_layers, LayerWeights{});
  for (int l = 0; l < m.cfg.n_layers; l++) {
    LayerWeights& w = m.layers[l];
    w.attn_norm = take(m.expected_shape(TensorKind::AttnNorm, l));
    w.wq = take(m.expected_shape(TensorKind::Wq, l));
    w.wk = take(m.expected_shape(TensorKind::Wk, l));
    w.wv = take(m.expected_shape(TensorKind::Wv, l));
    w.wo = take(m.expected_shape(TensorKind::Wo, l));
    w.ffn_norm = take(m.expected_shape(TensorKind::FfnNorm, l));
    w.w_gate = take(m.expected_shape(TensorKind::WGate, l));
    w.w_up = take(m.expected_shape(TensorKind::WUp, l));
    w.w_down = take(m.expected_shape(TensorKind::WDown, l));
  }
  if (off > m.arena.size()) fail(ErrorCode::INTERNAL, "arena layout overflow");
}

}  // namespace tailor
