// addon_trainer.h — AddonTrainer: the JS handle of one LoRA training run over an AddonModel.
// Steps run on a libuv worker (and the engine's threads), report each step through a thread-safe
// function, and stop within a layer's time when the cancel flag is set.
#pragma once
#include <napi.h>

#include <atomic>
#include <memory>

#include "trainer.h"

namespace tailor_addon {

class AddonModel;

class AddonTrainer : public Napi::ObjectWrap<AddonTrainer> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit AddonTrainer(const Napi::CallbackInfo& info);

  std::unique_ptr<tailor::Trainer> trainer;
  Napi::ObjectReference model_ref;  // keeps the model alive as long as the trainer
  AddonModel* model = nullptr;
  std::atomic<int> busy{0};
  static Napi::FunctionReference* constructor;

 private:
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Run(const Napi::CallbackInfo& info);
  Napi::Value EvalLoss(const Napi::CallbackInfo& info);
  Napi::Value GetState(const Napi::CallbackInfo& info);
  Napi::Value SetState(const Napi::CallbackInfo& info);
  Napi::Value MergeInto(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  void require_idle(Napi::Env env);

 public:
  bool owner_full() const;  // full fine-tuning (which trains on the CPU and writes the model's weights)
};

// AddonModel.createTrainer(config, examples) is implemented here (needs both classes)
Napi::Value CreateTrainer(const Napi::CallbackInfo& info);
std::vector<tailor::Example> to_examples(Napi::Env env, const Napi::Value& v);

}  // namespace tailor_addon
