// addon.cpp — module entry: registers AddonModel and engineInfo(), and the shared error/cancel helpers.
#include <napi.h>

#include "addon_model.h"
#include "addon_trainer.h"
#include "backend.h"
#include "worker.h"

namespace tailor_addon {

Napi::Error make_error(Napi::Env env, const std::string& code, const std::string& message) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, code));
  return e;
}

void CancelFlag::bind(const Napi::Value& v) {
  if (v.IsUndefined() || v.IsNull()) return;
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array || v.As<Napi::Int32Array>().ElementLength() < 1)
    throw make_error(v.Env(), "E_ARG", "cancel must be an Int32Array of at least one element");
  ref_ = Napi::Persistent(v);
  ptr_ = v.As<Napi::Int32Array>().Data();
}

static Napi::Value EngineInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("blas", tailor::cpu_blas_name());
  o.Set("hardwareThreads", double(std::thread::hardware_concurrency()));
#if defined(TAILOR_WITH_CUDA)
  o.Set("cudaBuilt", true);
#else
  o.Set("cudaBuilt", false);
#endif
  return o;
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("AddonModel", AddonModel::Init(env));
  exports.Set("AddonTrainer", AddonTrainer::Init(env));
  exports.Set("createTrainer", Napi::Function::New(env, CreateTrainer));
  exports.Set("engineInfo", Napi::Function::New(env, EngineInfo));
  return exports;
}

NODE_API_MODULE(tailor, Init)

}  // namespace tailor_addon
