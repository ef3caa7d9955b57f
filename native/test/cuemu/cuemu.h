// cuemu.h — a CPU emulator for Tailor's CUDA sources, for testing only: native/cuda/*.cu compiled by the
// host compiler against these shadow headers (cuda_runtime.h, cuda_bf16.h, mma.h) run their kernels on the
// CPU, so the kernels' indexing, bounds, reductions and barriers are checked on machines without a GPU
// (CI). Each block runs its threads as cooperative fibers: __syncthreads() and warp shuffles switch fibers;
// shared memory is a thread_local static (blocks run one after another); device memory is host memory
// handed out by the emulated runtime (cuemu_runtime.cpp), filled with NaN bytes on allocation so that a read of
// unwritten memory shows. A barrier that can never complete (divergent __syncthreads) aborts, naming the
// kernel. Streams are queues: a launch, an async copy or a memset is queued on its stream (the legacy
// default stream, or a non-blocking one) and runs only when the host waits for it (a synchronous copy,
// a stream, event or device synchronisation, cudaFree) or another stream that waits on one of its events
// runs. So work runs as late as CUDA allows, and a missing event wait, a host read of a pinned buffer
// before its copy completed, or a pinned buffer reused too early gives wrong results here instead of
// passing by luck. Not emulated: the memory model, timing. Concurrency between threads is not emulated
// either (a block's threads take turns), but a ThreadSanitizer build (TAILOR_TSAN) reports every pair of
// accesses that CUDA leaves unordered (see cuemu.cpp).
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

#define TAILOR_CUEMU 1
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __shared__ static thread_local
#define __align__(n) __attribute__((aligned(n)))
#define __launch_bounds__(...)
// the emulated device is sm_80 unless TAILOR_CUEMU_CC says otherwise (the host code asks at run time)
#define __CUDA_ARCH__ 800

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
extern thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;
constexpr int warpSize = 32;

namespace cuemu {
// false (and the launch error set) for a bad launch configuration
bool launch_config_ok(dim3 grid, dim3 block);
// runs entry(ctx) as every thread of every block of the grid
void run_kernel(dim3 grid, dim3 block, const char* name, void (*entry)(void*), void* ctx);
// queues op on the legacy default stream (kernel launches)
void enqueue_default(std::function<void()> op);
void syncthreads();
void syncwarp();
// the value `bytes` at `in` of lane src_lane (of this warp), every lane of the warp taking part
void warp_exchange(const void* in, void* out, size_t bytes, int src_lane);
int lane();
[[noreturn]] void trap();

template <typename F>
struct Launch {
  dim3 grid, block;
  const char* name;
  F kernel;
  // checks the configuration now and queues the kernel with its arguments (by value, as CUDA passes them)
  template <typename... A>
  void operator()(A... a) const {
    if (!launch_config_ok(grid, block)) return;
    enqueue_default([g = grid, b = block, n = name, k = kernel, args = std::make_tuple(a...)]() {
      auto body = [&]() { std::apply(k, args); };
      using Body = decltype(body);
      run_kernel(g, b, n, [](void* p) { (*static_cast<Body*>(p))(); }, &body);
    });
  }
};
template <typename F>
Launch<F> launch(dim3 grid, dim3 block, const char* name, F kernel) {
  return Launch<F>{grid, block, name, kernel};
}
}  // namespace cuemu

// kernel<<<grid, block>>>(args) is written TAILOR_LAUNCH(kernel, grid, block)(args) in the sources
#define TAILOR_LAUNCH(kernel, grid, block) ::cuemu::launch(dim3(grid), dim3(block), #kernel, kernel)

// ---- vector types ----
struct alignas(16) uint4 {
  unsigned x, y, z, w;
};
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return uint4{x, y, z, w}; }
namespace cuemu {
// a vector access's address must be aligned to its size on the GPU (a misaligned one faults there; on the
// CPU it would pass): here it is a trap naming the access
void check_aligned(const void* p, size_t bytes, const char* what);
}  // namespace cuemu

// ---- asynchronous copies to shared memory (cp.async; cuda_pipeline_primitives.h) ----
// The bookkeeping lives in cuemu.cpp, which ThreadSanitizer does not see (the scheduler resets it between
// blocks); the copies' bytes are moved by the header's inline code, compiled into the instrumented kernels.
namespace cuemu {
struct AsyncCopy {
  void* dst;
  const void* src;
  size_t bytes, zfill;  // bytes − zfill read from src, zfill zeros after them
};
void async_issue(const AsyncCopy& c);  // the calling CUDA thread's next copy, in its open group
void async_commit();                   // closes its open group
// one copy of its oldest committed group while more than `prior` groups are committed (false: none due)
bool async_due(size_t prior, AsyncCopy* c);
}  // namespace cuemu

// ---- device intrinsics ----
inline void __syncthreads() { cuemu::syncthreads(); }
inline void __syncwarp(unsigned = 0xffffffffu) { cuemu::syncwarp(); }
inline void __threadfence() {}
[[noreturn]] inline void __trap() { cuemu::trap(); }
template <typename T>
T __shfl_xor_sync(unsigned, T v, int lane_mask, int width = 32) {
  T r;
  const int l = cuemu::lane();
  cuemu::warp_exchange(&v, &r, sizeof(T), (l & ~(width - 1)) | ((l ^ lane_mask) & (width - 1)));
  return r;
}
template <typename T>
T __shfl_down_sync(unsigned, T v, unsigned delta, int width = 32) {
  T r;
  const int l = cuemu::lane(), idx = (l & (width - 1)) + int(delta);
  cuemu::warp_exchange(&v, &r, sizeof(T), idx >= width ? l : (l & ~(width - 1)) + idx);
  return r;
}
template <typename T>
T __shfl_sync(unsigned, T v, int src_lane, int width = 32) {
  T r;
  const int l = cuemu::lane();
  cuemu::warp_exchange(&v, &r, sizeof(T), (l & ~(width - 1)) + (src_lane & (width - 1)));
  return r;
}
inline float __uint_as_float(unsigned u) { float f; std::memcpy(&f, &u, 4); return f; }
inline unsigned __float_as_uint(float f) { unsigned u; std::memcpy(&u, &f, 4); return u; }
inline float __int_as_float(int u) { float f; std::memcpy(&f, &u, 4); return f; }
inline int __float_as_int(float f) { int u; std::memcpy(&u, &f, 4); return u; }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float rsqrtf(float x) { return 1.f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
template <typename T>
T __ldg(const T* p) { return *p; }
// fibers never interleave inside one call, so plain read-modify-writes are atomic here; under
// ThreadSanitizer they are real atomic operations, so that atomics from several threads are not races
#if defined(__SANITIZE_THREAD__)
template <typename T, typename F>
T cuemu_atomic_update(T* p, F f) {
  using U = std::conditional_t<sizeof(T) == 4, unsigned, unsigned long long>;
  static_assert(sizeof(T) == sizeof(U), "atomics of 4 or 8 bytes");
  U* q = reinterpret_cast<U*>(p);
  U old = __atomic_load_n(q, __ATOMIC_RELAXED), next;
  T o;
  do {
    std::memcpy(&o, &old, sizeof(T));
    const T n = f(o);
    std::memcpy(&next, &n, sizeof(T));
  } while (!__atomic_compare_exchange_n(q, &old, next, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
  return o;
}
#else
template <typename T, typename F>
T cuemu_atomic_update(T* p, F f) {
  const T o = *p;
  *p = f(o);
  return o;
}
#endif
inline float atomicAdd(float* p, float v) { return cuemu_atomic_update(p, [v](float o) { return o + v; }); }
inline double atomicAdd(double* p, double v) { return cuemu_atomic_update(p, [v](double o) { return o + v; }); }
inline int atomicAdd(int* p, int v) { return cuemu_atomic_update(p, [v](int o) { return o + v; }); }
inline unsigned atomicAdd(unsigned* p, unsigned v) { return cuemu_atomic_update(p, [v](unsigned o) { return o + v; }); }
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) {
  return cuemu_atomic_update(p, [v](unsigned long long o) { return o + v; });
}
inline int atomicMax(int* p, int v) { return cuemu_atomic_update(p, [v](int o) { return v > o ? v : o; }); }
inline int atomicCAS(int* p, int cmp, int v) { return cuemu_atomic_update(p, [cmp, v](int o) { return o == cmp ? v : o; }); }
inline unsigned long long atomicCAS(unsigned long long* p, unsigned long long cmp, unsigned long long v) {
  return cuemu_atomic_update(p, [cmp, v](unsigned long long o) { return o == cmp ? v : o; });
}
// ---- the runtime API (the subset Tailor uses) ----
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInsufficientDriver = 35,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorLaunchFailure = 719,
  cudaErrorNotReady = 600,
};
using cudaError = cudaError_t;
enum cudaMemcpyKind { cudaMemcpyHostToHost = 0, cudaMemcpyHostToDevice = 1, cudaMemcpyDeviceToHost = 2, cudaMemcpyDeviceToDevice = 3, cudaMemcpyDefault = 4 };
enum cudaDeviceAttr { cudaDevAttrComputeCapabilityMajor = 75, cudaDevAttrComputeCapabilityMinor = 76, cudaDevAttrMultiProcessorCount = 16 };
struct CUstream_st;
using cudaStream_t = CUstream_st*;
struct CUevent_st;
using cudaEvent_t = CUevent_st*;
constexpr unsigned cudaStreamNonBlocking = 1, cudaEventDisableTiming = 2, cudaHostAllocDefault = 0;
struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  int major, minor;
  int multiProcessorCount;
  size_t sharedMemPerBlock;
  int maxThreadsPerBlock;
};
cudaError_t cudaGetDeviceCount(int* n);
cudaError_t cudaGetDevice(int* d);
cudaError_t cudaSetDevice(int d);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int d);
cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr a, int d);
cudaError_t cudaDriverGetVersion(int* v);
cudaError_t cudaRuntimeGetVersion(int* v);
cudaError_t cudaMalloc(void** p, size_t bytes);
cudaError_t cudaFree(void* p);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s = nullptr);
cudaError_t cudaMemset(void* p, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t s = nullptr);
cudaError_t cudaMemGetInfo(size_t* free_b, size_t* total_b);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaStreamSynchronize(cudaStream_t s);
// streams and events (only non-blocking streams are emulated: a blocking one aborts, naming the call)
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned flags = 0);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned flags);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventQuery(cudaEvent_t e);
// page-locked host memory: async copies from and to it are queued; with pageable memory they complete
// (H2D: the source is consumed) before the call returns, as CUDA documents
cudaError_t cudaHostAlloc(void** p, size_t bytes, unsigned flags);
cudaError_t cudaMallocHost(void** p, size_t bytes);
cudaError_t cudaFreeHost(void* p);
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorName(cudaError_t e);
const char* cudaGetErrorString(cudaError_t e);

namespace cuemu {
// bytes the emulated device has handed out and not freed (the allocator tests' accounting)
size_t bytes_in_use();
// async copies between the device and pageable host memory so far (they cannot overlap anything)
size_t pageable_async_copies();
// queues op on stream s (the emulated cuBLASLt's products)
void enqueue(cudaStream_t s, std::function<void()> op);
// the calling thread's last error (cudaGetLastError), set by launches (cuemu.cpp) and runtime calls
extern thread_local cudaError_t last_error;
}
