// addon.cpp — module entry: registers AddonModel and engineInfo() (BLAS, threads, CUDA status and devices),
// and the shared error, cancel and progress helpers.
#include <napi.h>
#include <utility>

#include "addon_model.h"
#include "addon_trainer.h"
#include "backend.h"
#include "device.h"
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

void ProgressCallback::bind(Napi::Env env, const Napi::Object& opts, const char* key, const char* name) {
  Napi::Value cb = opts.Get(key);
  if (!cb.IsFunction()) return;
  tsfn_ = Napi::ThreadSafeFunction::New(env, cb.As<Napi::Function>(), name, 0, 1);
  bound_ = true;
}

void ProgressCallback::post(double done, double total) {
  if (!bound_) return;
  auto* d = new std::pair<double, double>(done, total);
  tsfn_.NonBlockingCall(d, [](Napi::Env env, Napi::Function fn, std::pair<double, double>* p) {
    fn.Call({Napi::Number::New(env, p->first), Napi::Number::New(env, p->second)});
    delete p;
  });
}

static Napi::Value EngineInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("blas", tailor::cpu_blas_name());
  o.Set("hardwareThreads", double(std::thread::hardware_concurrency()));
  // CUDA: what the build has and what this machine offers (no driver, no device: available false and why)
  tailor::CudaStatus cs = tailor::cuda_devices(true);
  o.Set("cudaBuilt", cs.built);
  Napi::Object cuda = Napi::Object::New(env);
  cuda.Set("built", cs.built);
  cuda.Set("available", cs.available);
  Napi::Array devs = Napi::Array::New(env, cs.devices.size());
  for (size_t i = 0; i < cs.devices.size(); i++) {
    const tailor::CudaDevice& d = cs.devices[i];
    Napi::Object dv = Napi::Object::New(env);
    dv.Set("index", d.index);
    dv.Set("name", d.name);
    dv.Set("computeCapability", std::to_string(d.cc_major) + "." + std::to_string(d.cc_minor));
    dv.Set("multiprocessors", d.multiprocessors);
    dv.Set("totalMemory", double(d.total_memory));
    dv.Set("freeMemory", double(d.free_memory));
    dv.Set("supported", d.supported);
    devs.Set(uint32_t(i), dv);
  }
  cuda.Set("devices", devs);
  cuda.Set("reason", cs.available ? env.Null() : Napi::Value(Napi::String::New(env, cs.reason)));
  cuda.Set("architectures", cs.built ? Napi::Value(Napi::String::New(env, cs.architectures)) : env.Null());
  cuda.Set("runtimeVersion", cs.built ? Napi::Value(Napi::String::New(env, tailor::cuda_version_string(cs.runtime_version))) : env.Null());
  cuda.Set("driverVersion", cs.driver_version > 0 ? Napi::Value(Napi::String::New(env, tailor::cuda_version_string(cs.driver_version))) : env.Null());
  cuda.Set("cublasLt", cs.cublaslt.empty() ? env.Null() : Napi::Value(Napi::String::New(env, cs.cublaslt)));
  o.Set("cuda", cuda);
  return o;
}

// deviceMemory({resetPeak}) → Tailor's device memory over all its CUDA backends (cuda_process_memory), or
// null when no CUDA backend was ever made in this process
static Napi::Value DeviceMemory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const bool reset = info.Length() > 0 && info[0].IsObject() && info[0].As<Napi::Object>().Get("resetPeak").ToBoolean().Value();
  tailor::Backend::MemoryStats m = tailor::cuda_process_memory(reset);
  if (m.device_total == 0) return env.Null();
  Napi::Object o = Napi::Object::New(env);
  o.Set("inUse", double(m.in_use));
  o.Set("peak", double(m.peak));
  o.Set("cached", double(m.cached));
  o.Set("library", double(m.library));
  o.Set("total", double(m.device_total));
  o.Set("free", double(m.device_free));
  return o;
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("AddonModel", AddonModel::Init(env));
  exports.Set("AddonTrainer", AddonTrainer::Init(env));
  exports.Set("createTrainer", Napi::Function::New(env, CreateTrainer));
  exports.Set("engineInfo", Napi::Function::New(env, EngineInfo));
  exports.Set("deviceMemory", Napi::Function::New(env, DeviceMemory));
  return exports;
}

NODE_API_MODULE(tailor, Init)

}  // namespace tailor_addon
