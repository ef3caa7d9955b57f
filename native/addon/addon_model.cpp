// addon_model.cpp — AddonModel's methods on a loaded model and the workers behind them (score, generate,
// tensors, LoRA merge, pruning statistics); loading and describing models is addon_model_load.cpp.
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

template <typename T, typename A>
A typed_copy(Napi::Env env, const std::vector<T>& v) {
  A a = A::New(env, v.size());
  if (!v.empty()) std::memcpy(a.Data(), v.data(), v.size() * sizeof(T));
  return a;
}

using ModelJob = OwnedJob<AddonModel>;

// ---- score ------------------------------------------------------------------------------------------
class ScoreWorker : public ModelJob {
 public:
  ScoreWorker(Napi::Env env, AddonModel* m, const Napi::Object& self, std::vector<std::vector<int>> seqs, ScoreOptions so,
              const Napi::Object& opts)
      : ModelJob(env, m, self), seqs_(std::move(seqs)), so_(so) {
    cancel_.bind(opts.Get("cancel"));
    progress_.bind(env, opts, "onProgress", "tailor.score.progress");
  }
  void Run() override {
    Progress pr;
    if (progress_) pr = [this](int64_t done, int64_t total) { progress_.post(double(done), double(total)); };
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
      o.Set("sharedPrefix", Napi::Number::New(env, res_[i].shared));
      out.Set(uint32_t(i), o);
    }
    return out;
  }
  void Done() override {
    progress_.release();
    ModelJob::Done();
  }

 private:
  std::vector<std::vector<int>> seqs_;
  ScoreOptions so_;
  std::vector<SeqScore> res_;
  ProgressCallback progress_;
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
    // the cache holds what this call can reach (prompt and maxTokens, up to the model's context) unless nCtx
    // says otherwise: a model's context of 131,072 (Llama 3.1) would otherwise be 32 GiB of fp32 cache at 8B
    const int64_t reach = std::min<int64_t>(owner_->model->cfg.context_length, int64_t(prompt_.size()) + max_tokens_);
    Session s(*owner_->model, *owner_->backend, n_ctx_ > 0 ? n_ctx_ : int(std::max<int64_t>(reach, 1)));
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
  so.share_prefixes = opt_bool(opts, "sharePrefixes", true);
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
  // a copy of one tensor (null for a tied lm_head)
  auto copy = [&](TensorKind k, int l) -> Napi::Value {
    if (k == TensorKind::LmHead && m.cfg.tied) return env.Null();
    std::vector<int64_t> sh = m.expected_shape(k, l);
    if (sh.empty()) return env.Null();
    size_t n = 1;
    for (auto d : sh) n *= size_t(d);
    Napi::Float32Array a = Napi::Float32Array::New(env, n);
    if (n) engine_call(env, [&] { host_read(m, k, l, a.Data()); });  // from the arena, or decoded from the file when released
    return a;
  };
  // the JS names: the model's three, then each layer's nine
  static const std::pair<const char*, TensorKind> kModel[] = {{"tokEmb", TensorKind::TokEmb}, {"outNorm", TensorKind::OutNorm}, {"lmHead", TensorKind::LmHead}};
  static const std::pair<const char*, TensorKind> kLayer[] = {
      {"attnNorm", TensorKind::AttnNorm}, {"wq", TensorKind::Wq}, {"wk", TensorKind::Wk}, {"wv", TensorKind::Wv}, {"wo", TensorKind::Wo},
      {"ffnNorm", TensorKind::FfnNorm}, {"wGate", TensorKind::WGate}, {"wUp", TensorKind::WUp}, {"wDown", TensorKind::WDown}};
  Napi::Object opts = info.Length() > 0 && info[0].IsObject() ? info[0].As<Napi::Object>() : Napi::Object::New(env);
  // tensors({name}) / tensors({layer, name}): one tensor (a writer streaming the model copies one at a time)
  Napi::Value nv = opts.Get("name");
  if (!nv.IsUndefined()) {
    const std::string name = nv.IsString() ? nv.As<Napi::String>().Utf8Value() : "";
    auto named = [&](const auto& table) {
      auto it = std::find_if(std::begin(table), std::end(table), [&](const auto& e) { return name == e.first; });
      return it == std::end(table) ? nullptr : &*it;
    };
    if (auto* e = named(kModel)) return copy(e->second, 0);
    auto* e = named(kLayer);
    if (!e) throw make_error(env, "E_ARG", "name must be a tensor of the model (tokEmb, wq, …)");
    const int l = opt_int(opts, "layer", -1);
    if (l < 0 || l >= m.cfg.n_layers) throw make_error(env, "E_ARG", "layer must be between 0 and " + std::to_string(m.cfg.n_layers - 1));
    return copy(e->second, l);
  }
  Napi::Object o = Napi::Object::New(env);
  for (auto& e : kModel) o.Set(e.first, copy(e.second, 0));
  Napi::Array layers = Napi::Array::New(env, size_t(m.cfg.n_layers));
  for (int l = 0; l < m.cfg.n_layers; l++) {
    Napi::Object lo = Napi::Object::New(env);
    for (auto& e : kLayer) lo.Set(e.first, copy(e.second, l));
    layers.Set(uint32_t(l), lo);
  }
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
  engine_call(env, [&] { lay.build(model->cfg, lc); });
  Napi::Float32Array p = info[1].As<Napi::Float32Array>();
  if (int64_t(p.ElementLength()) != lay.size)
    throw make_error(env, "E_SHAPE", "the adapter has " + std::to_string(p.ElementLength()) + " LoRA values; this model with rank " + std::to_string(lc.rank) +
                                         " on these targets needs " + std::to_string(lay.size) + " (was it trained on another base?)");
  engine_call(env, [&] { host_merge_lora(*model, lay, p.Data()); });
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
  const ImportanceMethod method = engine_call(env, [&] { return parse_importance_method(s("method", "taylor")); });
  const GroupAgg agg = engine_call(env, [&] { return parse_group_agg(s("agg", "sum")); });
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
