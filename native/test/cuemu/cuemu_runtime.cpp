// cuemu_runtime.cpp — the CUDA emulator's runtime API (see cuemu.h): device memory (host memory from the
// allocator below, with the emulated device's capacity, TAILOR_CUEMU_MEMORY bytes, default 8 GiB, enforced
// so that out-of-memory paths can be tested; copies and memsets bounds-checked against the allocations),
// page-locked host memory, streams and events (queues of operations run in order when something waits for
// them), and the device queries. Environment: TAILOR_CUEMU_CC (compute capability ×10, default 80),
// TAILOR_CUEMU_DEVICES (default 1).
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include "cuemu.h"

namespace cuemu {
// ---- memory ----
namespace {
std::mutex mem_mu;
std::map<uintptr_t, size_t> allocs;  // base → bytes
size_t in_use = 0;
thread_local int current_device = 0;

size_t env_size(const char* name, size_t def) {
  const char* v = std::getenv(name);
  return v && *v ? size_t(std::strtoull(v, nullptr, 10)) : def;
}
size_t capacity() { return env_size("TAILOR_CUEMU_MEMORY", size_t(8) << 30); }
int device_count() { return int(env_size("TAILOR_CUEMU_DEVICES", 1)); }
int cc() { return int(env_size("TAILOR_CUEMU_CC", 80)); }

// true when [p, p+bytes) lies inside one of the blocks (base → bytes)
bool inside(const std::map<uintptr_t, size_t>& blocks, const void* p, size_t bytes) {
  auto u = uintptr_t(p);
  auto it = blocks.upper_bound(u);
  if (it == blocks.begin()) return false;
  --it;
  return u >= it->first && u + bytes <= it->first + it->second;
}
bool on_device(const void* p, size_t bytes) {
  std::lock_guard<std::mutex> lock(mem_mu);
  return inside(allocs, p, bytes);
}
cudaError_t err(cudaError_t e) {
  if (e != cudaSuccess) last_error = e;
  return e;
}
bool copy_ok(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  bool d_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  bool s_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (kind == cudaMemcpyDefault) return true;
  return (!d_dev || on_device(dst, bytes)) && (!s_dev || on_device(src, bytes));
}
}  // namespace

size_t bytes_in_use() {
  std::lock_guard<std::mutex> lock(mem_mu);
  return in_use;
}

}  // namespace cuemu

// ---- streams: queues of operations, run in order when something waits for them ----
struct CUstream_st {
  std::deque<std::function<void()>> q;
  uint64_t queued = 0, done = 0;  // operations ever queued / run
};
struct CUevent_st {
  CUstream_st* s = nullptr;  // where it was last recorded (null: never, complete)
  uint64_t seq = 0;          // complete when s->done reaches it
};

namespace cuemu {
namespace {
std::recursive_mutex stream_mu;   // one device's queues, shared by the host threads
CUstream_st legacy_stream;        // the legacy default stream (stream 0)
std::set<CUstream_st*> streams;   // created and not destroyed
std::map<uintptr_t, size_t> pinned_size;  // page-locked host allocations: base → bytes
size_t pageable_async = 0;

CUstream_st* resolve(cudaStream_t s) { return s ? s : &legacy_stream; }
// runs s's queued operations until `upto` of them have run
void drain(CUstream_st* s, uint64_t upto) {
  std::lock_guard<std::recursive_mutex> lock(stream_mu);
  while (s->done < upto && !s->q.empty()) {
    std::function<void()> op = std::move(s->q.front());
    s->q.pop_front();
    op();
    s->done++;
  }
}
void drain_all() {
  std::lock_guard<std::recursive_mutex> lock(stream_mu);
  for (bool more = true; more;) {
    drain(&legacy_stream, legacy_stream.queued);
    more = false;
    for (CUstream_st* s : streams) {
      if (s->done < s->queued) more = true;
      drain(s, s->queued);
    }
  }
}
// true when [p, p+bytes) lies inside one page-locked host allocation
bool is_pinned(const void* p, size_t bytes) {
  std::lock_guard<std::recursive_mutex> lock(stream_mu);
  return inside(pinned_size, p, bytes);
}
}  // namespace

void enqueue(cudaStream_t s, std::function<void()> op) {
  std::lock_guard<std::recursive_mutex> lock(stream_mu);
  CUstream_st* st = resolve(s);
  if (st != &legacy_stream && !streams.count(st)) {
    std::fprintf(stderr, "cuemu: work queued on a stream that does not exist (destroyed?)\n");
    std::abort();
  }
  st->q.push_back(std::move(op));
  st->queued++;
}
void enqueue_default(std::function<void()> op) { enqueue(nullptr, std::move(op)); }
size_t pageable_async_copies() {
  std::lock_guard<std::recursive_mutex> lock(stream_mu);
  return pageable_async;
}

}  // namespace cuemu

using namespace cuemu;

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned flags) {
  if (!(flags & cudaStreamNonBlocking)) {
    std::fprintf(stderr, "cuemu: cudaStreamCreateWithFlags without cudaStreamNonBlocking (blocking streams are not emulated)\n");
    std::abort();
  }
  std::lock_guard<std::recursive_mutex> lock(stream_mu);
  *s = new CUstream_st;
  streams.insert(*s);
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  std::lock_guard<std::recursive_mutex> lock(stream_mu);
  if (!s || !streams.count(s)) return err(cudaErrorInvalidValue);
  drain(s, s->queued);  // queued work still completes
  streams.erase(s);
  delete s;
  return cudaSuccess;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned) {
  *e = new CUevent_st;
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete e;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
  if (!e) return err(cudaErrorInvalidValue);
  std::lock_guard<std::recursive_mutex> lock(stream_mu);
  e->s = resolve(s);
  e->seq = e->s->queued;
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  if (!e) return err(cudaErrorInvalidValue);
  if (e->s) drain(e->s, e->seq);
  return cudaSuccess;
}
cudaError_t cudaEventQuery(cudaEvent_t e) {
  if (!e) return err(cudaErrorInvalidValue);
  std::lock_guard<std::recursive_mutex> lock(stream_mu);
  if (!e->s || e->s->done >= e->seq) return cudaSuccess;
  drain(e->s, e->s->done + 1);  // not yet; one more operation runs, so a polling loop ends
  return cudaErrorNotReady;
}
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned) {
  if (!e) return err(cudaErrorInvalidValue);
  std::lock_guard<std::recursive_mutex> lock(stream_mu);
  if (!e->s) return cudaSuccess;
  enqueue(s, [src = e->s, seq = e->seq]() { drain(src, seq); });  // the wait as the stream reaches it
  return cudaSuccess;
}
cudaError_t cudaHostAlloc(void** p, size_t bytes, unsigned) {
  void* m = nullptr;
  if (bytes == 0 || posix_memalign(&m, 4096, bytes) != 0 || !m) {
    *p = nullptr;
    return err(cudaErrorMemoryAllocation);
  }
  std::memset(m, 0xff, bytes);
  std::lock_guard<std::recursive_mutex> lock(stream_mu);
  pinned_size[uintptr_t(m)] = bytes;
  *p = m;
  return cudaSuccess;
}
cudaError_t cudaMallocHost(void** p, size_t bytes) { return cudaHostAlloc(p, bytes, cudaHostAllocDefault); }
cudaError_t cudaFreeHost(void* p) {
  if (!p) return cudaSuccess;
  drain_all();  // as CUDA: freeing page-locked memory synchronises the device
  std::lock_guard<std::recursive_mutex> lock(stream_mu);
  auto it = pinned_size.find(uintptr_t(p));
  if (it == pinned_size.end()) return err(cudaErrorInvalidValue);
  pinned_size.erase(it);
  std::free(p);
  return cudaSuccess;
}

cudaError_t cudaGetDeviceCount(int* n) {
  *n = device_count();
  return *n > 0 ? cudaSuccess : err(cudaErrorNoDevice);
}
cudaError_t cudaGetDevice(int* d) {
  *d = current_device;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int d) {
  if (d < 0 || d >= device_count()) return err(cudaErrorInvalidDevice);
  current_device = d;
  return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int d) {
  if (d < 0 || d >= device_count()) return err(cudaErrorInvalidDevice);
  std::memset(p, 0, sizeof(*p));
  std::snprintf(p->name, sizeof(p->name), "Tailor CUDA emulator (CPU)");
  p->totalGlobalMem = capacity();
  p->major = cc() / 10;
  p->minor = cc() % 10;
  p->multiProcessorCount = 1;
  p->sharedMemPerBlock = 48 * 1024;
  p->maxThreadsPerBlock = 1024;
  return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr a, int d) {
  if (d < 0 || d >= device_count()) return err(cudaErrorInvalidDevice);
  switch (a) {
    case cudaDevAttrComputeCapabilityMajor: *v = cc() / 10; return cudaSuccess;
    case cudaDevAttrComputeCapabilityMinor: *v = cc() % 10; return cudaSuccess;
    case cudaDevAttrMultiProcessorCount: *v = 1; return cudaSuccess;
  }
  return err(cudaErrorInvalidValue);
}
cudaError_t cudaDriverGetVersion(int* v) {
  *v = 13000;
  return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int* v) {
  *v = 13000;
  return cudaSuccess;
}
cudaError_t cudaMalloc(void** p, size_t bytes) {
  std::lock_guard<std::mutex> lock(mem_mu);
  size_t rounded = (bytes + 255) / 256 * 256;
  if (rounded == 0 || in_use + rounded > capacity()) {
    *p = nullptr;
    return err(rounded == 0 ? cudaErrorInvalidValue : cudaErrorMemoryAllocation);
  }
  // exactly `bytes` (256-aligned like cudaMalloc; the accounting counts the rounded size), so that under
  // AddressSanitizer a kernel reading one element past a buffer is caught
  void* m = nullptr;
  if (posix_memalign(&m, 256, bytes) != 0 || !m) return err(cudaErrorMemoryAllocation);
  std::memset(m, 0xff, bytes);  // NaN floats: a read of memory nobody wrote shows in the results
  allocs[uintptr_t(m)] = bytes;
  in_use += rounded;
  *p = m;
  return cudaSuccess;
}
cudaError_t cudaFree(void* p) {
  if (!p) return cudaSuccess;
  drain_all();  // as CUDA: cudaFree synchronises the device
  std::lock_guard<std::mutex> lock(mem_mu);
  auto it = allocs.find(uintptr_t(p));
  if (it == allocs.end()) return err(cudaErrorInvalidValue);
  in_use -= (it->second + 255) / 256 * 256;
  allocs.erase(it);
  std::free(p);
  return cudaSuccess;
}
// a synchronous copy runs after the legacy default stream's queued work (not a non-blocking stream's)
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (!copy_ok(dst, src, bytes, kind)) return err(cudaErrorInvalidValue);
  drain(&legacy_stream, legacy_stream.queued);
  std::memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s) {
  if (!copy_ok(dst, src, bytes, kind)) return err(cudaErrorInvalidValue);
  const void* host = kind == cudaMemcpyHostToDevice ? src : kind == cudaMemcpyDeviceToHost ? dst : nullptr;
  std::lock_guard<std::recursive_mutex> lock(stream_mu);
  if (host && !is_pinned(host, bytes)) {
    // pageable: CUDA stages it, so the call returns with the copy done (D2H) or the source read (H2D)
    pageable_async++;
    CUstream_st* st = resolve(s);
    drain(st, st->queued);
    std::memmove(dst, src, bytes);
    return cudaSuccess;
  }
  enqueue(s, [=]() { std::memmove(dst, src, bytes); });
  return cudaSuccess;
}
cudaError_t cudaMemset(void* p, int value, size_t bytes) { return cudaMemsetAsync(p, value, bytes, nullptr); }
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t s) {
  if (!on_device(p, bytes)) return err(cudaErrorInvalidValue);
  enqueue(s, [=]() { std::memset(p, value, bytes); });
  return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t* free_b, size_t* total_b) {
  std::lock_guard<std::mutex> lock(mem_mu);
  *total_b = capacity();
  *free_b = in_use < capacity() ? capacity() - in_use : 0;  // (the capacity may have been lowered since)
  return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize() {
  drain_all();
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
  CUstream_st* st = resolve(s);
  drain(st, st->queued);
  return cudaSuccess;
}
cudaError_t cudaGetLastError() {
  cudaError_t e = last_error;
  last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return last_error; }
const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInsufficientDriver: return "cudaErrorInsufficientDriver";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorNotReady: return "cudaErrorNotReady";
  }
  return "cudaErrorUnknown";
}
const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInsufficientDriver: return "CUDA driver version is insufficient for CUDA runtime version";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorNotReady: return "device not ready";
  }
  return "unknown error";
}
