// worker.h — the addon's one path from engine work to a JS promise: EngineWorker runs Execute() on a
// libuv worker thread, and turns an EngineError into a rejected promise whose error carries `code`
// (E_FORMAT, E_CANCELLED, …), which the TypeScript wrapper rethrows as EngineError.
#pragma once
#include <napi.h>

#include <atomic>
#include <cmath>
#include <functional>
#include <initializer_list>
#include <new>
#include <string>

#include "errors.h"

namespace tailor_addon {

Napi::Error make_error(Napi::Env env, const std::string& code, const std::string& message);

// Engine work done synchronously on the JS thread: f's EngineError becomes the JS error with its code, as
// EngineWorker does for a promise (an exception that is not a Napi::Error would otherwise end the process).
template <typename F>
auto engine_call(Napi::Env env, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const tailor::EngineError& e) {
    throw make_error(env, tailor::error_code_name(e.code()), e.what());
  } catch (const std::bad_alloc&) {
    throw make_error(env, "E_OOM", "out of memory");
  }
}

class EngineWorker : public Napi::AsyncWorker {
 public:
  explicit EngineWorker(Napi::Env env) : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  virtual void Run() = 0;                            // worker thread: engine work only, no N-API
  virtual Napi::Value Result(Napi::Env env) = 0;     // main thread: convert the result
  virtual void Done() {}                             // main thread: release references (both outcomes)

 private:
  void Execute() override {
    try {
      Run();
    } catch (const tailor::EngineError& e) {
      code_ = tailor::error_code_name(e.code());
      SetError(e.what());
    } catch (const std::bad_alloc&) {
      code_ = "E_OOM";
      SetError("out of memory");
    } catch (const std::exception& e) {
      code_ = "E_INTERNAL";
      SetError(e.what());
    }
  }
  void OnOK() override {
    Napi::HandleScope scope(Env());
    Napi::Value v;
    try {
      v = Result(Env());
    } catch (const Napi::Error& e) {
      Done();
      deferred_.Reject(e.Value());
      return;
    }
    Done();
    deferred_.Resolve(v);
  }
  void OnError(const Napi::Error& e) override {
    Napi::HandleScope scope(Env());
    Done();
    deferred_.Reject(make_error(Env(), code_, e.Message()).Value());
  }

  Napi::Promise::Deferred deferred_;
  std::string code_ = "E_INTERNAL";
};

class CancelFlag;

// Options objects from JS: an absent (or null) key gives the default; a wrong type is an E_ARG error
// naming the key.
inline double opt_num(const Napi::Object& o, const char* k, double dflt) {
  Napi::Value v = o.Get(k);
  if (v.IsUndefined() || v.IsNull()) return dflt;
  if (!v.IsNumber() || !std::isfinite(v.As<Napi::Number>().DoubleValue())) throw make_error(o.Env(), "E_ARG", std::string("option ") + k + " must be a finite number");
  return v.As<Napi::Number>().DoubleValue();
}

inline int32_t opt_int(const Napi::Object& o, const char* k, int32_t dflt) {
  double d = opt_num(o, k, dflt);
  if (d != std::floor(d) || std::fabs(d) > 2147483647.0) throw make_error(o.Env(), "E_ARG", std::string("option ") + k + " must be an integer");
  return int32_t(d);
}

inline bool opt_bool(const Napi::Object& o, const char* k, bool dflt) {
  Napi::Value v = o.Get(k);
  if (v.IsUndefined() || v.IsNull()) return dflt;
  if (!v.IsBoolean()) throw make_error(o.Env(), "E_ARG", std::string("option ") + k + " must be true or false");
  return v.As<Napi::Boolean>().Value();
}

// one of a few strings (absent: dflt); otherwise E_ARG "KEY must be 'a', 'b' or 'c'"
inline std::string opt_choice(const Napi::Object& o, const char* k, std::initializer_list<const char*> choices, const char* dflt) {
  Napi::Value v = o.Get(k);
  if (v.IsUndefined() || v.IsNull()) return dflt;
  const std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
  std::string list;
  size_t i = 0;
  for (const char* c : choices) {
    if (s == c) return s;
    list += std::string(i == 0 ? "" : i + 1 == choices.size() ? " or " : ", ") + "'" + c + "'";
    i++;
  }
  throw make_error(o.Env(), "E_ARG", std::string(k) + " must be " + list);
}

// A job on an addon object (a model, a trainer): the JS object stays alive and counted busy while the
// job runs, so it cannot be disposed under the worker.
template <typename Owner>
class OwnedJob;

// A cancel flag shared with JS: an Int32Array whose element 0 JS sets to nonzero to stop the job.
// The reference keeps its buffer alive while the worker reads it.
class CancelFlag {
 public:
  void bind(const Napi::Value& v);
  const int32_t* ptr() const { return ptr_; }
  void reset() { if (!ref_.IsEmpty()) ref_.Reset(); }

 private:
  Napi::Reference<Napi::Value> ref_;
  const int32_t* ptr_ = nullptr;
};

// A JS progress callback `(done, total) => void` that a worker thread calls through a thread-safe function
// (never blocking; calls arrive in order on the main thread). Unbound when opts[key] is not a function.
// bind() in the worker's constructor, release() in its Done().
class ProgressCallback {
 public:
  void bind(Napi::Env env, const Napi::Object& opts, const char* key, const char* name);
  explicit operator bool() const { return bound_; }
  void post(double done, double total);
  void release() {
    if (bound_) tsfn_.Release();
    bound_ = false;
  }

 private:
  Napi::ThreadSafeFunction tsfn_;
  bool bound_ = false;
};

template <typename Owner>
class OwnedJob : public EngineWorker {
 public:
  OwnedJob(Napi::Env env, Owner* owner, const Napi::Object& self) : EngineWorker(env), owner_(owner) { self_ = Napi::Persistent(self); }
  // marks the owner busy and queues the work (after the constructor validated the arguments)
  Napi::Promise Start() {
    owner_->busy++;
    Napi::Promise p = promise();
    Queue();
    return p;
  }

 protected:
  void Done() override {
    owner_->busy--;
    self_.Reset();
    cancel_.reset();
  }
  Owner* owner_;
  Napi::ObjectReference self_;
  CancelFlag cancel_;
};

}  // namespace tailor_addon
