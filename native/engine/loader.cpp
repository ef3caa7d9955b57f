// loader.cpp — format detection, weight filling shared by all formats, and the Hugging Face loader
// (config.json + model.safetensors, or shards listed in model.safetensors.index.json).
#include "loader.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

#include "bytes.h"
#include "errors.h"
#include "host_weights.h"
#include "json.h"

namespace tailor {

static uint64_t shape_numel(const std::vector<int64_t>& s) {
  uint64_t n = 1;
  for (auto v : s) n *= uint64_t(v);
  return n;
}

static std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); i++) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

void fill_weights(Model& m, const std::vector<TensorRef>& refs, const std::vector<std::shared_ptr<const MappedFile>>& files,
                  const std::string& what, const LoadHooks* hooks) {
  config_validate(m.cfg);
  static const LoadHooks kNone;
  const LoadHooks& h = hooks ? *hooks : kNone;
  // 1. check every tensor against the config before allocating anything: the file's own sizes then
  //    bound the allocation, so a hostile config cannot make us reserve memory the file doesn't back
  std::set<std::pair<int, int>> seen;  // (kind, layer)
  std::vector<const TensorRef*> use;
  for (const TensorRef& r : refs) {
    if (r.kind == TensorKind::RopeFreqs) continue;
    if (r.layer >= m.cfg.n_layers) fail(ErrorCode::SHAPE, what + ": tensor " + r.name + " is for layer " + std::to_string(r.layer) + " but the model has " + std::to_string(m.cfg.n_layers) + " layers");
    std::vector<int64_t> want = m.expected_shape(r.kind, r.layer < 0 ? 0 : r.layer);
    if (want.empty()) continue;  // e.g. an lm_head stored beside tied embeddings
    bool zero = shape_numel(want) == 0;
    if (r.shape != want && !(zero && shape_numel(r.shape) == 0))
      fail(ErrorCode::SHAPE, what + ": tensor " + r.name + " has shape " + shape_str(r.shape) + " but the configuration implies " + shape_str(want));
    if (!seen.insert({int(r.kind), r.layer}).second) fail(ErrorCode::FORMAT, what + ": tensor " + r.name + " appears twice");
    uint64_t n = shape_numel(want);
    if (r.nbytes != dtype_bytes(r.dtype, n)) fail(ErrorCode::FORMAT, what + ": tensor " + r.name + " has " + std::to_string(r.nbytes) + " bytes, its shape needs " + std::to_string(dtype_bytes(r.dtype, n)));
    use.push_back(&r);
  }
  auto need = [&](TensorKind k, int l) {
    std::vector<int64_t> s = m.expected_shape(k, l < 0 ? 0 : l);
    if (s.empty() || shape_numel(s) == 0) return;
    // a sublayer pruned away entirely needs no norm weights (pruned-model exports omit them)
    if (k == TensorKind::AttnNorm && m.cfg.layers[l].n_head == 0) return;
    if (k == TensorKind::FfnNorm && m.cfg.layers[l].ffn == 0) return;
    if (!seen.count({int(k), l}))
      fail(ErrorCode::SHAPE, what + ": missing tensor: " + tensor_kind_name(k) + (l >= 0 ? " of layer " + std::to_string(l) : std::string()));
  };
  need(TensorKind::TokEmb, -1);
  need(TensorKind::OutNorm, -1);
  need(TensorKind::LmHead, -1);
  for (int l = 0; l < m.cfg.n_layers; l++)
    for (TensorKind k : kLayerKinds) need(k, l);
  // 2. allocate and decode, tensor by tensor in the file's order (sequential reads of the mapping)
  h.cancel.check();
  const bool permute = !m.cfg.rope_interleaved;  // rotate-half q/k rows in the file
  m.cfg.source_rope_interleaved = m.cfg.rope_interleaved;
  m.cfg.rope_interleaved = true;  // the layout in memory once each q/k tensor is decoded
  if (h.header_only) return;
  std::shared_ptr<WeightSource> src;
  if (h.release) {
    src = std::make_shared<WeightSource>();
    src->files = files;
    src->permute_qk = permute;
  }
  model_allocate(m, h.release);  // a released arena only needs its address range
  if (h.allocated) h.allocated(m);
  std::sort(use.begin(), use.end(), [](const TensorRef* a, const TensorRef* b) { return a->data < b->data; });
  uint64_t total = 0, done = 0;
  for (const TensorRef* r : use) total += r->nbytes;
  if (h.progress) h.progress(0, total);
  for (const TensorRef* r : use) {
    const uint64_t n = shape_numel(r->shape);
    float* dst = m.tensor_ptr(r->kind, r->layer);
    if (n) {
      if (h.release) commit_pages(dst, size_t(n) * sizeof(float));
      decode_tensor(m, r->kind, r->layer, r->dtype, r->data, n, permute, dst);
      if (h.tensor) h.tensor(m, dst, size_t(n));
      if (src) src->tensors.push_back({r->kind, r->layer, r->dtype, r->data, n});
      if (h.release) discard_pages(dst, size_t(n) * sizeof(float));
    }
    done += r->nbytes;
    if (h.progress) h.progress(done, total);
    h.cancel.check();
  }
  m.source = src;
}

// ---- Hugging Face config.json --------------------------------------------------------------------

static std::vector<int> int_list(const Json& o, const std::string& key, size_t n, const std::string& what) {
  const Json* v = o.get(key);
  if (!v || v->type == Json::Null) return {};
  if (v->type != Json::Array || v->arr.size() != n)
    fail(ErrorCode::FORMAT, what + ": \"" + key + "\" must be a list with one entry per layer (" + std::to_string(n) + ")");
  std::vector<int> r;
  for (auto& e : v->arr) {
    if (!e.is_int() || e.num < 0 || e.num > (1 << 24)) fail(ErrorCode::FORMAT, what + ": \"" + key + "\" must hold non-negative integers");
    r.push_back(int(e.num));
  }
  return r;
}

void parse_hf_config(const std::string& text, const std::string& what, Config& c) {
  Json j = parse_json(text.data(), text.size(), what);
  if (j.type != Json::Object) fail(ErrorCode::FORMAT, what + ": expected a JSON object");
  if (const Json* mt = j.get("model_type")) {
    if (mt->type != Json::String) fail(ErrorCode::FORMAT, what + ": model_type must be a string");
    if (mt->str != "llama" && mt->str != "mistral")
      fail(ErrorCode::UNSUPPORTED, what + ": model_type \"" + mt->str + "\" is not a LLaMA-family model (llama, mistral)");
  }
  if (json_bool_or(j, "attention_bias", false, what) || json_bool_or(j, "mlp_bias", false, what))
    fail(ErrorCode::UNSUPPORTED, what + ": attention/MLP biases are not supported");
  if (const Json* act = j.get("hidden_act"))
    if (act->type != Json::String || act->str != "silu") fail(ErrorCode::UNSUPPORTED, what + ": hidden_act must be \"silu\"");
  auto clamp_int = [&](int64_t v, const char* key) -> int {
    if (v < 0 || v > (int64_t(1) << 30)) fail(ErrorCode::FORMAT, what + ": \"" + key + "\" is out of range");
    return int(v);
  };
  c.architecture = "llama";
  c.dim = clamp_int(json_int(j, "hidden_size", what), "hidden_size");
  c.n_layers = clamp_int(json_int(j, "num_hidden_layers", what), "num_hidden_layers");
  int n_head = clamp_int(json_int(j, "num_attention_heads", what), "num_attention_heads");
  int n_kv = clamp_int(json_int_or(j, "num_key_value_heads", n_head, what), "num_key_value_heads");
  int ffn = clamp_int(json_int(j, "intermediate_size", what), "intermediate_size");
  c.vocab_size = clamp_int(json_int(j, "vocab_size", what), "vocab_size");
  c.context_length = clamp_int(json_int_or(j, "max_position_embeddings", 2048, what), "max_position_embeddings");
  int64_t sliding = json_int_or(j, "sliding_window", 0, what);
  if (sliding > 0 && sliding < c.context_length) c.context_length = int(sliding);  // exact without a sliding-window kernel
  c.head_dim = clamp_int(json_int_or(j, "head_dim", n_head > 0 ? c.dim / n_head : 0, what), "head_dim");
  if (!j.get("head_dim") && n_head > 0 && c.dim % n_head != 0) fail(ErrorCode::SHAPE, what + ": hidden_size is not a multiple of num_attention_heads and no head_dim is given");
  c.norm_eps = float(json_num_or(j, "rms_norm_eps", 1e-6, what));
  c.rope_theta = float(json_num_or(j, "rope_theta", 10000.0, what));
  c.tied = json_bool_or(j, "tie_word_embeddings", false, what);
  c.rope_interleaved = false;
  c.bos_id = int(json_int_or(j, "bos_token_id", 1, what));
  if (const Json* e = j.get("eos_token_id")) {
    if (e->type == Json::Array && !e->arr.empty() && e->arr[0].is_int()) c.eos_id = int(e->arr[0].num);
    else if (e->is_int()) c.eos_id = int(e->num);
  }
  if (const Json* rs = j.get("rope_scaling"); rs && rs->type != Json::Null) {
    if (rs->type != Json::Object) fail(ErrorCode::FORMAT, what + ": rope_scaling must be an object");
    const Json* t = rs->get("rope_type");
    if (!t) t = rs->get("type");
    std::string type = t && t->type == Json::String ? t->str : "";
    if (type == "linear") {
      c.rope_scaling.type = RopeScalingType::Linear;
      c.rope_scaling.factor = float(json_num_or(*rs, "factor", 1.0, what));
    } else if (type == "llama3") {
      c.rope_scaling.type = RopeScalingType::Llama3;
      c.rope_scaling.factor = float(json_num_or(*rs, "factor", 8.0, what));
      c.rope_scaling.low_freq_factor = float(json_num_or(*rs, "low_freq_factor", 1.0, what));
      c.rope_scaling.high_freq_factor = float(json_num_or(*rs, "high_freq_factor", 4.0, what));
      c.rope_scaling.original_max_position = int(json_int_or(*rs, "original_max_position_embeddings", 8192, what));
      if (!(c.rope_scaling.high_freq_factor > c.rope_scaling.low_freq_factor) || c.rope_scaling.original_max_position <= 0)
        fail(ErrorCode::FORMAT, what + ": llama3 rope_scaling needs high_freq_factor > low_freq_factor and a positive original_max_position_embeddings");
    } else if (type != "default" && !type.empty()) {
      fail(ErrorCode::UNSUPPORTED, what + ": rope_scaling type \"" + type + "\" is not supported (linear, llama3)");
    }
  }
  std::vector<int> lh = int_list(j, "layer_num_attention_heads", c.n_layers, what);
  std::vector<int> lkv = int_list(j, "layer_num_key_value_heads", c.n_layers, what);
  std::vector<int> lffn = int_list(j, "layer_intermediate_sizes", c.n_layers, what);
  c.layers.assign(size_t(c.n_layers), LayerShape{n_head, n_kv, ffn});
  for (int l = 0; l < c.n_layers; l++) {
    if (!lh.empty()) c.layers[l].n_head = lh[l];
    if (!lkv.empty()) c.layers[l].n_kv_head = lkv[l];
    if (!lffn.empty()) c.layers[l].ffn = lffn[l];
  }
}

// ---- safetensors ---------------------------------------------------------------------------------

static bool parse_hf_name(const std::string& n, TensorKind& kind, int& layer) {
  layer = -1;
  if (n == "model.embed_tokens.weight") { kind = TensorKind::TokEmb; return true; }
  if (n == "model.norm.weight") { kind = TensorKind::OutNorm; return true; }
  if (n == "lm_head.weight") { kind = TensorKind::LmHead; return true; }
  const std::string pre = "model.layers.";
  if (n.compare(0, pre.size(), pre) != 0) return false;
  size_t i = pre.size(), j = i;
  while (j < n.size() && j - i < 6 && n[j] >= '0' && n[j] <= '9') j++;
  if (j == i || j >= n.size() || n[j] != '.') return false;
  layer = std::stoi(n.substr(i, j - i));
  std::string rest = n.substr(j + 1);
  static const std::map<std::string, TensorKind> kNames = {
      {"input_layernorm.weight", TensorKind::AttnNorm},   {"self_attn.q_proj.weight", TensorKind::Wq},
      {"self_attn.k_proj.weight", TensorKind::Wk},        {"self_attn.v_proj.weight", TensorKind::Wv},
      {"self_attn.o_proj.weight", TensorKind::Wo},        {"post_attention_layernorm.weight", TensorKind::FfnNorm},
      {"mlp.gate_proj.weight", TensorKind::WGate},        {"mlp.up_proj.weight", TensorKind::WUp},
      {"mlp.down_proj.weight", TensorKind::WDown}};
  auto it = kNames.find(rest);
  if (it == kNames.end()) return false;
  kind = it->second;
  return true;
}

// Parses one safetensors file's header and appends the model tensors it holds to refs.
static void scan_safetensors(const MappedFile& f, std::vector<TensorRef>& refs, std::set<std::string>* want_names) {
  const std::string what = f.path();
  ByteReader r(f.data(), f.size(), what);
  uint64_t hlen = r.read<uint64_t>("header length");
  if (hlen > r.remaining()) fail(ErrorCode::FORMAT, what + ": header length " + std::to_string(hlen) + " runs past the end of the file (" + std::to_string(f.size()) + " bytes)");
  if (hlen > 100ull << 20) fail(ErrorCode::FORMAT, what + ": header length " + std::to_string(hlen) + " exceeds safetensors' 100 MB limit");
  const uint8_t* h = r.bytes(hlen, "header");
  Json j = parse_json(reinterpret_cast<const char*>(h), hlen, what + " header");
  if (j.type != Json::Object) fail(ErrorCode::FORMAT, what + ": header is not a JSON object");
  const uint8_t* data = f.data() + 8 + hlen;
  uint64_t data_size = f.size() - 8 - hlen;
  struct Span { uint64_t b, e; std::string name; };
  std::vector<Span> spans;
  for (auto& kv : j.obj) {
    const std::string& name = kv.first;
    if (name == "__metadata__") continue;
    const Json& t = kv.second;
    const Json* dt = t.get("dtype");
    const Json* sh = t.get("shape");
    const Json* off = t.get("data_offsets");
    if (!dt || dt->type != Json::String || !sh || sh->type != Json::Array || !off || off->type != Json::Array || off->arr.size() != 2)
      fail(ErrorCode::FORMAT, what + ": tensor " + name + " needs dtype, shape and data_offsets [begin, end]");
    if (sh->arr.size() > 8) fail(ErrorCode::FORMAT, what + ": tensor " + name + " has " + std::to_string(sh->arr.size()) + " dimensions");
    std::vector<int64_t> shape;
    uint64_t numel = 1;
    for (auto& d : sh->arr) {
      if (!d.is_int() || d.num < 0) fail(ErrorCode::FORMAT, what + ": tensor " + name + " has a bad dimension");
      shape.push_back(int64_t(d.num));
      numel = checked_mul(numel, uint64_t(d.num), (what + ": tensor " + name).c_str());
    }
    for (auto& o : off->arr)
      if (!o.is_int() || o.num < 0) fail(ErrorCode::FORMAT, what + ": tensor " + name + " has bad data_offsets");
    uint64_t b = uint64_t(off->arr[0].num), e = uint64_t(off->arr[1].num);
    if (b > e) fail(ErrorCode::FORMAT, what + ": tensor " + name + " has data_offsets begin > end");
    if (e > data_size) fail(ErrorCode::FORMAT, what + ": tensor " + name + " data [" + std::to_string(b) + ", " + std::to_string(e) + ") runs past the end of the data (" + std::to_string(data_size) + " bytes)");
    static const std::map<std::string, int> kElem = {{"BOOL", 1}, {"U8", 1}, {"I8", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"I16", 2}, {"U16", 2}, {"F16", 2}, {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4}, {"I64", 8}, {"U64", 8}, {"F64", 8}};
    auto el = kElem.find(dt->str);
    if (el == kElem.end()) fail(ErrorCode::UNSUPPORTED, what + ": tensor " + name + " has unknown dtype \"" + dt->str + "\"");
    if (checked_mul(numel, uint64_t(el->second), what.c_str()) != e - b)
      fail(ErrorCode::FORMAT, what + ": tensor " + name + " occupies " + std::to_string(e - b) + " bytes but shape " + shape_str(shape) + " of " + dt->str + " needs " + std::to_string(numel * el->second));
    spans.push_back({b, e, name});
    TensorKind kind;
    int layer;
    if (!parse_hf_name(name, kind, layer)) continue;
    if (want_names && !want_names->erase(name)) fail(ErrorCode::FORMAT, what + ": tensor " + name + " is not the one the index assigns to this shard");
    DType d;
    if (dt->str == "F32") d = DType::F32;
    else if (dt->str == "F16") d = DType::F16;
    else if (dt->str == "BF16") d = DType::BF16;
    else fail(ErrorCode::UNSUPPORTED, what + ": weight " + name + " is " + dt->str + "; Tailor reads F32, F16 and BF16 safetensors");
    refs.push_back(TensorRef{name, kind, layer, d, shape, data + b, e - b});
  }
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.b < b.b; });
  for (size_t i = 1; i < spans.size(); i++)
    if (spans[i].b < spans[i - 1].e && spans[i].e > spans[i].b)
      fail(ErrorCode::FORMAT, what + ": tensors " + spans[i - 1].name + " and " + spans[i].name + " overlap");
}

static std::string read_text_file(const std::string& path) {
  MappedFile f(path);
  return std::string(reinterpret_cast<const char*>(f.data()), f.size());
}

static bool is_file(const std::string& p) { return path_kind(p) == PathKind::File; }

std::unique_ptr<Model> load_hf(const std::string& dir, const LoadHooks* hooks) {
  auto m = std::make_unique<Model>();
  std::string cfg_path = dir + "/config.json";
  if (!is_file(cfg_path)) fail(ErrorCode::FORMAT, dir + ": no config.json — a Hugging Face model folder needs config.json beside its safetensors");
  parse_hf_config(read_text_file(cfg_path), cfg_path, m->cfg);
  m->cfg.format = "hf";
  std::vector<std::shared_ptr<const MappedFile>> files;
  std::vector<TensorRef> refs;
  std::string index = dir + "/model.safetensors.index.json";
  if (is_file(dir + "/model.safetensors")) {
    files.push_back(std::make_shared<const MappedFile>(dir + "/model.safetensors"));
    scan_safetensors(*files.back(), refs, nullptr);
  } else if (is_file(index)) {
    std::string text = read_text_file(index);
    Json j = parse_json(text.data(), text.size(), index);
    const Json* wm = j.get("weight_map");
    if (!wm || wm->type != Json::Object) fail(ErrorCode::FORMAT, index + ": missing \"weight_map\" object");
    std::map<std::string, std::set<std::string>> shards;
    for (auto& kv : wm->obj) {
      if (kv.second.type != Json::String) fail(ErrorCode::FORMAT, index + ": weight_map values must be file names");
      const std::string& fn = kv.second.str;
      if (fn.empty() || fn.find('/') != std::string::npos || fn.find('\\') != std::string::npos || fn == "." || fn == "..")
        fail(ErrorCode::FORMAT, index + ": shard name \"" + fn + "\" is not a plain file name in the model folder");
      shards[fn].insert(kv.first);
    }
    for (auto& sh : shards) {
      files.push_back(std::make_shared<const MappedFile>(dir + "/" + sh.first));
      scan_safetensors(*files.back(), refs, &sh.second);
      for (auto& n : sh.second) {
        TensorKind k;
        int l;
        if (parse_hf_name(n, k, l)) fail(ErrorCode::FORMAT, index + ": " + n + " is mapped to " + sh.first + " but that shard does not hold it");
      }
    }
  } else {
    fail(ErrorCode::IO, dir + ": no model.safetensors or model.safetensors.index.json");
  }
  std::string dtypes;
  for (auto& r : refs)
    if (dtypes.find(dtype_name(r.dtype)) == std::string::npos) dtypes += std::string(dtypes.empty() ? "" : "+") + dtype_name(r.dtype);
  m->cfg.source_dtype = dtypes;
  fill_weights(*m, refs, files, dir, hooks);
  return m;
}

// ---- detection -----------------------------------------------------------------------------------

std::unique_ptr<Model> load_model(const std::string& path, const LoadHooks* hooks) {
  const PathKind kind = path_kind(path);
  if (kind == PathKind::Missing) fail(ErrorCode::IO, path + ": no such file or folder");
  if (kind == PathKind::Folder) return load_hf(path, hooks);
  auto ends = [&](const char* suf) {
    size_t k = std::strlen(suf);
    return path.size() >= k && path.compare(path.size() - k, k, suf) == 0;
  };
  if (ends(".safetensors") || ends("config.json") || ends(".index.json")) {
#ifdef _WIN32
    size_t slash = path.find_last_of("/\\");
#else
    size_t slash = path.find_last_of('/');
#endif
    return load_hf(slash == std::string::npos ? "." : path.substr(0, slash), hooks);
  }
  {
    MappedFile f(path);
    if (f.size() == 0) fail(ErrorCode::IO, path + ": the file is empty");
    if (f.size() >= 4 && std::memcmp(f.data(), "GGUF", 4) == 0) return load_gguf(path, hooks);
  }
  if (ends(".gguf")) fail(ErrorCode::FORMAT, path + ": not a GGUF file (bad magic; expected \"GGUF\")");
  return load_llama2c(path, hooks);
}

}  // namespace tailor
