// cuemu.cpp — the CUDA emulator's scheduler and runtime (see cuemu.h). A launch runs its blocks one
// after another on the calling thread; a block's threads are ucontext fibers on guarded stacks, switched
// round-robin whenever one waits at a barrier. Barriers are strict: __syncthreads completes when every
// thread of the block arrives and a warp collective when all 32 lanes do (a thread that returned early
// never arrives, which the GPU may forgive but CUDA leaves undefined), else the launch aborts (on x86-64 by a six-register stack switch, elsewhere by
// swapcontext, which costs a system call per switch). Device memory is host memory from the allocator below,
// with the emulated device's capacity (TAILOR_CUEMU_MEMORY bytes, default 8 GiB) enforced so that
// out-of-memory paths can be tested; copies and memsets are bounds-checked against the allocations.
// Environment: TAILOR_CUEMU_CC (compute capability ×10, default 80), TAILOR_CUEMU_DEVICES (default 1).
#include <sys/mman.h>
#include <ucontext.h>

#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "cuemu.h"

// Under AddressSanitizer each stack switch is announced (start/finish_switch_fiber), so ASan knows which
// stack is live: device memory is host memory, so an ASan build of the emulator catches out-of-bounds
// accesses in kernels the way compute-sanitizer's memcheck does on a GPU
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define CUEMU_ASAN 1
#endif

// swapcontext "returns twice" to GCC, which then warns that locals may be clobbered; it saves and restores
// every register, so they are not
#pragma GCC diagnostic ignored "-Wclobbered"

#if defined(__x86_64__)
// saves the callee-saved registers on the current stack, stores its pointer in *from, and continues on
// the stack `to` (the System V ABI leaves every other register to the caller)
extern "C" void cuemu_switch(void** from, void* to);
asm(R"(
  .text
  .globl cuemu_switch
  .type cuemu_switch, @function
cuemu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size cuemu_switch, .-cuemu_switch
)");
#define CUEMU_FAST_SWITCH 1
#endif

thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;

namespace cuemu {
namespace {

constexpr size_t kStack = 256 * 1024;  // per fiber, with a guard page below
constexpr size_t kPage = 4096;

struct Fiber {
  ucontext_t ctx;  // (swapcontext)
  void* sp;        // its saved stack pointer (fast switch)
  const void* stack_bottom = nullptr;  // (ASan)
  void* fake = nullptr;                // (ASan) its fake stack while switched out
  dim3 tid;
  bool done = false;
  unsigned char slot[16];  // this lane's value in a warp exchange
};

struct Block {
  const char* name;
  void (*entry)(void*);
  void* arg;
  int n = 0, live = 0, current = 0;
  std::vector<Fiber> fibers;
  ucontext_t sched;
  void* sched_sp;
  const void* sched_bottom = nullptr;  // (ASan) the scheduler's stack
  size_t sched_size = 0;
  void* sched_fake = nullptr;
  unsigned bar_gen = 0;
  int bar_arrived = 0;
  std::vector<unsigned> warp_gen;
  std::vector<int> warp_arrived, warp_lanes;
  bool progress = false;
};

thread_local Block* cur = nullptr;
thread_local std::vector<char*> stacks;  // reused across launches on this host thread

char* stack_at(int i) {
  while (int(stacks.size()) <= i) {
    void* m = mmap(nullptr, kStack + kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
      std::fprintf(stderr, "cuemu: cannot map fiber stacks\n");
      std::abort();
    }
    mprotect(m, kPage, PROT_NONE);  // overflow faults instead of corrupting the neighbour
    stacks.push_back(static_cast<char*>(m) + kPage);
  }
  return stacks[size_t(i)];
}

// ASan: announce a switch to the stack [bottom, bottom+size) (save = where this stack's fake stack goes;
// null when this stack is left for good), and confirm arrival on the new one
inline void asan_leave(void** save, const void* bottom, size_t size) {
#ifdef CUEMU_ASAN
  __sanitizer_start_switch_fiber(save, bottom, size);
#endif
}
inline void asan_arrive(void* fake, const void** old_bottom, size_t* old_size) {
#ifdef CUEMU_ASAN
  __sanitizer_finish_switch_fiber(fake, old_bottom, old_size);
#endif
}

void fiber_main() {
  Block* b = cur;
  asan_arrive(nullptr, &b->sched_bottom, &b->sched_size);  // first arrival: learn the scheduler's stack
  b->entry(b->arg);
  b->fibers[size_t(b->current)].done = true;
#ifdef CUEMU_FAST_SWITCH
  asan_leave(nullptr, b->sched_bottom, b->sched_size);  // this stack is finished
  cuemu_switch(&b->fibers[size_t(b->current)].sp, b->sched_sp);
  __builtin_unreachable();
#endif
}  // (swapcontext) returns to uc_link: the scheduler

void yield() {
  Block* b = cur;
  Fiber& f = b->fibers[size_t(b->current)];
#ifdef CUEMU_FAST_SWITCH
  asan_leave(&f.fake, b->sched_bottom, b->sched_size);
  cuemu_switch(&f.sp, b->sched_sp);
  asan_arrive(f.fake, nullptr, nullptr);
#else
  swapcontext(&f.ctx, &b->sched);
#endif
}

// a fresh fiber on stack i that starts in fiber_main
void start_fiber(Block& b, Fiber& f, int i) {
#ifdef CUEMU_FAST_SWITCH
  // from the top: a zero return address for fiber_main's frame, fiber_main (cuemu_switch's ret), six registers
  auto* top = reinterpret_cast<uintptr_t*>(stack_at(i) + kStack);
  top[-1] = 0;
  top[-2] = reinterpret_cast<uintptr_t>(&fiber_main);
  for (int r = 3; r <= 8; r++) top[-r] = 0;
  f.sp = top - 8;
  f.stack_bottom = stack_at(i);
#else
  getcontext(&f.ctx);
  f.ctx.uc_stack.ss_sp = stack_at(i);
  f.ctx.uc_stack.ss_size = kStack;
  f.ctx.uc_link = &b.sched;
  makecontext(&f.ctx, fiber_main, 0);
#endif
}

void resume(Block& b, Fiber& f) {
#ifdef CUEMU_FAST_SWITCH
  asan_leave(&b.sched_fake, f.stack_bottom, kStack);
  cuemu_switch(&b.sched_sp, f.sp);
  asan_arrive(b.sched_fake, nullptr, nullptr);
#else
  swapcontext(&b.sched, &f.ctx);
#endif
}

thread_local cudaError_t last_error = cudaSuccess;

}  // namespace

int lane() { return cur->current % 32; }

void trap() {
  std::fprintf(stderr, "cuemu: __trap() in kernel %s, block (%u,%u,%u) thread (%u,%u,%u)\n", cur ? cur->name : "?", blockIdx.x, blockIdx.y,
               blockIdx.z, threadIdx.x, threadIdx.y, threadIdx.z);
  std::abort();
}

void syncthreads() {
  Block& b = *cur;
  b.progress = true;
  const unsigned gen = b.bar_gen;
  if (++b.bar_arrived >= b.n) {  // every thread of the block: one that has exited never arrives
    b.bar_arrived = 0;
    b.bar_gen++;
    return;
  }
  while (b.bar_gen == gen) yield();
}

void syncwarp() {
  Block& b = *cur;
  const int w = b.current / 32;
  b.progress = true;
  const unsigned gen = b.warp_gen[size_t(w)];
  if (++b.warp_arrived[size_t(w)] >= b.warp_lanes[size_t(w)]) {
    b.warp_arrived[size_t(w)] = 0;
    b.warp_gen[size_t(w)]++;
    return;
  }
  while (b.warp_gen[size_t(w)] == gen) yield();
}

void warp_exchange(const void* in, void* out, size_t bytes, int src_lane) {
  Block& b = *cur;
  const int me = b.current;
  std::memcpy(b.fibers[size_t(me)].slot, in, bytes);
  syncwarp();
  const int src = (me / 32) * 32 + src_lane;
  if (src_lane < 0 || src_lane >= 32 || src >= b.n || b.fibers[size_t(src)].done)
    std::memcpy(out, in, bytes);  // an inactive lane: undefined on the GPU; own value here
  else
    std::memcpy(out, b.fibers[size_t(src)].slot, bytes);
  syncwarp();  // nobody overwrites a slot before every lane has read
}

bool launch_config_ok(dim3 grid, dim3 block) {
  const uint64_t nthreads = uint64_t(block.x) * block.y * block.z;
  if (nthreads == 0 || nthreads > 1024 || block.z > 64 || grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 2147483647u || grid.y > 65535 ||
      grid.z > 65535) {
    last_error = cudaErrorInvalidConfiguration;
    return false;
  }
  return true;
}

void run_kernel(dim3 grid, dim3 block, const char* name, void (*entry)(void*), void* arg) {
  const uint64_t nthreads = uint64_t(block.x) * block.y * block.z;
  if (cur) {
    std::fprintf(stderr, "cuemu: kernel %s launched from inside kernel %s\n", name, cur->name);
    std::abort();
  }
  Block b;
  b.name = name;
  b.entry = entry;
  b.arg = arg;
  b.n = int(nthreads);
  b.fibers.resize(nthreads);
  const int nwarps = (b.n + 31) / 32;
  gridDim = grid;
  blockDim = block;
  for (unsigned bz = 0; bz < grid.z; bz++)
    for (unsigned by = 0; by < grid.y; by++)
      for (unsigned bx = 0; bx < grid.x; bx++) {
        blockIdx = dim3(bx, by, bz);
        b.live = b.n;
        b.bar_gen = 0;
        b.bar_arrived = 0;
        b.warp_gen.assign(size_t(nwarps), 0);
        b.warp_arrived.assign(size_t(nwarps), 0);
        b.warp_lanes.assign(size_t(nwarps), 32);
        if (b.n % 32) b.warp_lanes.back() = b.n % 32;
        for (int i = 0; i < b.n; i++) {
          Fiber& f = b.fibers[size_t(i)];
          f.done = false;
          f.tid = dim3(unsigned(i) % block.x, (unsigned(i) / block.x) % block.y, unsigned(i) / (block.x * block.y));
          start_fiber(b, f, i);
        }
        cur = &b;
        while (b.live > 0) {
          b.progress = false;
          for (int i = 0; i < b.n; i++) {
            Fiber& f = b.fibers[size_t(i)];
            if (f.done) continue;
            b.current = i;
            threadIdx = f.tid;
            resume(b, f);
            if (f.done) {
              b.live--;
              b.progress = true;
            }
          }
          if (b.live > 0 && !b.progress) {
            std::fprintf(stderr,
                         "cuemu: deadlock in kernel %s, block (%u,%u,%u): %d threads wait at barriers that can never complete "
                         "(__syncthreads or a warp collective in divergent code, or after some threads returned)\n",
                         name, bx, by, bz, b.live);
            std::abort();
          }
        }
        cur = nullptr;
      }
}

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
  *free_b = capacity() - in_use;
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
