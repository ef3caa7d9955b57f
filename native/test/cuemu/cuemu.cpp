// cuemu.cpp — the CUDA emulator's kernel scheduler (see cuemu.h; the runtime API is cuemu_runtime.cpp). A launch runs its blocks one
// after another on the calling thread; a block's threads are ucontext fibers on guarded stacks, switched
// round-robin whenever one waits at a barrier. Barriers are strict: __syncthreads completes when every
// thread of the block arrives and a warp collective when all 32 lanes do (a thread that returned early
// never arrives, which the GPU may forgive but CUDA leaves undefined), else the launch aborts (on x86-64 by a six-register stack switch, elsewhere by
// swapcontext, which costs a system call per switch).
#include <sys/mman.h>
#include <ucontext.h>

#include <cstdio>
#include <cstdlib>
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

// Under ThreadSanitizer (CUEMU_TSAN: the kernels are compiled with -fsanitize=thread, this file without it,
// so the scheduler's own bookkeeping is invisible) each CUDA thread is a TSan fiber, switched without
// synchronisation, and the only happens-before edges are the ones CUDA gives: a launch orders the host's
// earlier work before the kernel, __syncthreads orders a block's threads, __syncwarp a warp's lanes, and
// the kernel's end orders it before the host's next work. Two threads touching the same byte between two
// barriers, one of them writing, is then a data race report, as compute-sanitizer's racecheck gives on a
// GPU. Warp shuffles exchange values but order no memory (CUDA documents no memory ordering for them).
// Blocks are not ordered among themselves either, as on the GPU, so two blocks of one launch writing the
// same global word without atomics is a report too (a `+=` that the emulator's one-block-at-a-time run
// adds up correctly). For that, blocks run on four sets of fibers and stacks (block k and k + 1 never share
// one, blocks further apart now and then: next_fiber_set), and shared memory, which every block reuses at
// the same addresses, is announced as freed and allocated again before each block, so that ThreadSanitizer
// forgets the earlier blocks' accesses to it (its Java heap entry points are the ones that reset a range
// without touching the memory; AnnotateNewMemory is a no-op in libtsan).
#if defined(CUEMU_TSAN)
#include <link.h>
#include <sanitizer/tsan_interface.h>
extern "C" {
void __tsan_java_init(unsigned long heap_begin, unsigned long heap_size);
void __tsan_java_alloc(unsigned long ptr, unsigned long size);
void __tsan_java_free(unsigned long ptr, unsigned long size);
}
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
  void* tsan = nullptr;                // (TSan) its fiber context
  dim3 tid;
  bool done = false;
  unsigned char slot[16];  // this lane's value in a warp exchange
  // its cp.async copies in flight (cuda_pipeline_primitives.h): those not yet committed, and the committed
  // groups not yet waited for, oldest first
  std::vector<AsyncCopy> async_open;
  std::vector<std::vector<AsyncCopy>> async_groups;
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
  void* sched_tsan = nullptr;  // (TSan) the scheduler's context: the host thread's
  // (TSan) the block's synchronisation objects, fresh per block: [0, 2) the block barrier by generation
  // parity, then two per warp
  std::vector<char> sync;
  // (TSan) the launch's: the host's work before the kernel ([0]), the kernel's before the host's next ([1])
  char launch_sync[2];
  uint64_t ordinal = 0;  // blocks run so far
  int set = 0;           // the set of fibers and stacks the current block runs on (see next_fiber_set)
};

// Under ThreadSanitizer blocks run on kSets sets of fibers and stacks (see the top): two blocks on one set are
// one TSan thread per CUDA thread index, so a race between them goes unseen. A block never takes its
// predecessor's set, and otherwise a set drawn from a hash of its ordinal, so that no distance between blocks
// always lands on one set: a race that repeats across a grid (blocks s apart for every b) shows in the pairs
// that land on two sets. Elsewhere there is one set.
#ifdef CUEMU_TSAN
constexpr int kSets = 4;
#else
constexpr int kSets = 1;
#endif
int next_fiber_set(uint64_t ordinal, int prev) {
  uint64_t z = ordinal * 0x9E3779B97F4A7C15ull;  // splitmix64's finaliser
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  constexpr uint64_t others = kSets > 1 ? kSets - 1 : 1;  // the sets a block may take: all but its predecessor's (one set: 0)
  return int((uint64_t(prev) + 1 + z % others) % uint64_t(kSets));
}

thread_local Block* cur = nullptr;
thread_local std::vector<char*> stacks[kSets];  // [set][thread index], reused across launches on this host thread
#ifdef CUEMU_TSAN
// TSan's fiber contexts, one per (set, thread index), reused likewise (creating one maps memory)
thread_local std::vector<void*> tsan_fibers[kSets];
void* tsan_fiber_at(int set, size_t i) {
  while (tsan_fibers[set].size() <= i) tsan_fibers[set].push_back(__tsan_create_fiber(0));
  return tsan_fibers[set][i];
}

// the TLS block of the module that holds this file's thread_locals, and so the kernels' __shared__ arrays
// (the emulator is linked into the module with the kernels)
struct Range {
  uintptr_t lo = 0, hi = 0;
};
Range shared_memory_range() {
  Range r;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) -> int {
        if (!info->dlpi_tls_data) return 0;
        for (int i = 0; i < info->dlpi_phnum; i++) {
          if (info->dlpi_phdr[i].p_type != PT_TLS) continue;
          const uintptr_t lo = uintptr_t(info->dlpi_tls_data), hi = lo + info->dlpi_phdr[i].p_memsz, me = uintptr_t(&threadIdx);
          if (me < lo || me >= hi) continue;
          *static_cast<Range*>(data) = Range{lo, hi};
          return 1;
        }
        return 0;
      },
      &r);
  if (!r.lo) {
    std::fprintf(stderr, "cuemu: cannot find the thread-local block that holds shared memory (race checks need it)\n");
    std::abort();
  }
  r.lo &= ~uintptr_t(7);  // (ThreadSanitizer's 8-byte cells)
  r.hi = (r.hi + 7) & ~uintptr_t(7);
  __tsan_java_init(r.lo, r.hi - r.lo);
  return r;
}

// shared memory as new: no access before this point is remembered
void forget_shared_memory(const Range& r) {
  __tsan_java_free(r.lo, r.hi - r.lo);
  __tsan_java_alloc(r.lo, r.hi - r.lo);
}
#endif

char* stack_at(int set, int i) {
  std::vector<char*>& pool = stacks[set];
  while (int(pool.size()) <= i) {
    void* m = mmap(nullptr, kStack + kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
      std::fprintf(stderr, "cuemu: cannot map fiber stacks\n");
      std::abort();
    }
    mprotect(m, kPage, PROT_NONE);  // overflow faults instead of corrupting the neighbour
    pool.push_back(static_cast<char*>(m) + kPage);
  }
  return pool[size_t(i)];
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

// TSan: switch to fiber `to` (no happens-before: the barriers below give the only edges), publish this
// thread's accesses on sync object `a`, or take every access published there
inline void tsan_switch(void* to) {
#ifdef CUEMU_TSAN
  __tsan_switch_to_fiber(to, __tsan_switch_to_fiber_no_sync);
#endif
}
inline void tsan_release(void* a) {
#ifdef CUEMU_TSAN
  __tsan_release(a);
#endif
}
inline void tsan_acquire(void* a) {
#ifdef CUEMU_TSAN
  __tsan_acquire(a);
#endif
}

void fiber_main() {
  Block* b = cur;
  asan_arrive(nullptr, &b->sched_bottom, &b->sched_size);  // first arrival: learn the scheduler's stack
  tsan_acquire(&b->launch_sync[0]);  // the host's work before the kernel's
  b->entry(b->arg);
  {
    const Fiber& f = b->fibers[size_t(b->current)];
    if (!f.async_open.empty() || !f.async_groups.empty()) {  // their data would never land: a missing __pipeline_wait_prior
      std::fprintf(stderr, "cuemu: kernel %s, block (%u,%u,%u) thread (%u,%u,%u) returned with asynchronous copies not waited for\n", b->name,
                   blockIdx.x, blockIdx.y, blockIdx.z, threadIdx.x, threadIdx.y, threadIdx.z);
      std::abort();
    }
  }
  b->fibers[size_t(b->current)].done = true;
  tsan_release(&b->launch_sync[1]);  // this thread's work before the host's next
  tsan_switch(b->sched_tsan);
#ifdef CUEMU_FAST_SWITCH
  asan_leave(nullptr, b->sched_bottom, b->sched_size);  // this stack is finished
  cuemu_switch(&b->fibers[size_t(b->current)].sp, b->sched_sp);
  __builtin_unreachable();
#endif
}  // (swapcontext) returns to uc_link: the scheduler

void yield() {
  Block* b = cur;
  Fiber& f = b->fibers[size_t(b->current)];
  tsan_switch(b->sched_tsan);
#ifdef CUEMU_FAST_SWITCH
  asan_leave(&f.fake, b->sched_bottom, b->sched_size);
  cuemu_switch(&f.sp, b->sched_sp);
  asan_arrive(f.fake, nullptr, nullptr);
#else
  swapcontext(&f.ctx, &b->sched);
#endif
}

// a fresh fiber for thread i of the block (f.tid set) that starts in fiber_main, on the stack (and, under
// ThreadSanitizer, the fiber context) of the block's set
void start_fiber(Block& b, Fiber& f, int i) {
  const int set = b.set;
  char* const stack = stack_at(set, i);
#ifdef CUEMU_TSAN
  f.tsan = tsan_fiber_at(set, size_t(i));
  char name[160];  // what a race report calls this thread
  std::snprintf(name, sizeof name, "%s block (%u,%u,%u) thread (%u,%u,%u)", b.name, blockIdx.x, blockIdx.y, blockIdx.z, f.tid.x, f.tid.y, f.tid.z);
  __tsan_set_fiber_name(f.tsan, name);
#endif
#ifdef CUEMU_FAST_SWITCH
  // from the top: a zero return address for fiber_main's frame, fiber_main (cuemu_switch's ret), six registers
  auto* top = reinterpret_cast<uintptr_t*>(stack + kStack);
  top[-1] = 0;
  top[-2] = reinterpret_cast<uintptr_t>(&fiber_main);
  for (int r = 3; r <= 8; r++) top[-r] = 0;
  f.sp = top - 8;
  f.stack_bottom = stack;
#else
  getcontext(&f.ctx);
  f.ctx.uc_stack.ss_sp = stack;
  f.ctx.uc_stack.ss_size = kStack;
  f.ctx.uc_link = &b.sched;
  makecontext(&f.ctx, fiber_main, 0);
#endif
}

void resume(Block& b, Fiber& f) {
  tsan_switch(f.tsan);
#ifdef CUEMU_FAST_SWITCH
  asan_leave(&b.sched_fake, f.stack_bottom, kStack);
  cuemu_switch(&b.sched_sp, f.sp);
  asan_arrive(b.sched_fake, nullptr, nullptr);
#else
  swapcontext(&b.sched, &f.ctx);
#endif
}

}  // namespace

thread_local cudaError_t last_error = cudaSuccess;

int lane() { return cur->current % 32; }

void async_issue(const AsyncCopy& c) { cur->fibers[size_t(cur->current)].async_open.push_back(c); }

void async_commit() {
  Fiber& f = cur->fibers[size_t(cur->current)];
  f.async_groups.push_back(std::move(f.async_open));
  f.async_open.clear();
}

bool async_due(size_t prior, AsyncCopy* c) {
  Fiber& f = cur->fibers[size_t(cur->current)];
  while (f.async_groups.size() > prior) {
    std::vector<AsyncCopy>& g = f.async_groups.front();
    if (!g.empty()) {
      *c = g.front();
      g.erase(g.begin());
      return true;
    }
    f.async_groups.erase(f.async_groups.begin());
  }
  return false;
}

void check_aligned(const void* p, size_t bytes, const char* what) {
  if (reinterpret_cast<uintptr_t>(p) % bytes == 0) return;
  std::fprintf(stderr, "cuemu: %s: address %p is not %zu-byte aligned\n", what, p, bytes);
  trap();
}

void trap() {
  std::fprintf(stderr, "cuemu: __trap() in kernel %s, block (%u,%u,%u) thread (%u,%u,%u)\n", cur ? cur->name : "?", blockIdx.x, blockIdx.y,
               blockIdx.z, threadIdx.x, threadIdx.y, threadIdx.z);
  std::abort();
}

void syncthreads() {
  Block& b = *cur;
  b.progress = true;
  const unsigned gen = b.bar_gen;
  char* order = &b.sync[gen & 1];  // (parity: a thread can be one barrier ahead of the slowest, not two)
  tsan_release(order);
  if (++b.bar_arrived >= b.n) {  // every thread of the block: one that has exited never arrives
    b.bar_arrived = 0;
    b.bar_gen++;
  } else {
    while (b.bar_gen == gen) yield();
  }
  tsan_acquire(order);
}

// a warp barrier; order_memory: whether it orders the lanes' memory accesses (__syncwarp) or only meets
// (a shuffle)
static void warp_barrier(bool order_memory) {
  Block& b = *cur;
  const int w = b.current / 32;
  b.progress = true;
  const unsigned gen = b.warp_gen[size_t(w)];
  char* order = &b.sync[2 + 2 * size_t(w) + (gen & 1)];
  if (order_memory) tsan_release(order);
  if (++b.warp_arrived[size_t(w)] >= b.warp_lanes[size_t(w)]) {
    b.warp_arrived[size_t(w)] = 0;
    b.warp_gen[size_t(w)]++;
  } else {
    while (b.warp_gen[size_t(w)] == gen) yield();
  }
  if (order_memory) tsan_acquire(order);
}

void syncwarp() { warp_barrier(true); }

// a byte copy the compiler cannot turn into a memcpy call (which ThreadSanitizer would see as this
// lane's access to another lane's slot)
static void copy_bytes(void* out, const void* in, size_t bytes) {
  auto* o = static_cast<volatile unsigned char*>(out);
  auto* i = static_cast<const volatile unsigned char*>(in);
  for (size_t k = 0; k < bytes; k++) o[k] = i[k];
}

void warp_exchange(const void* in, void* out, size_t bytes, int src_lane) {
  Block& b = *cur;
  const int me = b.current;
  copy_bytes(b.fibers[size_t(me)].slot, in, bytes);
  warp_barrier(false);
  const int src = (me / 32) * 32 + src_lane;
  if (src_lane < 0 || src_lane >= 32 || src >= b.n || b.fibers[size_t(src)].done)
    copy_bytes(out, in, bytes);  // an inactive lane: undefined on the GPU; own value here
  else
    copy_bytes(out, b.fibers[size_t(src)].slot, bytes);
  warp_barrier(false);  // nobody overwrites a slot before every lane has read
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

// CUEMU_LAUNCH_LOG=FILE: appends each kernel's name with each block size it is launched with, once per
// process ("name threads"). The emulator cannot see registers or shared memory per block; test/cuda.test.ts
// holds these block sizes against ptxas's counts for every architecture built, so a launch the hardware
// would refuse ("too many resources requested") shows before any GPU does.
void log_launch(const char* name, uint64_t nthreads) {
  static const char* path = std::getenv("CUEMU_LAUNCH_LOG");
  if (!path || !*path) return;
  static std::mutex mu;
  static std::set<std::string> seen;
  const std::string line = std::string(name) + " " + std::to_string(nthreads);
  std::lock_guard<std::mutex> lock(mu);
  if (!seen.insert(line).second) return;
  if (FILE* f = std::fopen(path, "a")) {
    std::fprintf(f, "%s\n", line.c_str());
    std::fclose(f);
  }
}

void run_kernel(dim3 grid, dim3 block, const char* name, void (*entry)(void*), void* arg) {
  const uint64_t nthreads = uint64_t(block.x) * block.y * block.z;
  log_launch(name, nthreads);
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
#ifdef CUEMU_TSAN
  b.sched_tsan = __tsan_get_current_fiber();
  static const Range smem = shared_memory_range();
#endif
  tsan_release(&b.launch_sync[0]);
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
        b.sync = std::vector<char>(2 + 2 * size_t(nwarps), 0);  // (the old objects are freed, their clocks with them)
        b.ordinal++;
        b.set = next_fiber_set(b.ordinal, b.set);
#ifdef CUEMU_TSAN
        forget_shared_memory(smem);  // this block's shared memory
#endif
        for (int i = 0; i < b.n; i++) {
          Fiber& f = b.fibers[size_t(i)];
          f.done = false;
          f.async_open.clear();
          f.async_groups.clear();
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
  tsan_acquire(&b.launch_sync[1]);
}

}  // namespace cuemu
