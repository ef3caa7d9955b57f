// gguf.cpp — GGUF (v2/v3) reader: typed metadata, tensor directory, and the `llama` / `deci`
// architectures mapped onto Config. Every count, length and offset is checked against the file.
#include <algorithm>
#include <cstring>
#include <map>

#include "bytes.h"
#include "errors.h"
#include "loader.h"

namespace tailor {

namespace {

enum GgufType : uint32_t { U8 = 0, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64, N_TYPES };

constexpr int kMaxArrayDepth = 4;

uint64_t min_size(uint32_t t) {
  switch (t) {
    case U8: case I8: case BOOL: return 1;
    case U16: case I16: return 2;
    case U32: case I32: case F32: return 4;
    case U64: case I64: case F64: return 8;
    case STRING: return 8;
    case ARRAY: return 12;
  }
  return 1;
}

std::string gguf_string(ByteReader& r, const char* field) {
  uint64_t n = r.read<uint64_t>(field);
  if (n > r.remaining()) fail(ErrorCode::FORMAT, r.what() + ": " + field + " length " + std::to_string(n) + " runs past the end of the file");
  return r.utf8(n, field);
}

MetaValue read_value(ByteReader& r, uint32_t type, int depth, const std::string& key) {
  MetaValue v;
  switch (type) {
    case U8: v.type = MetaValue::UInt; v.u = r.read<uint8_t>("value"); break;
    case I8: v.type = MetaValue::Int; v.i = r.read<int8_t>("value"); break;
    case U16: v.type = MetaValue::UInt; v.u = r.read<uint16_t>("value"); break;
    case I16: v.type = MetaValue::Int; v.i = r.read<int16_t>("value"); break;
    case U32: v.type = MetaValue::UInt; v.u = r.read<uint32_t>("value"); break;
    case I32: v.type = MetaValue::Int; v.i = r.read<int32_t>("value"); break;
    case U64: v.type = MetaValue::UInt; v.u = r.read<uint64_t>("value"); break;
    case I64: v.type = MetaValue::Int; v.i = r.read<int64_t>("value"); break;
    case F32: v.type = MetaValue::Float; v.f = r.read<float>("value"); break;
    case F64: v.type = MetaValue::Float; v.f = r.read<double>("value"); break;
    case BOOL: {
      uint8_t b = r.read<uint8_t>("value");
      if (b > 1) fail(ErrorCode::FORMAT, r.what() + ": key " + key + ": bool value " + std::to_string(b));
      v.type = MetaValue::Bool;
      v.b = b;
      break;
    }
    case STRING: v.type = MetaValue::String; v.s = gguf_string(r, "string value"); break;
    case ARRAY: {
      if (depth >= kMaxArrayDepth) fail(ErrorCode::FORMAT, r.what() + ": key " + key + ": arrays nested deeper than " + std::to_string(kMaxArrayDepth));
      uint32_t et = r.read<uint32_t>("array type");
      if (et >= N_TYPES) fail(ErrorCode::FORMAT, r.what() + ": key " + key + ": unknown array element type " + std::to_string(et));
      uint64_t n = r.read<uint64_t>("array length");
      if (n > r.remaining() / min_size(et))
        fail(ErrorCode::FORMAT, r.what() + ": key " + key + ": array of " + std::to_string(n) + " elements cannot fit in the " + std::to_string(r.remaining()) + " bytes left");
      v.type = MetaValue::Array;
      v.arr.reserve(n);
      for (uint64_t k = 0; k < n; k++) v.arr.push_back(read_value(r, et, depth + 1, key));
      break;
    }
    default: fail(ErrorCode::FORMAT, r.what() + ": key " + key + ": unknown value type " + std::to_string(type));
  }
  return v;
}

// ggml type ids and the ones Tailor decodes
bool ggml_dtype(uint32_t t, DType& d, int& block) {
  switch (t) {
    case 0: d = DType::F32; block = 1; return true;
    case 1: d = DType::F16; block = 1; return true;
    case 8: d = DType::Q8_0; block = 32; return true;
    case 30: d = DType::BF16; block = 1; return true;
  }
  return false;
}

bool parse_gguf_name(const std::string& n, TensorKind& kind, int& layer) {
  layer = -1;
  if (n == "token_embd.weight") { kind = TensorKind::TokEmb; return true; }
  if (n == "output_norm.weight") { kind = TensorKind::OutNorm; return true; }
  if (n == "output.weight") { kind = TensorKind::LmHead; return true; }
  if (n == "rope_freqs.weight") { kind = TensorKind::RopeFreqs; return true; }
  if (n.compare(0, 4, "blk.") != 0) return false;
  size_t i = 4, j = 4;
  while (j < n.size() && j - i < 6 && n[j] >= '0' && n[j] <= '9') j++;
  if (j == i || j >= n.size() || n[j] != '.') return false;
  layer = std::stoi(n.substr(i, j - i));
  static const std::map<std::string, TensorKind> kNames = {
      {"attn_norm.weight", TensorKind::AttnNorm}, {"attn_q.weight", TensorKind::Wq},     {"attn_k.weight", TensorKind::Wk},
      {"attn_v.weight", TensorKind::Wv},          {"attn_output.weight", TensorKind::Wo}, {"ffn_norm.weight", TensorKind::FfnNorm},
      {"ffn_gate.weight", TensorKind::WGate},     {"ffn_up.weight", TensorKind::WUp},     {"ffn_down.weight", TensorKind::WDown}};
  auto it = kNames.find(n.substr(j + 1));
  if (it == kNames.end()) return false;
  kind = it->second;
  return true;
}

struct MetaReader {
  const Metadata& meta;
  std::string arch;
  std::string what;
  const MetaValue* find(const std::string& k) const { return meta_find(meta, arch + "." + k); }
  static bool as_int(const MetaValue& v, int64_t& out) {
    if (v.type == MetaValue::Int) { out = v.i; return true; }
    if (v.type == MetaValue::UInt && v.u <= uint64_t(INT64_MAX)) { out = int64_t(v.u); return true; }
    return false;
  }
  int64_t integer(const std::string& k, int64_t dflt, bool required = false) const {
    const MetaValue* v = find(k);
    if (!v) {
      if (required) fail(ErrorCode::FORMAT, what + ": missing metadata " + arch + "." + k);
      return dflt;
    }
    int64_t r;
    if (!as_int(*v, r)) fail(ErrorCode::FORMAT, what + ": metadata " + arch + "." + k + " must be an integer");
    if (r < 0 || r > (int64_t(1) << 30)) fail(ErrorCode::FORMAT, what + ": metadata " + arch + "." + k + " = " + std::to_string(r) + " is out of range");
    return r;
  }
  double number(const std::string& k, double dflt) const {
    const MetaValue* v = find(k);
    if (!v) return dflt;
    if (v->type == MetaValue::Float) return v->f;
    int64_t r;
    if (as_int(*v, r)) return double(r);
    fail(ErrorCode::FORMAT, what + ": metadata " + arch + "." + k + " must be a number");
  }
  // a per-layer value: a scalar for every layer, or an array (deci) with one entry per layer
  std::vector<int> per_layer(const std::string& k, int n_layers, int64_t dflt, bool required) const {
    const MetaValue* v = find(k);
    if (v && v->type == MetaValue::Array) {
      if (v->arr.size() != size_t(n_layers)) fail(ErrorCode::FORMAT, what + ": " + arch + "." + k + " has " + std::to_string(v->arr.size()) + " entries for " + std::to_string(n_layers) + " layers");
      std::vector<int> r;
      for (auto& e : v->arr) {
        int64_t x;
        if (!as_int(e, x) || x < 0 || x > (1 << 24)) fail(ErrorCode::FORMAT, what + ": " + arch + "." + k + " holds a bad entry");
        r.push_back(int(x));
      }
      return r;
    }
    return std::vector<int>(size_t(n_layers), int(integer(k, dflt, required)));
  }
};

}  // namespace

std::unique_ptr<Model> load_gguf(const std::string& path, const LoadHooks* hooks) {
  auto file = std::make_shared<const MappedFile>(path);
  const MappedFile& f = *file;
  ByteReader r(f.data(), f.size(), path);
  auto m = std::make_unique<Model>();
  if (f.size() < 4 || std::memcmp(f.data(), "GGUF", 4) != 0) fail(ErrorCode::FORMAT, path + ": not a GGUF file (bad magic)");
  r.read<uint32_t>("magic");
  uint32_t version = r.read<uint32_t>("version");
  if (version != 2 && version != 3) fail(ErrorCode::UNSUPPORTED, path + ": GGUF version " + std::to_string(version) + " is not supported (2 and 3 are)");
  uint64_t n_tensors = r.read<uint64_t>("tensor count");
  uint64_t n_kv = r.read<uint64_t>("metadata count");
  if (n_kv > r.remaining() / 13) fail(ErrorCode::FORMAT, path + ": metadata count " + std::to_string(n_kv) + " cannot fit in the file");
  if (n_tensors > r.remaining() / 24) fail(ErrorCode::FORMAT, path + ": tensor count " + std::to_string(n_tensors) + " cannot fit in the file");
  for (uint64_t k = 0; k < n_kv; k++) {
    std::string key = gguf_string(r, "metadata key");
    uint32_t type = r.read<uint32_t>("metadata type");
    m->metadata.emplace_back(key, read_value(r, type, 0, key));
  }
  uint64_t alignment = 32;
  if (const MetaValue* a = meta_find(m->metadata, "general.alignment")) {
    if (a->type != MetaValue::UInt || a->u == 0 || a->u > 65536 || (a->u & (a->u - 1)))
      fail(ErrorCode::FORMAT, path + ": general.alignment must be a power of two");
    alignment = a->u;
  }
  struct Info { std::string name; std::vector<int64_t> shape; uint32_t type; uint64_t offset, nbytes; };
  std::vector<Info> infos;
  for (uint64_t t = 0; t < n_tensors; t++) {
    Info in;
    in.name = gguf_string(r, "tensor name");
    uint32_t nd = r.read<uint32_t>("tensor dimension count");
    if (nd == 0 || nd > 4) fail(ErrorCode::FORMAT, path + ": tensor " + in.name + " has " + std::to_string(nd) + " dimensions (1 to 4 allowed)");
    std::vector<uint64_t> ne(nd);
    uint64_t numel = 1;
    for (uint32_t d = 0; d < nd; d++) {
      ne[d] = r.read<uint64_t>("tensor dimension");
      numel = checked_mul(numel, ne[d], (path + ": tensor " + in.name).c_str());
    }
    if (numel > (uint64_t(1) << 40)) fail(ErrorCode::FORMAT, path + ": tensor " + in.name + " claims " + std::to_string(numel) + " elements");
    for (uint32_t d = nd; d-- > 0;) in.shape.push_back(int64_t(ne[d]));
    in.type = r.read<uint32_t>("tensor type");
    in.offset = r.read<uint64_t>("tensor offset");
    DType dt;
    int block;
    if (!ggml_dtype(in.type, dt, block))
      fail(ErrorCode::UNSUPPORTED, path + ": tensor " + in.name + " has ggml type " + std::to_string(in.type) + "; Tailor reads F32, F16, BF16 and Q8_0");
    if (ne[0] % block != 0) fail(ErrorCode::FORMAT, path + ": tensor " + in.name + " row length is not a multiple of its block size");
    in.nbytes = dtype_bytes(dt, numel);
    if (in.offset % alignment != 0) fail(ErrorCode::FORMAT, path + ": tensor " + in.name + " offset is not aligned");
    infos.push_back(std::move(in));
  }
  uint64_t data_start = (r.pos() + alignment - 1) / alignment * alignment;
  if (data_start > f.size()) fail(ErrorCode::FORMAT, path + ": truncated before the tensor data");
  uint64_t data_size = f.size() - data_start;
  std::vector<const Info*> order;
  for (auto& in : infos) {
    if (in.offset > data_size || in.nbytes > data_size - in.offset)
      fail(ErrorCode::FORMAT, path + ": tensor " + in.name + " data [" + std::to_string(in.offset) + ", +" + std::to_string(in.nbytes) + ") runs past the end of the file");
    order.push_back(&in);
  }
  std::sort(order.begin(), order.end(), [](const Info* a, const Info* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < order.size(); i++)
    if (order[i]->nbytes && order[i]->offset < order[i - 1]->offset + order[i - 1]->nbytes)
      fail(ErrorCode::FORMAT, path + ": tensors " + order[i - 1]->name + " and " + order[i]->name + " overlap");

  // ---- metadata → config
  const MetaValue* av = meta_find(m->metadata, "general.architecture");
  if (!av || av->type != MetaValue::String) fail(ErrorCode::FORMAT, path + ": missing general.architecture");
  if (av->s != "llama" && av->s != "deci") fail(ErrorCode::UNSUPPORTED, path + ": architecture \"" + av->s + "\" is not supported (llama, deci)");
  MetaReader mr{m->metadata, av->s, path};
  Config& c = m->cfg;
  c.format = "gguf";
  c.architecture = av->s;
  c.rope_interleaved = true;
  c.dim = int(mr.integer("embedding_length", 0, true));
  c.n_layers = int(mr.integer("block_count", 0, true));
  c.context_length = int(mr.integer("context_length", 2048));
  if (c.n_layers <= 0 || c.n_layers > 4096) fail(ErrorCode::FORMAT, path + ": block_count " + std::to_string(c.n_layers) + " is out of range");
  std::vector<int> heads = mr.per_layer("attention.head_count", c.n_layers, 0, true);
  std::vector<int> kv = mr.find("attention.head_count_kv") ? mr.per_layer("attention.head_count_kv", c.n_layers, 0, false) : heads;
  std::vector<int> ffn = mr.per_layer("feed_forward_length", c.n_layers, 0, true);
  int max_heads = *std::max_element(heads.begin(), heads.end());
  c.head_dim = int(mr.integer("attention.key_length", max_heads > 0 ? c.dim / max_heads : 0));
  if (mr.integer("attention.value_length", c.head_dim) != c.head_dim) fail(ErrorCode::UNSUPPORTED, path + ": value_length differs from key_length");
  if (mr.integer("rope.dimension_count", c.head_dim) != c.head_dim) fail(ErrorCode::UNSUPPORTED, path + ": partial rotary embeddings (rope.dimension_count < head dim) are not supported");
  c.rope_theta = float(mr.number("rope.freq_base", 10000.0));
  c.norm_eps = float(mr.number("attention.layer_norm_rms_epsilon", 1e-5));
  if (const MetaValue* st = mr.find("rope.scaling.type")) {
    if (st->type != MetaValue::String) fail(ErrorCode::FORMAT, path + ": rope.scaling.type must be a string");
    if (st->s == "linear") {
      c.rope_scaling.type = RopeScalingType::Linear;
      c.rope_scaling.factor = float(mr.number("rope.scaling.factor", 1.0));
    } else if (st->s != "none") {
      fail(ErrorCode::UNSUPPORTED, path + ": rope scaling \"" + st->s + "\" is not supported (linear, or llama3 through rope_freqs)");
    }
  }
  c.layers.resize(size_t(c.n_layers));
  for (int l = 0; l < c.n_layers; l++) c.layers[l] = LayerShape{heads[l], kv[l], ffn[l]};
  auto tok_id = [&](const char* key, int dflt) {
    const MetaValue* v = meta_find(m->metadata, key);
    int64_t x;
    return v && MetaReader::as_int(*v, x) ? int(x) : dflt;
  };
  c.bos_id = tok_id("tokenizer.ggml.bos_token_id", 1);
  c.eos_id = tok_id("tokenizer.ggml.eos_token_id", 2);

  std::vector<TensorRef> refs;
  bool has_output = false;
  const uint8_t* data = f.data() + data_start;
  std::string dtypes;
  for (auto& in : infos) {
    TensorKind kind;
    int layer;
    if (!parse_gguf_name(in.name, kind, layer)) continue;
    DType dt = DType::F32;
    int block = 1;
    ggml_dtype(in.type, dt, block);
    if (kind == TensorKind::TokEmb) {
      if (in.shape.size() != 2) fail(ErrorCode::SHAPE, path + ": token_embd.weight must be 2-D");
      c.vocab_size = int(std::min<int64_t>(in.shape[0], int64_t(1) << 30));
    }
    if (kind == TensorKind::LmHead) has_output = true;
    if (kind == TensorKind::RopeFreqs) {
      if (dt != DType::F32 || in.shape.size() != 1 || in.shape[0] != c.head_dim / 2)
        fail(ErrorCode::SHAPE, path + ": rope_freqs.weight must be F32 with head_dim/2 entries");
      c.rope_freq_factors.resize(size_t(c.head_dim / 2));
      std::memcpy(c.rope_freq_factors.data(), data + in.offset, in.nbytes);
      continue;
    }
    if (dtypes.find(dtype_name(dt)) == std::string::npos) dtypes += std::string(dtypes.empty() ? "" : "+") + dtype_name(dt);
    refs.push_back(TensorRef{in.name, kind, layer, dt, in.shape, data + in.offset, in.nbytes});
  }
  if (c.vocab_size == 0) fail(ErrorCode::SHAPE, path + ": missing tensor token_embd.weight");
  if (const MetaValue* vs = mr.find("vocab_size")) {
    int64_t x;
    if (MetaReader::as_int(*vs, x) && x != c.vocab_size)
      fail(ErrorCode::SHAPE, path + ": " + c.architecture + ".vocab_size is " + std::to_string(x) + " but token_embd.weight has " + std::to_string(c.vocab_size) + " rows");
  }
  c.tied = !has_output;
  c.source_dtype = dtypes;
  fill_weights(*m, refs, {file}, path, hooks);
  return m;
}

}  // namespace tailor
