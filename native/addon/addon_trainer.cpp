// addon_trainer.cpp — AddonTrainer's methods and its step worker (see addon_trainer.h).
#include "addon_trainer.h"

#include <cmath>
#include <cstring>

#include "addon_model.h"
#include "worker.h"

namespace tailor_addon {

using namespace tailor;

Napi::FunctionReference* AddonTrainer::constructor = nullptr;

namespace {

TrainConfig to_config(Napi::Env env, const Napi::Object& o) {
  TrainConfig c;
  c.lora.rank = int(opt_num(o, "rank", 8));
  c.lora.alpha = float(opt_num(o, "alpha", 16));
  c.lora.rslora = opt_bool(o, "rslora", false);
  c.lora.dropout = float(opt_num(o, "dropout", 0.05));
  c.lora.targets = uint32_t(opt_num(o, "targets", (1 << kNumTargets) - 1));
  c.optim.lr = float(opt_num(o, "lr", 2e-4));
  c.optim.beta1 = float(opt_num(o, "beta1", 0.9));
  c.optim.beta2 = float(opt_num(o, "beta2", 0.999));
  c.optim.eps = float(opt_num(o, "eps", 1e-8));
  c.optim.weight_decay = float(opt_num(o, "weightDecay", 0));
  c.optim.warmup_steps = int(opt_num(o, "warmupSteps", 0));
  c.optim.cosine = opt_bool(o, "cosine", true);
  c.optim.min_lr_ratio = float(opt_num(o, "minLrRatio", 0));
  c.optim.clip = float(opt_num(o, "clip", 1));
  c.epochs = int(opt_num(o, "epochs", 1));
  c.batch = int(opt_num(o, "batch", 8));
  c.micro_batch = int(opt_num(o, "microBatch", c.batch));
  c.max_len = int(opt_num(o, "maxLen", 256));
  c.seed = uint64_t(opt_num(o, "seed", 0));
  c.checkpoint_activations = opt_bool(o, "checkpointActivations", false);
  c.full = opt_bool(o, "full", false);
  return c;
}

Napi::Object stats_to_js(Napi::Env env, const StepStats& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("step", double(s.step));
  o.Set("loss", s.loss);
  o.Set("lr", s.lr);
  o.Set("gradNorm", s.grad_norm);
  o.Set("tokens", double(s.tokens));
  return o;
}

using TrainerJob = OwnedJob<AddonTrainer>;

class RunWorker : public TrainerJob {
 public:
  RunWorker(Napi::Env env, AddonTrainer* t, const Napi::Object& self, const Napi::Object& opts) : TrainerJob(env, t, self) {
    max_steps_ = int64_t(opt_num(opts, "maxSteps", 1e15));
    cancel_.bind(opts.Get("cancel"));
    Napi::Value cb = opts.Get("onStep");
    if (cb.IsFunction()) {
      tsfn_ = Napi::ThreadSafeFunction::New(env, cb.As<Napi::Function>(), "tailor.train.step", 0, 1);
      has_cb_ = true;
    }
  }
  void Run() override {
    if (owner_->owner_full())
      owner_->model->weights_stale = true;  // full fine-tuning (on the CPU) writes the model's own weights
    else
      owner_->model->sync_weights();  // LoRA on a device reads the device copy: bring it up to date first
    CancelToken ct{cancel_.ptr()};
    for (int64_t i = 0; i < max_steps_ && !owner_->trainer->done(); i++) {
      StepStats s;
      try {
        s = owner_->trainer->train_step(ct);
      } catch (const EngineError& e) {
        if (e.code() != ErrorCode::CANCELLED) throw;
        cancelled_ = true;  // resolved, not rejected: the steps done so far travel with the result
        break;
      }
      steps_++;
      stats_.push_back(s);
      if (has_cb_) {
        auto* d = new StepStats(s);
        tsfn_.NonBlockingCall(d, [](Napi::Env env, Napi::Function fn, StepStats* p) {
          fn.Call({stats_to_js(env, *p)});
          delete p;
        });
      }
    }
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("steps", double(steps_));
    o.Set("step", double(owner_->trainer->step()));
    o.Set("done", owner_->trainer->done());
    o.Set("cancelled", cancelled_);
    Napi::Array all = Napi::Array::New(env, stats_.size());
    for (size_t i = 0; i < stats_.size(); i++) all.Set(uint32_t(i), stats_to_js(env, stats_[i]));
    o.Set("stats", all);
    return o;
  }
  void Done() override {
    if (has_cb_) tsfn_.Release();
    TrainerJob::Done();
  }

 private:
  int64_t max_steps_, steps_ = 0;
  bool cancelled_ = false;
  std::vector<StepStats> stats_;
  Napi::ThreadSafeFunction tsfn_;
  bool has_cb_ = false;
};

class EvalWorker : public TrainerJob {
 public:
  EvalWorker(Napi::Env env, AddonTrainer* t, const Napi::Object& self, std::vector<Example> ex, const Napi::Object& opts)
      : TrainerJob(env, t, self), ex_(std::move(ex)) {
    cancel_.bind(opts.Get("cancel"));
  }
  void Run() override {
    if (!owner_->owner_full()) owner_->model->sync_weights();
    loss_ = owner_->trainer->eval_loss(ex_, CancelToken{cancel_.ptr()});
  }
  Napi::Value Result(Napi::Env env) override { return Napi::Number::New(env, loss_); }

 private:
  std::vector<Example> ex_;
  double loss_ = 0;
};

template <class V>
Napi::Float32Array copy_f32(Napi::Env env, const V& v) {
  Napi::Float32Array a = Napi::Float32Array::New(env, v.size());
  if (!v.empty()) std::memcpy(a.Data(), v.data(), v.size() * 4);
  return a;
}

template <class V>
void load_f32(Napi::Env env, const Napi::Value& v, V& dst, const char* what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) throw make_error(env, "E_ARG", std::string(what) + " must be a Float32Array");
  Napi::Float32Array a = v.As<Napi::Float32Array>();
  if (a.ElementLength() != dst.size()) throw make_error(env, "E_ARG", std::string(what) + " has " + std::to_string(a.ElementLength()) + " values; this LoRA layout needs " + std::to_string(dst.size()));
  std::memcpy(dst.data(), a.Data(), dst.size() * 4);
}

}  // namespace

std::vector<Example> to_examples(Napi::Env env, const Napi::Value& v) {
  if (!v.IsArray()) throw make_error(env, "E_ARG", "examples must be an array of {ids, weight}");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<Example> out;
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value e = a.Get(i);
    if (!e.IsObject()) throw make_error(env, "E_ARG", "each example must be {ids: Int32Array, weight: Float32Array}");
    Napi::Value ids = e.As<Napi::Object>().Get("ids"), w = e.As<Napi::Object>().Get("weight");
    if (!ids.IsTypedArray() || ids.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array || !w.IsTypedArray() ||
        w.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
      throw make_error(env, "E_ARG", "each example must be {ids: Int32Array, weight: Float32Array}");
    Napi::Int32Array ia = ids.As<Napi::Int32Array>();
    Napi::Float32Array wa = w.As<Napi::Float32Array>();
    Example ex;
    ex.ids.assign(ia.Data(), ia.Data() + ia.ElementLength());
    ex.weight.assign(wa.Data(), wa.Data() + wa.ElementLength());
    out.push_back(std::move(ex));
  }
  return out;
}

Napi::Value CreateTrainer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsObject() || !info[1].IsObject()) throw make_error(env, "E_ARG", "createTrainer(model, config, examples)");
  Napi::Object mobj = info[0].As<Napi::Object>();
  AddonModel* am = AddonModel::Unwrap(mobj);
  if (!am->model) throw make_error(env, "E_ARG", "the model has been disposed");
  TrainConfig cfg = to_config(env, info[1].As<Napi::Object>());
  std::vector<Example> ex = to_examples(env, info[2]);
  Napi::Object obj = AddonTrainer::constructor->New({});
  AddonTrainer* t = AddonTrainer::Unwrap(obj);
  engine_call(env, [&] {
    // LoRA trains where the model computes (CUDA or CPU); full fine-tuning writes host weights, on the CPU
    if (cfg.full && am->model->host_released()) {
      if (am->busy.load() > 0) throw make_error(env, "E_ARG", "the model is busy; await its jobs before full fine-tuning brings its weights back to the host");
      host_restore(*am->model);  // full fine-tuning writes the host weights in place: bring them back whole
      am->weights_stale = true;  // a new arena: the device copy is bound again, keyed by its pointers
    }
    am->sync_weights();
    tailor::Backend& be = cfg.full ? *am->cpu_backend : *am->backend;
    t->trainer = std::make_unique<Trainer>(*am->model, be, cfg, std::move(ex));
  });
  t->model = am;
  t->model_ref = Napi::Persistent(mobj);
  am->busy++;  // the model may not be disposed while a trainer uses it
  return obj;
}

Napi::Function AddonTrainer::Init(Napi::Env env) {
  Napi::Function f = DefineClass(env, "AddonTrainer",
                                 {InstanceMethod("info", &AddonTrainer::Info), InstanceMethod("run", &AddonTrainer::Run),
                                  InstanceMethod("evalLoss", &AddonTrainer::EvalLoss), InstanceMethod("getState", &AddonTrainer::GetState),
                                  InstanceMethod("setState", &AddonTrainer::SetState), InstanceMethod("mergeInto", &AddonTrainer::MergeInto),
                                  InstanceMethod("dispose", &AddonTrainer::Dispose)});
  constructor = new Napi::FunctionReference(Napi::Persistent(f));
  return f;
}

AddonTrainer::AddonTrainer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AddonTrainer>(info) {}

bool AddonTrainer::owner_full() const { return trainer && trainer->config().full; }

void AddonTrainer::require_idle(Napi::Env env) {
  if (!trainer) throw make_error(env, "E_ARG", "the trainer has been disposed");
  if (busy.load() > 0) throw make_error(env, "E_ARG", "the trainer is busy");
}

Napi::Value AddonTrainer::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!trainer) throw make_error(env, "E_ARG", "the trainer has been disposed");
  const LoraLayout& lay = trainer->layout();
  Napi::Object o = Napi::Object::New(env);
  o.Set("totalSteps", double(trainer->total_steps()));
  o.Set("backend", trainer->backend().name());
  o.Set("step", double(trainer->step()));
  o.Set("nParams", double(lay.size));
  o.Set("rank", lay.cfg.rank);
  o.Set("alpha", lay.cfg.alpha);
  o.Set("scale", lay.cfg.scale());
  Napi::Array slots = Napi::Array::New(env);
  uint32_t k = 0;
  for (size_t l = 0; l < lay.slots.size(); l++)
    for (int t = 0; t < kNumTargets; t++) {
      const LoraSlot& s = lay.slots[l][size_t(t)];
      if (s.a < 0) continue;
      Napi::Object so = Napi::Object::New(env);
      so.Set("layer", double(l));
      so.Set("target", lora_target_name(t));
      so.Set("module", lora_target_module(t));
      so.Set("a", double(s.a));
      so.Set("b", double(s.b));
      so.Set("in", double(s.in));
      so.Set("out", double(s.out));
      slots.Set(k++, so);
    }
  o.Set("slots", slots);
  return o;
}

Napi::Value AddonTrainer::Run(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_idle(env);
  Napi::Object opts = info.Length() > 0 && info[0].IsObject() ? info[0].As<Napi::Object>() : Napi::Object::New(env);
  return (new RunWorker(env, this, info.This().As<Napi::Object>(), opts))->Start();
}

Napi::Value AddonTrainer::EvalLoss(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_idle(env);
  std::vector<Example> ex = to_examples(env, info[0]);
  Napi::Object opts = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  return (new EvalWorker(env, this, info.This().As<Napi::Object>(), std::move(ex), opts))->Start();
}

Napi::Value AddonTrainer::GetState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_idle(env);
  Napi::Object o = Napi::Object::New(env);
  trainer->state_to_host();
  o.Set("params", copy_f32(env, trainer->params()));
  o.Set("m", copy_f32(env, trainer->adam_m()));
  o.Set("v", copy_f32(env, trainer->adam_v()));
  o.Set("step", double(trainer->step()));
  return o;
}

Napi::Value AddonTrainer::SetState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_idle(env);
  if (info.Length() < 1 || !info[0].IsObject()) throw make_error(env, "E_ARG", "setState({params, m?, v?, step?})");
  Napi::Object o = info[0].As<Napi::Object>();
  load_f32(env, o.Get("params"), trainer->params(), "params");
  if (!o.Get("m").IsUndefined()) load_f32(env, o.Get("m"), trainer->adam_m(), "m");
  if (!o.Get("v").IsUndefined()) load_f32(env, o.Get("v"), trainer->adam_v(), "v");
  double step = opt_num(o, "step", double(trainer->step()));
  if (step < 0 || step > double(trainer->total_steps()) || step != std::floor(step)) throw make_error(env, "E_ARG", "step out of range");
  trainer->set_step(int64_t(step));
  engine_call(env, [&] { trainer->state_to_device(); });
  return env.Undefined();
}

// merges the current LoRA weights into the model's weights (irreversible for that model object)
Napi::Value AddonTrainer::MergeInto(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_idle(env);
  if (owner_full()) return env.Undefined();  // full fine-tuning already trains the model's own weights
  if (model->busy.load() > 1) throw make_error(env, "E_ARG", "the model is busy");
  engine_call(env, [&] {
    trainer->state_to_host();
    host_merge_lora(*model->model, trainer->layout(), trainer->params().data());
  });
  model->weights_stale = true;
  return env.Undefined();
}

Napi::Value AddonTrainer::Dispose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (busy.load() > 0) throw make_error(env, "E_ARG", "the trainer is busy");
  if (trainer) {
    trainer.reset();
    model->busy--;
    model_ref.Reset();
  }
  return env.Undefined();
}

}  // namespace tailor_addon
