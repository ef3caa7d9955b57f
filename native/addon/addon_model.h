// addon_model.h — AddonModel: the JS handle of one loaded engine Model and its CPU backend.
// Methods return promises (work runs on libuv threads and the engine's pool) and never block Node.
#pragma once
#include <napi.h>

#include <atomic>
#include <memory>

#include "backend.h"
#include "device.h"
#include "model.h"

namespace tailor_addon {

class AddonModel : public Napi::ObjectWrap<AddonModel> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit AddonModel(const Napi::CallbackInfo& info);

  // used by workers
  std::shared_ptr<tailor::Model> model;
  std::shared_ptr<tailor::Backend> backend;
  tailor::BackendChoice choice;  // the backend asked for at load, the one used, and why
  std::atomic<int> busy{0};

  static Napi::FunctionReference* constructor;

 private:
  static Napi::Value Load(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Metadata(const Napi::CallbackInfo& info);
  Napi::Value Score(const Napi::CallbackInfo& info);
  Napi::Value Generate(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value Tensors(const Napi::CallbackInfo& info);
  Napi::Value MergeLora(const Napi::CallbackInfo& info);
  Napi::Value TaylorStats(const Napi::CallbackInfo& info);
  Napi::Value GroupImportance(const Napi::CallbackInfo& info);
  void require_loaded(Napi::Env env);
};

}  // namespace tailor_addon
