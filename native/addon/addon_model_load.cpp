// addon_model_load.cpp — AddonModel's static entry points and what a model says of itself: load (the file
// read tensor by tensor, each copied to a CUDA device as it is decoded; progress, cancel), inspect (the
// file checked, no weights decoded), describeBackend (the backend a load would use), info() and metadata().
#include <cmath>
#include <cstdlib>

#include "addon_model.h"
#include "device.h"
#include "host_weights.h"
#include "loader.h"
#include "worker.h"

namespace tailor_addon {

using namespace tailor;

Napi::Object config_object(Napi::Env env, const Model& m);    // info() without the backend
Napi::Object metadata_object(Napi::Env env, const Model& m);
void backend_fields(Napi::Object& o, const Backend& be, const BackendChoice& choice);  // info()'s backend part

namespace {

Napi::Value meta_to_js(Napi::Env env, const MetaValue& v) {
  switch (v.type) {
    case MetaValue::Int:
      return std::llabs(v.i) <= (1ll << 53) ? Napi::Value(Napi::Number::New(env, double(v.i))) : Napi::Value(Napi::BigInt::New(env, int64_t(v.i)));
    case MetaValue::UInt:
      return v.u <= (1ull << 53) ? Napi::Value(Napi::Number::New(env, double(v.u))) : Napi::Value(Napi::BigInt::New(env, uint64_t(v.u)));
    case MetaValue::Float: return Napi::Number::New(env, v.f);
    case MetaValue::Bool: return Napi::Boolean::New(env, v.b);
    case MetaValue::String: return Napi::String::New(env, v.s);
    case MetaValue::Array: {
      Napi::Array a = Napi::Array::New(env, v.arr.size());
      for (size_t i = 0; i < v.arr.size(); i++) a.Set(uint32_t(i), meta_to_js(env, v.arr[i]));
      return a;
    }
  }
  return env.Undefined();
}

// ---- the backend of a load: chosen (auto, cpu, cuda), created, and why ------------------------------
struct BackendPick {
  BackendChoice choice;
  std::shared_ptr<Backend> cpu, backend;  // backend == cpu unless CUDA was chosen
};

BackendPick pick_backend(BackendKind kind, const BackendOptions& bo) {
  BackendPick p;
  p.choice = choose_backend(kind);  // E_UNSUPPORTED for 'cuda' without a usable device, saying why
  p.cpu = std::shared_ptr<Backend>(make_cpu_backend(bo).release());
  if (p.choice.used == BackendKind::Cuda) {
    p.backend = std::shared_ptr<Backend>(make_cuda_backend(p.choice.device, bo).release());
  } else {
    p.backend = p.cpu;
    if (bo.bf16_weights) p.choice.note += std::string(p.choice.note.empty() ? "" : "; ") + "bf16 weights apply to CUDA only: the CPU computes in fp32";
  }
  return p;
}

// ---- describe a backend: what a load with these options would run on, without a model ---------------
class DescribeBackendWorker : public EngineWorker {
 public:
  DescribeBackendWorker(Napi::Env env, BackendOptions bo, BackendKind kind) : EngineWorker(env), bo_(bo), kind_(kind) {}
  void Run() override { pick_ = pick_backend(kind_, bo_); }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    backend_fields(o, *pick_.backend, pick_.choice);
    return o;
  }

 private:
  BackendOptions bo_;
  BackendKind kind_;
  BackendPick pick_;
};

// ---- load -------------------------------------------------------------------------------------------
// Reads the file tensor by tensor (progress in file bytes, cancellable between tensors); on CUDA each
// tensor is copied to the device as soon as it is decoded, while the next one is read, and (hostWeights
// 'auto' or 'release') its host pages are handed back right after: the host keeps the file mapped and
// decodes a tensor again when one is read (host_weights.h), instead of holding the fp32 arena.
class LoadWorker : public EngineWorker {
 public:
  LoadWorker(Napi::Env env, std::string path, BackendOptions bo, BackendKind kind, bool keep_host, const Napi::Object& opts)
      : EngineWorker(env), path_(std::move(path)), bo_(bo), kind_(kind), keep_host_(keep_host) {
    cancel_.bind(opts.Get("cancel"));
    progress_.bind(env, opts, "onProgress", "tailor.load.progress");
  }
  void Run() override {
    BackendPick pick = pick_backend(kind_, bo_);  // 'cuda' fails here, before any weights are read
    choice_ = pick.choice;
    cpu_ = pick.cpu;
    backend_ = pick.backend;
    LoadHooks hooks;
    hooks.cancel = CancelToken{cancel_.ptr()};
    if (progress_) hooks.progress = [this](uint64_t done, uint64_t total) { progress_.post(double(done), double(total)); };
    const bool cuda = choice_.used == BackendKind::Cuda;
    if (cuda) {
      // the weights (fp32 or bf16), uploaded once as they are read (E_OOM when the device is too small)
      hooks.allocated = [this](const Model& m) { backend_->bind_begin(m); };
      hooks.tensor = [this](const Model& m, const float* p, size_t n) { backend_->bind_part(m, p, n); };
      hooks.release = !keep_host_;
    }
    model_ = std::shared_ptr<Model>(load_model(path_, &hooks).release());
    if (cuda) backend_->bind_end(*model_);
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object obj = AddonModel::constructor->New({});
    AddonModel* am = AddonModel::Unwrap(obj);
    am->model = model_;
    am->backend = backend_;
    am->cpu_backend = cpu_;
    am->choice = choice_;
    return obj;
  }
  void Done() override {
    progress_.release();
    cancel_.reset();
  }

 private:
  std::string path_;
  BackendOptions bo_;
  BackendKind kind_;
  bool keep_host_;
  BackendChoice choice_;
  std::shared_ptr<Model> model_;
  std::shared_ptr<Backend> backend_, cpu_;
  CancelFlag cancel_;
  ProgressCallback progress_;
};

// ---- inspect: the file checked as for a load, its config and metadata, no weights decoded -------------
class InspectWorker : public EngineWorker {
 public:
  InspectWorker(Napi::Env env, std::string path) : EngineWorker(env), path_(std::move(path)) {}
  void Run() override {
    LoadHooks hooks;
    hooks.header_only = true;
    model_ = load_model(path_, &hooks);
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("info", config_object(env, *model_));
    o.Set("metadata", metadata_object(env, *model_));
    return o;
  }

 private:
  std::string path_;
  std::unique_ptr<Model> model_;
};

}  // namespace

Napi::Value AddonModel::Inspect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw make_error(env, "E_ARG", "inspect(path): path must be a string");
  auto* w = new InspectWorker(env, info[0].As<Napi::String>().Utf8Value());
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

// the backend options of load() and describeBackend(); E_ARG naming the option
static void parse_backend_options(Napi::Env env, const Napi::Object& o, BackendOptions& bo, BackendKind& kind) {
  bo.threads = opt_int(o, "threads", 0);
  bo.blas = opt_bool(o, "blas", true);
  bo.bf16_weights = opt_choice(o, "weights", {"f32", "bf16"}, "f32") == "bf16";
  if (bo.threads < 0 || bo.threads > 1024) throw make_error(env, "E_ARG", "threads must be between 0 (all cores) and 1024");
  Napi::Value b = o.Get("backend");
  if (!b.IsUndefined() && !b.IsNull()) {
    if (!b.IsString()) throw make_error(env, "E_ARG", "backend must be 'auto', 'cpu' or 'cuda'");
    try {
      kind = parse_backend_kind(b.As<Napi::String>().Utf8Value());
    } catch (const EngineError& e) {
      throw make_error(env, "E_ARG", e.what());
    }
  }
}

Napi::Value AddonModel::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw make_error(env, "E_ARG", "load(path, options?): path must be a string");
  BackendOptions bo;
  BackendKind kind = BackendKind::Auto;
  Napi::Object o = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  parse_backend_options(env, o, bo, kind);
  // hostWeights: 'auto' (release the host copy when a device holds the weights), 'release' (the same), or
  // 'keep' (the fp32 arena stays in host memory beside the device's copy)
  const bool keep_host = opt_choice(o, "hostWeights", {"auto", "keep", "release"}, "auto") == "keep";
  auto* w = new LoadWorker(env, info[0].As<Napi::String>().Utf8Value(), bo, kind, keep_host, o);
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

Napi::Value AddonModel::DescribeBackend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  BackendOptions bo;
  BackendKind kind = BackendKind::Auto;
  if (info.Length() > 0 && info[0].IsObject()) parse_backend_options(env, info[0].As<Napi::Object>(), bo, kind);
  auto* w = new DescribeBackendWorker(env, bo, kind);
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

// what a model file says of itself: its format, shapes, RoPE, special ids and parameter count
Napi::Object config_object(Napi::Env env, const Model& m) {
  const Config& c = m.cfg;
  Napi::Object o = Napi::Object::New(env);
  o.Set("format", c.format);
  o.Set("architecture", c.architecture);
  o.Set("sourceDtype", c.source_dtype);
  o.Set("dim", c.dim);
  o.Set("nLayers", c.n_layers);
  o.Set("headDim", c.head_dim);
  o.Set("vocabSize", c.vocab_size);
  o.Set("contextLength", c.context_length);
  o.Set("normEps", c.norm_eps);
  o.Set("ropeTheta", c.rope_theta);
  o.Set("ropeLayout", c.rope_interleaved ? "interleaved" : "rotate_half");  // in memory (tensors() returns this layout)
  o.Set("sourceRopeLayout", c.source_rope_interleaved ? "interleaved" : "rotate_half");
  const char* rs = c.rope_scaling.type == RopeScalingType::Linear ? "linear" : c.rope_scaling.type == RopeScalingType::Llama3 ? "llama3" : "none";
  Napi::Object scaling = Napi::Object::New(env);
  scaling.Set("type", rs);
  scaling.Set("factor", c.rope_scaling.factor);
  if (c.rope_scaling.type == RopeScalingType::Llama3) {
    scaling.Set("lowFreqFactor", c.rope_scaling.low_freq_factor);
    scaling.Set("highFreqFactor", c.rope_scaling.high_freq_factor);
    scaling.Set("originalMaxPositionEmbeddings", c.rope_scaling.original_max_position);
  }
  o.Set("ropeScaling", scaling);
  o.Set("ropeFreqFactors", !c.rope_freq_factors.empty());
  o.Set("tiedEmbeddings", c.tied);
  o.Set("bosId", c.bos_id);
  o.Set("eosId", c.eos_id);
  Napi::Array layers = Napi::Array::New(env, c.layers.size());
  for (size_t l = 0; l < c.layers.size(); l++) {
    Napi::Object lo = Napi::Object::New(env);
    lo.Set("nHead", c.layers[l].n_head);
    lo.Set("nKvHead", c.layers[l].n_kv_head);
    lo.Set("ffn", c.layers[l].ffn);
    layers.Set(uint32_t(l), lo);
  }
  o.Set("layers", layers);
  o.Set("nParams", double(m.param_count()));
  return o;
}

Napi::Object metadata_object(Napi::Env env, const Model& m) {
  Napi::Object o = Napi::Object::New(env);
  for (auto& kv : m.metadata) o.Set(kv.first, meta_to_js(env, kv.second));
  return o;
}

Napi::Value AddonModel::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_loaded(env);
  Napi::Object o = config_object(env, *model);
  backend_fields(o, *backend, choice);
  // where the host's copy of the weights is: resident (the fp32 arena) or released (decoded from the file
  // when read), and the arena bytes resident in host memory now (null where the system cannot say)
  o.Set("hostWeights", model->host_released() ? "released" : "resident");
  const int64_t rb = host_resident_bytes(*model);
  o.Set("hostResidentBytes", rb < 0 ? env.Null() : Napi::Value(Napi::Number::New(env, double(rb))));
  return o;
}

void backend_fields(Napi::Object& o, const Backend& be, const BackendChoice& choice) {
  Napi::Env env = o.Env();
  o.Set("backend", be.name());
  o.Set("threads", be.threads());
  o.Set("backendKind", backend_kind_name(choice.used));
  o.Set("backendRequested", backend_kind_name(choice.requested));
  o.Set("backendAutoPick", backend_kind_name(choice.auto_pick));
  o.Set("backendNote", choice.note.empty() ? env.Null() : Napi::Value(Napi::String::New(env, choice.note)));
  // the head sizes whose KV cache this backend keeps in bf16 (Backend::kv_bf16; every other one is fp32): a
  // model's cache is known from its header before it is loaded. Head sizes are even and at most 4096 (model.cpp).
  Napi::Array kv = Napi::Array::New(env);
  for (int hd = 2; hd <= 4096; hd += 2)
    if (be.kv_bf16(hd)) kv.Set(kv.Length(), hd);
  o.Set("kvBf16HeadDims", kv);
}

Napi::Value AddonModel::Metadata(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_loaded(env);
  return metadata_object(env, *model);
}

}  // namespace tailor_addon
