// device.cu — CUDA device discovery (cuda_devices() of device.h, for engineInfo and the backend choice)
// and the device/memory helpers of kernels.h. With the static CUDA runtime nothing touches the driver
// before the first call here, and with no driver the calls fail cleanly: a build with CUDA loads and runs
// on the CPU on a machine without one, and says why it cannot use CUDA.
#include <atomic>
#include <mutex>

#include "common.cuh"
#include "device.h"
#include "kernels.h"

#ifndef TAILOR_CUDA_ARCHS
#define TAILOR_CUDA_ARCHS ""
#endif

namespace tailor {

namespace {

// the oldest architecture this build has machine code for (CMAKE_CUDA_ARCHITECTURES starts at 75)
constexpr int kMinCc = 75;

CudaStatus probe() {
  CudaStatus s;
  s.built = true;
  s.architectures = TAILOR_CUDA_ARCHS;
  cudaRuntimeGetVersion(&s.runtime_version);
  if (cudaDriverGetVersion(&s.driver_version) != cudaSuccess) s.driver_version = 0;
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();  // not sticky, but leave no error behind
    if (s.driver_version == 0)
      s.reason = "no CUDA driver (libcuda.so.1 was not found: install the NVIDIA driver)";
    else if (e == cudaErrorInsufficientDriver)
      s.reason = "the CUDA driver (CUDA " + cuda_version_string(s.driver_version) + ") is older than this build's CUDA runtime (" +
                 cuda_version_string(s.runtime_version) + ")";
    else if (e == cudaErrorNoDevice)
      s.reason = "no device (the CUDA driver found no GPU)";
    else
      s.reason = std::string("CUDA error ") + cudaGetErrorName(e) + ": " + cudaGetErrorString(e);
    return s;
  }
  for (int i = 0; i < n; i++) {
    cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, i) != cudaSuccess) {
      cudaGetLastError();
      continue;
    }
    CudaDevice d;
    d.index = i;
    d.name = p.name;
    d.cc_major = p.major;
    d.cc_minor = p.minor;
    d.multiprocessors = p.multiProcessorCount;
    d.total_memory = uint64_t(p.totalGlobalMem);
    d.supported = p.major * 10 + p.minor >= kMinCc;
    s.devices.push_back(d);
  }
  for (const CudaDevice& d : s.devices) s.available = s.available || d.supported;
  if (s.devices.empty())
    s.reason = "no device (the CUDA driver found no GPU)";
  else if (!s.available)
    s.reason = "no supported device (" + s.devices[0].name + " is sm_" + std::to_string(s.devices[0].cc_major) +
               std::to_string(s.devices[0].cc_minor) + "; this build needs sm_75 or newer)";
  return s;
}

}  // namespace

CudaStatus cuda_devices(bool with_memory) {
  static std::mutex mu;
  static bool probed = false;
  static CudaStatus cached;
  std::lock_guard<std::mutex> lock(mu);
  if (!probed) {
    cached = probe();
    probed = true;
  }
  CudaStatus s = cached;
  if (!with_memory || s.devices.empty()) return s;
  int prev = 0;
  bool have_prev = cudaGetDevice(&prev) == cudaSuccess;
  for (CudaDevice& d : s.devices) {
    size_t free_b = 0, total_b = 0;
    if (cudaSetDevice(d.index) == cudaSuccess && cudaMemGetInfo(&free_b, &total_b) == cudaSuccess)
      d.free_memory = uint64_t(free_b);
    else
      cudaGetLastError();
  }
  for (const CudaDevice& d : s.devices)
    if (d.supported && cudaSetDevice(d.index) == cudaSuccess) {
      s.cublaslt = cuda::lt_status();  // (opens the library on first use: lt_library.cu)
      break;
    }
  if (have_prev) cudaSetDevice(prev);
  return s;
}

namespace cuda {

void set_device(int index) { check(cudaSetDevice(index), "cudaSetDevice"); }

namespace {
// a device's fixed properties, asked once per device (the products ask for them on every call)
constexpr int kCachedDevices = 64;
std::atomic<int> g_cc[kCachedDevices];   // major*10 + minor; 0: not asked yet
std::atomic<int> g_sms[kCachedDevices];  // multiprocessors; 0: not asked yet

int current_device() {
  int dev = 0;
  check(cudaGetDevice(&dev), "cudaGetDevice");
  return dev;
}

template <typename Ask>
int cached(std::atomic<int>* cache, Ask ask) {
  const int dev = current_device();
  const bool slot = dev >= 0 && dev < kCachedDevices;
  if (slot) {
    const int v = cache[dev].load(std::memory_order_relaxed);
    if (v) return v;
  }
  const int v = ask(dev);
  if (slot) cache[dev].store(v, std::memory_order_relaxed);
  return v;
}
}  // namespace

int compute_capability() {
  return cached(g_cc, [](int dev) {
    int major = 0, minor = 0;
    check(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev), "cudaDeviceGetAttribute");
    check(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev), "cudaDeviceGetAttribute");
    return major * 10 + minor;
  });
}

int multiprocessor_count() {
  return cached(g_sms, [](int dev) {
    int n = 0;
    check(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev), "cudaDeviceGetAttribute");
    return n > 0 ? n : 1;
  });
}

void* device_malloc(size_t bytes) {
  void* p = nullptr;
  cudaError_t e = cudaMalloc(&p, bytes == 0 ? 1 : bytes);
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    size_t free_b = 0, total_b = 0;
    int dev = 0;
    cudaGetDevice(&dev);
    std::string avail = cudaMemGetInfo(&free_b, &total_b) == cudaSuccess
                            ? std::to_string(free_b) + " bytes free of " + std::to_string(total_b)
                            : std::string("free memory unknown");
    fail(ErrorCode::OOM, "out of device memory on CUDA device " + std::to_string(dev) + ": " + std::to_string(bytes) + " bytes needed, " + avail);
  }
  check(e, "cudaMalloc");
  return p;
}

void device_free(void* p) noexcept {
  if (p) cudaFree(p);
}

void to_device(void* dst, const void* src, size_t bytes) {
  if (bytes) check(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), "cudaMemcpy to the device");
}

void to_host(void* dst, const void* src, size_t bytes) {
  if (bytes) check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy to the host");
}

void device_memset(void* p, int value, size_t bytes) {
  if (bytes) check(cudaMemset(p, value, bytes), "cudaMemset");
}

void device_synchronize() { check(cudaDeviceSynchronize(), "kernel (at synchronize)"); }

}  // namespace cuda
}  // namespace tailor
