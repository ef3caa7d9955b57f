// device.h — what compute devices this build and this machine offer, and which backend a model load
// uses. Pure C++ (no CUDA headers): in a build with the CUDA kernels (TAILOR_WITH_CUDA) cuda_devices() is
// implemented in native/cuda/device.cu, otherwise in device.cpp, where it says why there is no CUDA.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace tailor {

struct CudaDevice {
  int index = 0;
  std::string name;
  int cc_major = 0, cc_minor = 0;  // compute capability
  int multiprocessors = 0;
  uint64_t total_memory = 0;       // bytes
  uint64_t free_memory = 0;        // bytes (0 when not queried)
  bool supported = false;          // this build has code that runs on it (sm_75 and newer)
};

struct CudaStatus {
  bool built = false;              // the engine was compiled with the CUDA kernels
  bool available = false;          // at least one supported device answered
  std::vector<CudaDevice> devices;
  std::string reason;              // why not available ("no CUDA driver", "no device", the CUDA error); empty when available
  std::string architectures;       // compiled-in SM list, e.g. "75,80,86,89,90" (empty when not built)
  int runtime_version = 0;         // CUDA runtime linked in, e.g. 13000 (0 when not built)
  int driver_version = 0;          // CUDA version the driver supports (0: no driver)
  // cuBLASLt for the CUDA matrix products, as the first supported device sees it (cuda::lt_status(): "on
  // (the library, its version)" or "off (why)"); empty when CUDA is not available or with_memory is false
  std::string cublaslt;
};

// Never throws. with_memory: also query free memory, which creates the CUDA context on each device the
// first time (slow, and holds device memory for the process); without it the result is cached.
CudaStatus cuda_devices(bool with_memory = true);

// "13.0" for 13000
std::string cuda_version_string(int v);

enum class BackendKind { Auto, Cpu, Cuda };
BackendKind parse_backend_kind(const std::string& s);  // "auto" | "cpu" | "cuda", else E_ARG
const char* backend_kind_name(BackendKind k);

struct BackendChoice {
  BackendKind requested = BackendKind::Auto;
  BackendKind used = BackendKind::Cpu;       // what runs the model's inference (scoring, generation)
  BackendKind auto_pick = BackendKind::Cpu;  // what 'auto' picks on this machine
  int device = -1;                           // the CUDA device when used == Cuda
  std::string note;                          // one line for `tailor info`; empty for an explicit 'cpu'
};

// The backend for a model load. 'cuda' and 'auto' pick the first supported CUDA device when there is
// one (inference, LoRA training and the pruner's gradients run there; full fine-tuning on the CPU); 'cuda' throws
// E_UNSUPPORTED saying why it cannot run (not built, no driver, no supported device).
BackendChoice choose_backend(BackendKind requested);

}  // namespace tailor
