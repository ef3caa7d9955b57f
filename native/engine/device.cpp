// device.cpp — the backend choice of a model load ('auto' | 'cpu' | 'cuda'), and, in a build without the
// CUDA kernels, the cuda_devices() that says so. The CUDA build's cuda_devices() is native/cuda/device.cu.
#include "device.h"

#include "backend.h"
#include "errors.h"

namespace tailor {

std::string cuda_version_string(int v) {
  if (v <= 0) return "none";
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}

#if !defined(TAILOR_WITH_CUDA)
#if !defined(TAILOR_CUDA_OFF_REASON)
#define TAILOR_CUDA_OFF_REASON "the engine was built without CUDA"
#endif
CudaStatus cuda_devices(bool) {
  CudaStatus s;
  s.reason = std::string("not built with CUDA (") + TAILOR_CUDA_OFF_REASON + ")";
  return s;
}

std::unique_ptr<Backend> make_cuda_backend(int, const BackendOptions&) {
  fail(ErrorCode::UNSUPPORTED, std::string("the CUDA backend is not available: not built with CUDA (") + TAILOR_CUDA_OFF_REASON + ")");
}

Backend::MemoryStats cuda_process_memory(bool) { return {}; }
#endif

BackendKind parse_backend_kind(const std::string& s) {
  if (s == "auto") return BackendKind::Auto;
  if (s == "cpu") return BackendKind::Cpu;
  if (s == "cuda") return BackendKind::Cuda;
  fail(ErrorCode::ARG, "backend must be 'auto', 'cpu' or 'cuda' (got '" + s + "')");
}

const char* backend_kind_name(BackendKind k) {
  switch (k) {
    case BackendKind::Auto: return "auto";
    case BackendKind::Cpu: return "cpu";
    case BackendKind::Cuda: return "cuda";
  }
  return "cpu";
}

static const CudaDevice* first_supported(const CudaStatus& s) {
  for (const CudaDevice& d : s.devices)
    if (d.supported) return &d;
  return nullptr;
}

static std::string describe(const CudaDevice& d) {
  return "device " + std::to_string(d.index) + ", " + d.name + ", sm_" + std::to_string(d.cc_major) + std::to_string(d.cc_minor);
}

BackendChoice choose_backend(BackendKind requested) {
  BackendChoice c;
  c.requested = requested;
  c.used = BackendKind::Cpu;
  if (requested == BackendKind::Cpu) return c;
  CudaStatus s = cuda_devices(false);
  const CudaDevice* d = s.available ? first_supported(s) : nullptr;
  if (requested == BackendKind::Cuda) {
    if (!d) fail(ErrorCode::UNSUPPORTED, "the CUDA backend is not available: " + s.reason + "; use backend 'cpu' or 'auto'");
    c.used = c.auto_pick = BackendKind::Cuda;
    c.device = d->index;
    c.note = "CUDA (" + describe(*d) + ") runs inference; training and pruning statistics run on the CPU";
    return c;
  }
  if (d) {
    c.used = c.auto_pick = BackendKind::Cuda;
    c.device = d->index;
    c.note = "auto chose CUDA (" + describe(*d) + ") for inference; training and pruning statistics run on the CPU";
  } else {
    c.note = "auto chose the CPU; CUDA is not available: " + s.reason;
  }
  return c;
}

}  // namespace tailor
