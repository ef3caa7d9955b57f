// addon_model.h — AddonModel: the JS handle of one loaded engine Model, the backend its inference runs on
// (CPU or CUDA) and the CPU backend its training and pruning statistics run on.
// Methods return promises (work runs on libuv threads and the engine's pool) and never block Node.
#pragma once
#include <napi.h>

#include <atomic>
#include <memory>

#include "backend.h"
#include "device.h"
#include "host_weights.h"
#include "model.h"

namespace tailor_addon {

class AddonModel : public Napi::ObjectWrap<AddonModel> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit AddonModel(const Napi::CallbackInfo& info);

  // used by workers
  std::shared_ptr<tailor::Model> model;
  std::shared_ptr<tailor::Backend> backend;      // scoring, generation, LoRA training, pruning gradients (CPU or CUDA)
  std::shared_ptr<tailor::Backend> cpu_backend;  // full fine-tuning (host weights written in place); == backend on the CPU
  std::atomic<bool> weights_stale{false};        // the host weights changed since the backend's copy was made
  // refreshes a device backend's weight copy after the host weights changed (LoRA merge, training)
  void sync_weights() {
    if (!weights_stale.exchange(false) || backend->host_memory()) return;
    try {
      tailor::host_bind(*model, *backend);
    } catch (...) {
      weights_stale = true;  // (e.g. the file changed under a released model): still stale, for the next try
      throw;
    }
  }
  tailor::BackendChoice choice;  // the backend asked for at load, the one used, and why
  std::atomic<int> busy{0};

  static Napi::FunctionReference* constructor;

 private:
  static Napi::Value Load(const Napi::CallbackInfo& info);
  static Napi::Value Inspect(const Napi::CallbackInfo& info);  // config and metadata without the weights
  static Napi::Value DescribeBackend(const Napi::CallbackInfo& info);  // the backend a load would use, no model
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
