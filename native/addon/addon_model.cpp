// addon_model.cpp — AddonModel's methods and the workers behind them (load, score, generate).
#include "addon_model.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "addon_trainer.h"
#include "device.h"
#include "grad_pass.h"
#include "loader.h"
#include "prune.h"
#include "lora.h"
#include "runtime.h"
#include "worker.h"

namespace tailor_addon {

using namespace tailor;

Napi::Object config_object(Napi::Env env, const Model& m);    // info() without the backend
Napi::Object metadata_object(Napi::Env env, const Model& m);
void backend_fields(Napi::Object& o, const Backend& be, const BackendChoice& choice);  // info()'s backend part

Napi::FunctionReference* AddonModel::constructor = nullptr;

namespace {

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::vector<int> to_ids(Napi::Env env, const Napi::Value& v, const char* what) {
  std::vector<int> ids;
  if (v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_int32_array) {
    Napi::Int32Array a = v.As<Napi::Int32Array>();
    ids.assign(a.Data(), a.Data() + a.ElementLength());
  } else if (v.IsArray()) {
    Napi::Array a = v.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) {
      Napi::Value e = a.Get(i);
      if (!e.IsNumber()) throw make_error(env, "E_ARG", std::string(what) + " must hold integer token ids");
      ids.push_back(e.As<Napi::Number>().Int32Value());
    }
  } else {
    throw make_error(env, "E_ARG", std::string(what) + " must be an array of token ids");
  }
  return ids;
}

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

template <typename T, typename A>
A typed_copy(Napi::Env env, const std::vector<T>& v) {
  A a = A::New(env, v.size());
  if (!v.empty()) std::memcpy(a.Data(), v.data(), v.size() * sizeof(T));
  return a;
}

using ModelJob = OwnedJob<AddonModel>;

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
// tensor is copied to the device as soon as it is decoded, while the next one is read.
class LoadWorker : public EngineWorker {
 public:
  LoadWorker(Napi::Env env, std::string path, BackendOptions bo, BackendKind kind, const Napi::Object& opts)
      : EngineWorker(env), path_(std::move(path)), bo_(bo), kind_(kind) {
    cancel_.bind(opts.Get("cancel"));
    Napi::Value cb = opts.Get("onProgress");
    if (cb.IsFunction()) {
      progress_ = Napi::ThreadSafeFunction::New(env, cb.As<Napi::Function>(), "tailor.load.progress", 0, 1);
      has_progress_ = true;
    }
  }
  void Run() override {
    BackendPick pick = pick_backend(kind_, bo_);  // 'cuda' fails here, before any weights are read
    choice_ = pick.choice;
    cpu_ = pick.cpu;
    backend_ = pick.backend;
    LoadHooks hooks;
    hooks.cancel = CancelToken{cancel_.ptr()};
    if (has_progress_)
      hooks.progress = [this](uint64_t done, uint64_t total) {
        auto* d = new std::pair<double, double>(double(done), double(total));
        progress_.NonBlockingCall(d, [](Napi::Env env, Napi::Function fn, std::pair<double, double>* p) {
          fn.Call({Napi::Number::New(env, p->first), Napi::Number::New(env, p->second)});
          delete p;
        });
      };
    const bool cuda = choice_.used == BackendKind::Cuda;
    if (cuda) {
      // the weights (fp32 or bf16), uploaded once as they are read (E_OOM when the device is too small)
      hooks.allocated = [this](const Model& m) { backend_->bind_begin(m); };
      hooks.tensor = [this](const Model& m, const float* p, size_t n) { backend_->bind_part(m, p, n); };
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
    if (has_progress_) progress_.Release();
    cancel_.reset();
  }

 private:
  std::string path_;
  BackendOptions bo_;
  BackendKind kind_;
  BackendChoice choice_;
  std::shared_ptr<Model> model_;
  std::shared_ptr<Backend> backend_, cpu_;
  CancelFlag cancel_;
  Napi::ThreadSafeFunction progress_;
  bool has_progress_ = false;
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

// ---- score ------------------------------------------------------------------------------------------
class ScoreWorker : public ModelJob {
 public:
  ScoreWorker(Napi::Env env, AddonModel* m, const Napi::Object& self, std::vector<std::vector<int>> seqs, ScoreOptions so,
              const Napi::Object& opts)
      : ModelJob(env, m, self), seqs_(std::move(seqs)), so_(so) {
    cancel_.bind(opts.Get("cancel"));
    Napi::Value cb = opts.Get("onProgress");
    if (cb.IsFunction()) {
      progress_ = Napi::ThreadSafeFunction::New(env, cb.As<Napi::Function>(), "tailor.score.progress", 0, 1);
      has_progress_ = true;
    }
  }
  void Run() override {
    Progress pr;
    if (has_progress_) {
      pr = [this](int64_t done, int64_t total) {
        auto* d = new std::pair<double, double>(double(done), double(total));
        progress_.NonBlockingCall(d, [](Napi::Env env, Napi::Function fn, std::pair<double, double>* p) {
          fn.Call({Napi::Number::New(env, p->first), Napi::Number::New(env, p->second)});
          delete p;
        });
      };
    }
    owner_->sync_weights();
    res_ = score_sequences(*owner_->model, *owner_->backend, seqs_, so_, CancelToken{cancel_.ptr()}, pr);
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Array out = Napi::Array::New(env, res_.size());
    for (size_t i = 0; i < res_.size(); i++) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("logprob", typed_copy<float, Napi::Float32Array>(env, res_[i].logprob));
      o.Set("argmax", typed_copy<int, Napi::Int32Array>(env, res_[i].argmax));
      if (so_.last_logits) o.Set("lastLogits", typed_copy<float, Napi::Float32Array>(env, res_[i].last_logits));
      o.Set("nllSum", Napi::Number::New(env, res_[i].nll_sum));
      out.Set(uint32_t(i), o);
    }
    return out;
  }
  void Done() override {
    if (has_progress_) progress_.Release();
    ModelJob::Done();
  }

 private:
  std::vector<std::vector<int>> seqs_;
  ScoreOptions so_;
  std::vector<SeqScore> res_;
  Napi::ThreadSafeFunction progress_;
  bool has_progress_ = false;
};

// ---- generate ---------------------------------------------------------------------------------------
class GenerateWorker : public ModelJob {
 public:
  GenerateWorker(Napi::Env env, AddonModel* m, const Napi::Object& self, std::vector<int> prompt, const Napi::Object& opts)
      : ModelJob(env, m, self), prompt_(std::move(prompt)) {
    max_tokens_ = opt_int(opts, "maxTokens", 128);
    n_ctx_ = opt_int(opts, "nCtx", 0);
    n_batch_ = opt_int(opts, "nBatch", 512);
    sp_.temperature = float(opt_num(opts, "temperature", 0.0));
    sp_.top_k = opt_int(opts, "topK", 0);
    sp_.top_p = float(opt_num(opts, "topP", 1.0));
    sp_.seed = uint64_t(opt_num(opts, "seed", 0));
    if (max_tokens_ < 0 || n_batch_ <= 0 || sp_.temperature < 0 || sp_.top_k < 0 || !(sp_.top_p > 0 && sp_.top_p <= 1))
      throw make_error(env, "E_ARG", "generate: maxTokens ≥ 0, nBatch > 0, temperature ≥ 0, topK ≥ 0 and 0 < topP ≤ 1 are required");
    Napi::Value stop = opts.Get("stopIds");
    if (!stop.IsUndefined()) stop_ids_ = to_ids(env, stop, "stopIds");
    cancel_.bind(opts.Get("cancel"));
    Napi::Value cb = opts.Get("onToken");
    if (cb.IsFunction()) {
      tokens_cb_ = Napi::ThreadSafeFunction::New(env, cb.As<Napi::Function>(), "tailor.generate.token", 0, 1);
      has_cb_ = true;
    }
  }
  void Run() override {
    owner_->sync_weights();
    Session s(*owner_->model, *owner_->backend, n_ctx_);
    Sampler sampler(sp_);
    CancelToken ct{cancel_.ptr()};
    double t0 = now_ms();
    s.advance(prompt_, ct, n_batch_);
    prompt_ms_ = now_ms() - t0;
    double t1 = now_ms();
    stop_reason_ = "length";
    for (int i = 0; i < max_tokens_; i++) {
      int tok = s.sample(sampler);  // on a device, only the token (or the top-k candidates) comes back
      out_.push_back(tok);
      if (has_cb_) {
        auto* d = new std::pair<int, int>(i, tok);
        tokens_cb_.NonBlockingCall(d, [](Napi::Env env, Napi::Function fn, std::pair<int, int>* p) {
          fn.Call({Napi::Number::New(env, p->second), Napi::Number::New(env, p->first)});
          delete p;
        });
      }
      bool stop = false;
      for (int sid : stop_ids_) stop |= sid == tok;
      if (stop) { stop_reason_ = "eos"; break; }
      if (ct.cancelled()) { stop_reason_ = "stopped"; break; }
      if (i + 1 == max_tokens_) break;
      if (s.n_past() >= s.n_ctx()) { stop_reason_ = "context"; break; }
      try {
        s.advance({tok}, ct);
      } catch (const EngineError& e) {
        // a caller's "finish early" (flag 2, e.g. a stop string) that lands mid-step is not an error
        if (e.code() == ErrorCode::CANCELLED && ct.value() == 2) { stop_reason_ = "stopped"; break; }
        throw;
      }
    }
    gen_ms_ = now_ms() - t1;
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    Napi::Array toks = Napi::Array::New(env, out_.size());
    for (size_t i = 0; i < out_.size(); i++) toks.Set(uint32_t(i), Napi::Number::New(env, out_[i]));
    o.Set("tokens", toks);
    o.Set("promptTokens", Napi::Number::New(env, double(prompt_.size())));
    o.Set("promptMs", Napi::Number::New(env, prompt_ms_));
    o.Set("generateMs", Napi::Number::New(env, gen_ms_));
    o.Set("stopReason", Napi::String::New(env, stop_reason_));
    return o;
  }
  void Done() override {
    if (has_cb_) tokens_cb_.Release();
    ModelJob::Done();
  }

 private:
  std::vector<int> prompt_, stop_ids_, out_;
  int max_tokens_, n_ctx_, n_batch_;
  SampleParams sp_;
  Napi::ThreadSafeFunction tokens_cb_;
  bool has_cb_ = false;
  double prompt_ms_ = 0, gen_ms_ = 0;
  std::string stop_reason_;
};

// ---- Taylor statistics: one full-gradient pass, reduced per tensor --------------------------------
class TaylorWorker : public ModelJob {
 public:
  TaylorWorker(Napi::Env env, AddonModel* m, const Napi::Object& self, std::vector<Example> ex, const Napi::Object& opts)
      : ModelJob(env, m, self), ex_(std::move(ex)) {
    cancel_.bind(opts.Get("cancel"));
    if (ex_.empty()) throw make_error(env, "E_ARG", "no calibration examples");
  }
  void Run() override {
    TrainBatch b = calibration_batch(ex_);  // the gradient of the mean loss over every token
    double t0 = now_ms();
    owner_->sync_weights();  // the gradients run where the model computes (CUDA or CPU)
    st_ = taylor_tensor_stats(*owner_->model, *owner_->backend, b, CancelToken{cancel_.ptr()});
    ms_ = now_ms() - t0;
  }
  Napi::Value Result(Napi::Env env) override {
    auto tt = [&](const TensorTaylor& t) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("sumAbsWG", t.sum_abs_wg);
      o.Set("sumWG", t.sum_wg);
      o.Set("gradSq", t.grad_sq);
      return o;
    };
    static const char* names[9] = {"attnNorm", "wq", "wk", "wv", "wo", "ffnNorm", "wGate", "wUp", "wDown"};
    Napi::Object o = Napi::Object::New(env);
    o.Set("loss", st_.loss);
    o.Set("ms", ms_);
    Napi::Array layers = Napi::Array::New(env, st_.layers.size());
    for (size_t l = 0; l < st_.layers.size(); l++) {
      Napi::Object lo = Napi::Object::New(env);
      for (int k = 0; k < 9; k++) lo.Set(names[k], tt(st_.layers[l][size_t(k)]));
      layers.Set(uint32_t(l), lo);
    }
    o.Set("layers", layers);
    o.Set("tokEmb", tt(st_.head[0]));
    o.Set("outNorm", tt(st_.head[1]));
    o.Set("lmHead", tt(st_.head[2]));
    return o;
  }

 private:
  std::vector<Example> ex_;
  tailor::TaylorStats st_;
  double ms_ = 0;
};

// ---- pruning: per-group importance ------------------------------------------------------------------
class ImportanceWorker : public ModelJob {
 public:
  ImportanceWorker(Napi::Env env, AddonModel* m, const Napi::Object& self, std::vector<Example> ex, ImportanceMethod method, GroupAgg agg,
                   uint64_t seed, const Napi::Object& opts)
      : ModelJob(env, m, self), ex_(std::move(ex)), method_(method), agg_(agg), seed_(seed) {
    cancel_.bind(opts.Get("cancel"));
  }
  void Run() override {
    double t0 = now_ms();
    owner_->sync_weights();
    gs_ = group_importance(*owner_->model, *owner_->backend, ex_, method_, agg_, seed_, CancelToken{cancel_.ptr()});
    ms_ = now_ms() - t0;
  }
  Napi::Value Result(Napi::Env env) override {
    auto arr = [&](const std::vector<std::vector<double>>& v) {
      Napi::Array a = Napi::Array::New(env, v.size());
      for (size_t l = 0; l < v.size(); l++) {
        Napi::Float64Array f = Napi::Float64Array::New(env, v[l].size());
        if (!v[l].empty()) std::memcpy(f.Data(), v[l].data(), v[l].size() * 8);
        a.Set(uint32_t(l), f);
      }
      return a;
    };
    Napi::Object o = Napi::Object::New(env);
    o.Set("attn", arr(gs_.attn));
    o.Set("mlp", arr(gs_.mlp));
    o.Set("loss", gs_.loss);
    o.Set("ms", ms_);
    return o;
  }

 private:
  std::vector<Example> ex_;
  ImportanceMethod method_;
  GroupAgg agg_;
  uint64_t seed_;
  GroupScores gs_;
  double ms_ = 0;
};

}  // namespace

// ---- AddonModel -------------------------------------------------------------------------------------

Napi::Function AddonModel::Init(Napi::Env env) {
  Napi::Function f = DefineClass(env, "AddonModel",
                                 {StaticMethod("load", &AddonModel::Load), StaticMethod("inspect", &AddonModel::Inspect),
                                  StaticMethod("describeBackend", &AddonModel::DescribeBackend), InstanceMethod("info", &AddonModel::Info),
                                  InstanceMethod("metadata", &AddonModel::Metadata), InstanceMethod("score", &AddonModel::Score),
                                  InstanceMethod("generate", &AddonModel::Generate), InstanceMethod("dispose", &AddonModel::Dispose),
                                  InstanceMethod("tensors", &AddonModel::Tensors), InstanceMethod("mergeLora", &AddonModel::MergeLora),
                                  InstanceMethod("taylorStats", &AddonModel::TaylorStats),
                                  InstanceMethod("groupImportance", &AddonModel::GroupImportance)});
  constructor = new Napi::FunctionReference(Napi::Persistent(f));
  return f;
}

AddonModel::AddonModel(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AddonModel>(info) {}

void AddonModel::require_loaded(Napi::Env env) {
  if (!model) throw make_error(env, "E_ARG", "the model has been disposed");
}

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
  Napi::Value wv = o.Get("weights");
  if (!wv.IsUndefined() && !wv.IsNull()) {
    std::string ws = wv.IsString() ? wv.As<Napi::String>().Utf8Value() : "";
    if (ws != "f32" && ws != "bf16") throw make_error(env, "E_ARG", "weights must be 'f32' or 'bf16'");
    bo.bf16_weights = ws == "bf16";
  }
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
  auto* w = new LoadWorker(env, info[0].As<Napi::String>().Utf8Value(), bo, kind, o);
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
}

Napi::Value AddonModel::Metadata(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_loaded(env);
  return metadata_object(env, *model);
}

Napi::Value AddonModel::Score(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_loaded(env);
  if (info.Length() < 1 || !info[0].IsArray()) throw make_error(env, "E_ARG", "score(sequences, options?): sequences must be an array");
  Napi::Array a = info[0].As<Napi::Array>();
  std::vector<std::vector<int>> seqs;
  for (uint32_t i = 0; i < a.Length(); i++) seqs.push_back(to_ids(env, a.Get(i), "each sequence"));
  Napi::Object opts = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  ScoreOptions so;
  so.last_logits = opt_bool(opts, "lastLogits", false);
  so.max_batch_tokens = opt_int(opts, "maxBatchTokens", 2048);
  if (so.max_batch_tokens <= 0) throw make_error(env, "E_ARG", "maxBatchTokens must be positive");
  return (new ScoreWorker(env, this, info.This().As<Napi::Object>(), std::move(seqs), so, opts))->Start();
}

Napi::Value AddonModel::Generate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_loaded(env);
  if (info.Length() < 1) throw make_error(env, "E_ARG", "generate(promptIds, options?)");
  std::vector<int> prompt = to_ids(env, info[0], "promptIds");
  if (prompt.empty()) throw make_error(env, "E_ARG", "generate needs at least one prompt token (usually BOS)");
  Napi::Object opts = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  return (new GenerateWorker(env, this, info.This().As<Napi::Object>(), std::move(prompt), opts))->Start();
}

// copies of every weight tensor (for writers: merge, export)
Napi::Value AddonModel::Tensors(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_loaded(env);
  Model& m = *model;
  auto copy = [&](TensorKind k, int l) -> Napi::Value {
    std::vector<int64_t> sh = m.expected_shape(k, l);
    if (sh.empty()) return env.Null();
    size_t n = 1;
    for (auto d : sh) n *= size_t(d);
    Napi::Float32Array a = Napi::Float32Array::New(env, n);
    if (n) std::memcpy(a.Data(), m.tensor_ptr(k, l), n * 4);
    return a;
  };
  auto layer = [&](int l) {
    Napi::Object lo = Napi::Object::New(env);
    lo.Set("attnNorm", copy(TensorKind::AttnNorm, l));
    lo.Set("wq", copy(TensorKind::Wq, l));
    lo.Set("wk", copy(TensorKind::Wk, l));
    lo.Set("wv", copy(TensorKind::Wv, l));
    lo.Set("wo", copy(TensorKind::Wo, l));
    lo.Set("ffnNorm", copy(TensorKind::FfnNorm, l));
    lo.Set("wGate", copy(TensorKind::WGate, l));
    lo.Set("wUp", copy(TensorKind::WUp, l));
    lo.Set("wDown", copy(TensorKind::WDown, l));
    return lo;
  };
  // tensors({layer: i}): that layer's tensors alone (one layer's copy at a time, for slicing a 7B model
  // without a second copy of all its weights); tensors({layers: false}): the model's without its layers
  Napi::Object opts = info.Length() > 0 && info[0].IsObject() ? info[0].As<Napi::Object>() : Napi::Object::New(env);
  // tensors({name}) / tensors({layer, name}): one tensor (a writer streaming the model copies one at a time)
  Napi::Value nv = opts.Get("name");
  if (!nv.IsUndefined()) {
    static const std::pair<const char*, TensorKind> kNames[] = {
        {"tokEmb", TensorKind::TokEmb}, {"outNorm", TensorKind::OutNorm}, {"lmHead", TensorKind::LmHead}, {"attnNorm", TensorKind::AttnNorm},
        {"wq", TensorKind::Wq}, {"wk", TensorKind::Wk}, {"wv", TensorKind::Wv}, {"wo", TensorKind::Wo}, {"ffnNorm", TensorKind::FfnNorm},
        {"wGate", TensorKind::WGate}, {"wUp", TensorKind::WUp}, {"wDown", TensorKind::WDown}};
    const std::string name = nv.IsString() ? nv.As<Napi::String>().Utf8Value() : "";
    const auto* it = std::find_if(std::begin(kNames), std::end(kNames), [&](const auto& e) { return name == e.first; });
    if (it == std::end(kNames)) throw make_error(env, "E_ARG", "name must be a tensor of the model (tokEmb, wq, …)");
    const bool per_layer = it->second != TensorKind::TokEmb && it->second != TensorKind::OutNorm && it->second != TensorKind::LmHead;
    const int l = per_layer ? opt_int(opts, "layer", -1) : 0;
    if (l < 0 || l >= m.cfg.n_layers) throw make_error(env, "E_ARG", "layer must be between 0 and " + std::to_string(m.cfg.n_layers - 1));
    if (it->second == TensorKind::LmHead && m.cfg.tied) return env.Null();
    return copy(it->second, l);
  }
  if (!opts.Get("layer").IsUndefined()) {
    const int l = opt_int(opts, "layer", -1);
    if (l < 0 || l >= m.cfg.n_layers) throw make_error(env, "E_ARG", "layer must be between 0 and " + std::to_string(m.cfg.n_layers - 1));
    return layer(l);
  }
  const bool with_layers = opt_bool(opts, "layers", true);
  Napi::Object o = Napi::Object::New(env);
  o.Set("tokEmb", copy(TensorKind::TokEmb, 0));
  o.Set("outNorm", copy(TensorKind::OutNorm, 0));
  o.Set("lmHead", m.cfg.tied ? env.Null() : copy(TensorKind::LmHead, 0));
  Napi::Array layers = Napi::Array::New(env, with_layers ? size_t(m.cfg.n_layers) : 0);
  for (int l = 0; with_layers && l < m.cfg.n_layers; l++) layers.Set(uint32_t(l), layer(l));
  o.Set("layers", layers);
  if (!m.cfg.rope_freq_factors.empty()) {
    Napi::Float32Array f = Napi::Float32Array::New(env, m.cfg.rope_freq_factors.size());
    std::memcpy(f.Data(), m.cfg.rope_freq_factors.data(), m.cfg.rope_freq_factors.size() * 4);
    o.Set("ropeFreqFactors", f);
  }
  return o;
}

// mergeLora({rank, alpha, rslora, targets}, params): W += s·B·A for the LoRA arena `params`
Napi::Value AddonModel::MergeLora(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_loaded(env);
  if (busy.load() > 0) throw make_error(env, "E_ARG", "the model is busy");
  if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw make_error(env, "E_ARG", "mergeLora(config, params: Float32Array)");
  Napi::Object o = info[0].As<Napi::Object>();
  LoraConfig lc;
  lc.rank = opt_int(o, "rank", 8);
  lc.alpha = float(opt_num(o, "alpha", 16));
  lc.rslora = opt_bool(o, "rslora", false);
  lc.targets = uint32_t(opt_int(o, "targets", (1 << kNumTargets) - 1));
  LoraLayout lay;
  try {
    lay.build(model->cfg, lc);
  } catch (const EngineError& e) {
    throw make_error(env, error_code_name(e.code()), e.what());
  }
  Napi::Float32Array p = info[1].As<Napi::Float32Array>();
  if (int64_t(p.ElementLength()) != lay.size)
    throw make_error(env, "E_SHAPE", "the adapter has " + std::to_string(p.ElementLength()) + " LoRA values; this model with rank " + std::to_string(lc.rank) +
                                         " on these targets needs " + std::to_string(lay.size) + " (was it trained on another base?)");
  lora_merge(*model, lay, p.Data());
  weights_stale = true;
  return env.Undefined();
}

// taylorStats(examples, {cancel}): one full-gradient pass (one layer of gradients held at a time)
Napi::Value AddonModel::TaylorStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_loaded(env);
  std::vector<Example> ex = to_examples(env, info.Length() > 0 ? info[0] : env.Undefined());
  Napi::Object opts = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  return (new TaylorWorker(env, this, info.This().As<Napi::Object>(), std::move(ex), opts))->Start();
}

// groupImportance(examples, {method, agg, seed, cancel}) → {attn: Float64Array[layer], mlp: Float64Array[layer], loss, ms}
Napi::Value AddonModel::GroupImportance(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_loaded(env);
  std::vector<Example> ex = to_examples(env, info.Length() > 0 ? info[0] : env.Undefined());
  Napi::Object opts = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  auto s = [&](const char* k, const char* d) { Napi::Value v = opts.Get(k); return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string(d); };
  ImportanceMethod method;
  GroupAgg agg;
  try {
    method = parse_importance_method(s("method", "taylor"));
    agg = parse_group_agg(s("agg", "sum"));
  } catch (const EngineError& e) {
    throw make_error(env, error_code_name(e.code()), e.what());
  }
  uint64_t seed = uint64_t(opt_num(opts, "seed", 0));
  return (new ImportanceWorker(env, this, info.This().As<Napi::Object>(), std::move(ex), method, agg, seed, opts))->Start();
}

Napi::Value AddonModel::Dispose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (busy.load() > 0) throw make_error(env, "E_ARG", "the model is busy; cancel or await its jobs before disposing it");
  model.reset();
  backend.reset();
  cpu_backend.reset();
  return env.Undefined();
}

}  // namespace tailor_addon
