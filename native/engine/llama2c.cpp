// llama2c.cpp — llama2.c checkpoint reader (legacy v0: a 7×int32 header, then all weights in F32;
// a negative vocab size means the classifier is stored separately at the end).
#include <cstring>

#include "bytes.h"
#include "errors.h"
#include "loader.h"

namespace tailor {

std::unique_ptr<Model> load_llama2c(const std::string& path, const LoadHooks* hooks) {
  auto file = std::make_shared<const MappedFile>(path);
  const MappedFile& f = *file;
  ByteReader r(f.data(), f.size(), path);
  int32_t h[7];
  const char* names[7] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
  for (int i = 0; i < 7; i++) h[i] = r.read<int32_t>(names[i]);
  bool shared = h[5] > 0;
  int64_t vocab = h[5] < 0 ? -int64_t(h[5]) : h[5];
  for (int i = 0; i < 7; i++) {
    int64_t v = i == 5 ? vocab : h[i];
    if (v <= 0) fail(ErrorCode::FORMAT, path + ": llama2.c header field " + names[i] + " = " + std::to_string(h[i]) + " must be positive (is this a llama2.c .bin checkpoint?)");
  }
  int64_t dim = h[0], hidden = h[1], L = h[2], nh = h[3], nkv = h[4], seq = h[6];
  // the sizes must describe the file before they can disagree with each other
  if (dim > (1 << 24) || hidden > (1 << 26) || L > 4096 || vocab > (1 << 24) || nh > 65536 || seq > (1 << 22))
    fail(ErrorCode::FORMAT, path + ": llama2.c header sizes are out of range (dim " + std::to_string(dim) + ", hidden " + std::to_string(hidden) +
                                ", layers " + std::to_string(L) + ", vocab " + std::to_string(vocab) + ") — not a llama2.c checkpoint?");
  if (dim % nh != 0) fail(ErrorCode::SHAPE, path + ": dim " + std::to_string(dim) + " is not a multiple of n_heads " + std::to_string(nh));
  if (nh % nkv != 0) fail(ErrorCode::SHAPE, path + ": n_heads " + std::to_string(nh) + " is not a multiple of n_kv_heads " + std::to_string(nkv));
  int64_t hd = dim / nh;
  if (hd % 2) fail(ErrorCode::SHAPE, path + ": head size " + std::to_string(hd) + " is odd");
  // expected size, overflow-checked
  const char* w = path.c_str();
  auto mul = [&](uint64_t a, uint64_t b) { return checked_mul(a, b, w); };
  uint64_t kvd = uint64_t(nkv * hd);
  uint64_t per_layer = 0;
  per_layer = checked_add(per_layer, mul(uint64_t(dim), 2), w);  // rms_att, rms_ffn
  per_layer = checked_add(per_layer, mul(mul(uint64_t(dim), uint64_t(dim)), 2), w);  // wq, wo
  per_layer = checked_add(per_layer, mul(mul(kvd, uint64_t(dim)), 2), w);     // wk, wv
  per_layer = checked_add(per_layer, mul(mul(uint64_t(hidden), uint64_t(dim)), 3), w);  // w1, w2, w3
  uint64_t floats = mul(uint64_t(vocab), uint64_t(dim));
  floats = checked_add(floats, mul(per_layer, uint64_t(L)), w);
  floats = checked_add(floats, uint64_t(dim), w);
  floats = checked_add(floats, mul(uint64_t(seq), uint64_t(hd)), w);  // freq_cis_real + imag, seq × hd/2 each
  if (!shared) floats = checked_add(floats, mul(uint64_t(vocab), uint64_t(dim)), w);
  uint64_t bytes = checked_add(mul(floats, 4), 28, w);
  if (bytes != f.size())
    fail(ErrorCode::FORMAT, path + ": llama2.c checkpoint should be " + std::to_string(bytes) + " bytes for its header, but the file has " + std::to_string(f.size()) +
                                (f.size() < bytes ? " (truncated?)" : " (not a v0 llama2.c checkpoint?)"));

  auto m = std::make_unique<Model>();
  Config& c = m->cfg;
  c.format = "llama2c";
  c.architecture = "llama";
  c.source_dtype = "F32";
  c.dim = int(dim);
  c.n_layers = int(L);
  c.head_dim = int(hd);
  c.vocab_size = int(vocab);
  c.context_length = int(seq);
  c.norm_eps = 1e-5f;
  c.rope_theta = 10000.f;
  c.rope_interleaved = true;
  c.tied = shared;
  c.layers.assign(size_t(L), LayerShape{int(nh), int(nkv), int(hidden)});

  const uint8_t* p = f.data() + 28;
  std::vector<TensorRef> refs;
  auto take = [&](const std::string& name, TensorKind k, int layer, std::vector<int64_t> shape) {
    uint64_t n = 1;
    for (auto s : shape) n *= uint64_t(s);
    refs.push_back(TensorRef{name, k, layer, DType::F32, shape, p, n * 4});
    p += n * 4;
  };
  take("token_embedding_table", TensorKind::TokEmb, -1, {vocab, dim});
  auto per = [&](const char* name, TensorKind k, std::vector<int64_t> shape) {
    for (int l = 0; l < L; l++) take(std::string(name) + "[" + std::to_string(l) + "]", k, l, shape);
  };
  per("rms_att_weight", TensorKind::AttnNorm, {dim});
  per("wq", TensorKind::Wq, {nh * hd, dim});
  per("wk", TensorKind::Wk, {nkv * hd, dim});
  per("wv", TensorKind::Wv, {nkv * hd, dim});
  per("wo", TensorKind::Wo, {dim, nh * hd});
  per("rms_ffn_weight", TensorKind::FfnNorm, {dim});
  per("w1", TensorKind::WGate, {hidden, dim});
  per("w2", TensorKind::WDown, {dim, hidden});
  per("w3", TensorKind::WUp, {hidden, dim});
  take("rms_final_weight", TensorKind::OutNorm, -1, {dim});
  p += uint64_t(seq) * uint64_t(hd) * 4;  // freq_cis_real/imag: recomputed, not read
  if (!shared) take("wcls", TensorKind::LmHead, -1, {vocab, dim});
  fill_weights(*m, refs, {file}, path, hooks);
  return m;
}

}  // namespace tailor
