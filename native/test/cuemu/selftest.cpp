// selftest.cpp — tailor_cuemu_selftest: the CUDA emulator's own semantics, so that a kernel passing on it
// means something: barriers order shared-memory writes before reads across a whole 1024-thread block,
// warp shuffles return the right lanes, atomics add up, launches with a bad configuration fail, copies
// outside an allocation and allocations beyond the device's capacity are refused, unwritten device
// memory reads as NaN, __syncthreads after an early return aborts with the kernel's name (in a child process),
// and so does a WMMA load from a pointer that is not 256-bit aligned (CUDA leaves it undefined), and a
// 16-byte vector load from an address that is not 16-byte aligned (a fault on a GPU); asynchronous copies
// (cp.async) land at the wait, read as poison before it, and a thread that returns without waiting aborts.
// --race NAME runs one of the race demonstrations below alone: under the ThreadSanitizer build
// (TAILOR_TSAN) the racy ones must be reported and the ordered ones must not (test/cuda.test.ts).
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "common.cuh"  // load_vec16
#include "cuda_pipeline_primitives.h"
#include "cuda_runtime.h"
#include "mma.h"

namespace {

int failures = 0, checks = 0;
void expect(bool ok, const std::string& what) {
  checks++;
  if (!ok) failures++;
  std::printf("%-70s %s\n", what.c_str(), ok ? "ok" : "FAIL");
}

// runs launch (a kernel launch) in a child process and waits for the queued kernel: true when it aborted
// (the emulator's trap), as a fault or a deadlock ends the kernel on a GPU; the child's stderr is silenced
template <typename F>
bool aborts(F launch) {
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid == 0) {
    freopen("/dev/null", "w", stderr);
    launch();
    cudaDeviceSynchronize();  // the queued kernel runs here
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

// out[b] = Σ over the block of (threadIdx.x + 1) through a shared-memory tree (a barrier per level)
__global__ void tree_sum_kernel(int* out) {
  __shared__ int s[1024];
  const int t = int(threadIdx.x);
  s[t] = t + 1;
  __syncthreads();
  for (int half = int(blockDim.x) / 2; half > 0; half /= 2) {
    if (t < half) s[t] += s[t + half];
    __syncthreads();
  }
  if (t == 0) out[blockIdx.x] = s[0];
}

// xor[t] = lane of t ^ 5; down[t] = value of lane + 3 (own value past the end); sum[t] = Σ lanes by xor tree
__global__ void shuffle_kernel(int* xr, int* down, int* sum) {
  const int t = int(threadIdx.x), lane = t % 32;
  xr[t] = __shfl_xor_sync(0xffffffffu, lane, 5);
  down[t] = __shfl_down_sync(0xffffffffu, 100 + lane, 3);
  int v = lane;
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  sum[t] = v;
}

__global__ void atomic_kernel(float* acc) { atomicAdd(acc, 1.f); }

__global__ void add_one_kernel(float* x, int n) {
  for (int i = int(threadIdx.x); i < n; i += int(blockDim.x)) x[i] += 1.f;
}

__global__ void divergent_kernel(int* out) {
  if (threadIdx.x < 16) return;  // half the block returns before the barrier: undefined in CUDA
  __syncthreads();
  out[threadIdx.x] = 1;
}

// a WMMA load of a 16×16 bf16 tile of ones from shared memory `offset` elements in (0: aligned; 8: 16 bytes
// off, which CUDA forbids); out[0] = the fragment's first element
__global__ void wmma_load_kernel(int* out, int offset) {
  __shared__ __align__(32) uint16_t tile[16 * 16 + 8];
  for (int i = int(threadIdx.x); i < 16 * 16 + 8; i += 32) tile[i] = 0x3f80;  // bf16 1.0
  __syncwarp();
  nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, 16, 16, 16, __nv_bfloat16, nvcuda::wmma::row_major> a;
  nvcuda::wmma::load_matrix_sync(a, reinterpret_cast<const __nv_bfloat16*>(tile + offset), 16);
  if (threadIdx.x == 0) out[0] = int(a.x[0]);
}

// a 16-byte vector load (common.cuh's load_vec16) from shared memory `offset` bytes in (0: aligned; 2: not,
// which faults on a GPU); out[0] = the first byte loaded
__global__ void vec16_load_kernel(int* out, int offset) {
  __shared__ __align__(16) unsigned char buf[48];
  for (int i = 0; i < 48; i++) buf[i] = 1;
  const uint4 v = tailor::cuda::load_vec16(buf + offset);
  out[0] = int(v.x & 0xff);
}

// asynchronous copies (cp.async): each of 64 threads copies 16 bytes of src = buf + 256 (ints 4t..4t+3) to shared
// memory, thread 63 with its last 8 bytes zero-filled, then reads thread (t + 33) % 64's chunk into buf[4t..4t+3].
// kMode 0: the copying thread waits (__pipeline_wait_prior) before the barrier, as CUDA requires. 1: it waits
// only after a second barrier that follows every read, so every read sees what a GPU may leave there before
// the data lands (the emulator's poison). 2: it waits right after its own read, so the others' reads and its
// landing data are unordered (a race under ThreadSanitizer)
template <int kMode>
__global__ void async_copy_kernel(int* buf) {
  __shared__ __align__(16) int s[64 * 4];
  int* const out = buf;
  const int* const src = buf + 256;
  const int t = int(threadIdx.x);
  __pipeline_memcpy_async(s + 4 * t, src + 4 * t, 16, t == 63 ? 8 : 0);
  __pipeline_commit();
  if (kMode == 0) __pipeline_wait_prior(0);
  __syncthreads();
  const int n = (t + 33) % 64;
  for (int i = 0; i < 4; i++) out[4 * t + i] = s[4 * n + i];
  if (kMode == 1) __syncthreads();
  if (kMode != 0) __pipeline_wait_prior(0);
}
// a thread that returns with a copy it never waited for (its data might never land)
__global__ void async_unwaited_kernel(int* out, const int* src) {
  __shared__ __align__(16) int s[4];
  __pipeline_memcpy_async(s, src, 16);
  __pipeline_commit();
  out[0] = 1;
}

// ---- race demonstrations (--race NAME): each kernel with kOrdered = false has the race, with true the
// barrier or atomic that orders it ----
// a neighbour's shared-memory value, from the other warp, read after write
template <bool kOrdered>
__global__ void neighbour_kernel(int* out) {
  __shared__ int s[64];
  const int t = int(threadIdx.x);
  s[t] = t;
  if (kOrdered) __syncthreads();
  out[blockIdx.x * blockDim.x + t] = s[(t + 33) % 64];
}
// a tile refilled by the next iteration while others may still read it (write after read)
template <bool kOrdered>
__global__ void tile_reuse_kernel(int* out) {
  __shared__ int s[64];
  const int t = int(threadIdx.x);
  int acc = 0;
  for (int k = 0; k < 2; k++) {
    s[t] = k + t;
    __syncthreads();
    acc += s[63 - t];
    if (kOrdered) __syncthreads();
  }
  out[blockIdx.x * blockDim.x + t] = acc;
}
// lanes of one warp through shared memory: a shuffle meets the lanes but orders no memory, __syncwarp does
template <bool kOrdered>
__global__ void warp_pair_kernel(int* out) {
  __shared__ int s[32];
  const int t = int(threadIdx.x);
  s[t] = t;
  const int v = __shfl_xor_sync(0xffffffffu, t, 1);
  if (kOrdered) __syncwarp();
  out[blockIdx.x * blockDim.x + t] = s[t ^ 1] + v;
}
// every thread of a block writes the same global word
template <bool kOrdered>
__global__ void global_word_kernel(int* out) {
  if (kOrdered) atomicAdd(out, 1);
  else out[0] = int(threadIdx.x);
}
// two blocks adding into the same words: right on the emulator, which runs one block after another, lost
// updates on a GPU
template <bool kOrdered>
__global__ void blocks_add_kernel(int* out) {
  if (kOrdered) atomicAdd(out + threadIdx.x, 1);
  else out[threadIdx.x] += 1;
}

// blocks two apart adding into the same words, neighbours never: block b into row b % 2 (8 blocks: 0, 2, 4, 6
// share row 0, the odd ones row 1)
template <bool kOrdered>
__global__ void blocks_apart_kernel(int* out) {
  int* w = out + (blockIdx.x % 2) * blockDim.x + threadIdx.x;
  if (kOrdered) atomicAdd(w, 1);
  else *w += 1;
}

int run_race_demo(const std::string& name) {
  struct Demo { const char* name; void (*kernel)(int*); unsigned threads; unsigned blocks = 2; };
  const Demo demos[] = {{"no-barrier", neighbour_kernel<false>, 64},  {"barrier", neighbour_kernel<true>, 64},
                        {"tile-reuse", tile_reuse_kernel<false>, 64}, {"tile-reuse-ordered", tile_reuse_kernel<true>, 64},
                        {"warp-shuffle", warp_pair_kernel<false>, 32}, {"warp-syncwarp", warp_pair_kernel<true>, 32},
                        {"global", global_word_kernel<false>, 64},    {"atomic", global_word_kernel<true>, 64},
                        {"blocks", blocks_add_kernel<false>, 64},     {"blocks-atomic", blocks_add_kernel<true>, 64},
                        {"blocks-apart", blocks_apart_kernel<false>, 64, 8}, {"blocks-apart-atomic", blocks_apart_kernel<true>, 64, 8},
                        {"async-unwaited", async_copy_kernel<2>, 64, 1}, {"async-waited", async_copy_kernel<0>, 64, 1}};
  for (const Demo& d : demos) {
    if (name != d.name) continue;
    int* out = nullptr;
    cudaMalloc(reinterpret_cast<void**>(&out), 512 * sizeof(int));
    cudaMemset(out, 0, 512 * sizeof(int));
    TAILOR_LAUNCH(d.kernel, d.blocks, d.threads)(out);
    std::vector<int> h(128);
    cudaMemcpy(h.data(), out, h.size() * sizeof(int), cudaMemcpyDeviceToHost);
    cudaFree(out);
    std::printf("ran %s: out[0] = %d\n", d.name, h[0]);
    return 0;
  }
  std::fprintf(stderr, "unknown race demonstration %s\n", name.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "--race") return run_race_demo(argv[2]);
  int* d = nullptr;
  cudaMalloc(reinterpret_cast<void**>(&d), 4 * 1024 * sizeof(int));
  TAILOR_LAUNCH(tree_sum_kernel, 3, 1024)(d);
  std::vector<int> h(3);
  cudaMemcpy(h.data(), d, 3 * sizeof(int), cudaMemcpyDeviceToHost);
  expect(h[0] == 1024 * 1025 / 2 && h[1] == h[0] && h[2] == h[0], "barriers: shared-memory tree sum over 1024 threads, 3 blocks");

  int *xr = d, *dn = d + 1024, *sm = d + 2048;
  TAILOR_LAUNCH(shuffle_kernel, 1, 64)(xr, dn, sm);
  std::vector<int> a(64), b(64), c(64);
  cudaMemcpy(a.data(), xr, sizeof(int) * 64, cudaMemcpyDeviceToHost);
  cudaMemcpy(b.data(), dn, sizeof(int) * 64, cudaMemcpyDeviceToHost);
  cudaMemcpy(c.data(), sm, sizeof(int) * 64, cudaMemcpyDeviceToHost);
  bool ok_x = true, ok_d = true, ok_s = true;
  for (int t = 0; t < 64; t++) {
    int lane = t % 32;
    ok_x = ok_x && a[size_t(t)] == (lane ^ 5);
    ok_d = ok_d && b[size_t(t)] == 100 + (lane + 3 < 32 ? lane + 3 : lane);
    ok_s = ok_s && c[size_t(t)] == 31 * 32 / 2;
  }
  expect(ok_x, "__shfl_xor_sync returns lane ^ mask, per warp");
  expect(ok_d, "__shfl_down_sync returns lane + delta (own value past the warp)");
  expect(ok_s, "xor butterfly reduction gives every lane the warp's sum");

  float* f = nullptr;
  cudaMalloc(reinterpret_cast<void**>(&f), sizeof(float) * 4);
  float nanv = 0;
  cudaMemcpy(&nanv, f, sizeof(float), cudaMemcpyDeviceToHost);
  expect(std::isnan(nanv), "device memory nobody wrote reads as NaN");
  cudaMemset(f, 0, sizeof(float));
  TAILOR_LAUNCH(atomic_kernel, 7, 96)(f);
  float got = 0;
  cudaMemcpy(&got, f, sizeof(float), cudaMemcpyDeviceToHost);
  expect(got == 7 * 96, "atomicAdd from 672 threads");

  cudaGetLastError();
  TAILOR_LAUNCH(atomic_kernel, 1, 2048)(f);
  expect(cudaGetLastError() == cudaErrorInvalidConfiguration, "a block of 2048 threads is a launch error");
  TAILOR_LAUNCH(atomic_kernel, dim3(1, 70000), 32)(f);
  expect(cudaGetLastError() == cudaErrorInvalidConfiguration, "gridDim.y of 70000 is a launch error");

  float host[8] = {};
  expect(cudaMemcpy(f, host, sizeof(host), cudaMemcpyHostToDevice) == cudaErrorInvalidValue, "a copy past the end of an allocation is refused");
  expect(cudaMemcpy(host, host + 1, 4, cudaMemcpyDeviceToHost) == cudaErrorInvalidValue, "a host pointer passed as device memory is refused");
  size_t free_b = 0, total_b = 0;
  cudaMemGetInfo(&free_b, &total_b);
  void* big = nullptr;
  expect(cudaMalloc(&big, free_b + 1) == cudaErrorMemoryAllocation && big == nullptr, "an allocation beyond the free memory fails");
  cudaGetLastError();
  size_t before = cuemu::bytes_in_use();
  cudaFree(f);
  expect(cuemu::bytes_in_use() == before - 256, "freeing returns the allocation's bytes");

  // streams: queued work runs when waited for, in the order CUDA allows
  {
    float* dv = nullptr;
    cudaMalloc(reinterpret_cast<void**>(&dv), sizeof(float) * 64);
    float* pin = nullptr;
    cudaHostAlloc(reinterpret_cast<void**>(&pin), sizeof(float) * 64, cudaHostAllocDefault);
    cudaStream_t cs = nullptr;
    cudaStreamCreateWithFlags(&cs, cudaStreamNonBlocking);
    cudaEvent_t ev = nullptr;
    cudaEventCreateWithFlags(&ev, cudaEventDisableTiming);
    for (int i = 0; i < 64; i++) pin[i] = 1.f;
    cudaMemcpyAsync(dv, pin, sizeof(float) * 64, cudaMemcpyHostToDevice, cs);
    for (int i = 0; i < 64; i++) pin[i] = 5.f;  // before the copy ran: the copy reads this
    cudaEventRecord(ev, cs);
    cudaStreamWaitEvent(nullptr, ev);
    TAILOR_LAUNCH(add_one_kernel, 1, 32)(dv, 64);
    std::vector<float> back(64);
    cudaMemcpy(back.data(), dv, sizeof(float) * 64, cudaMemcpyDeviceToHost);
    expect(back[0] == 6.f && back[63] == 6.f, "an async copy from page-locked memory reads its source when it runs");
    TAILOR_LAUNCH(add_one_kernel, 1, 32)(dv, 64);  // queued on the default stream, not yet run
    cudaMemcpyAsync(pin, dv, sizeof(float) * 64, cudaMemcpyDeviceToHost, cs);  // no wait: may run before it
    cudaStreamSynchronize(cs);
    expect(pin[0] == 6.f, "a non-blocking stream does not wait for the default stream by itself");
    cudaDeviceSynchronize();
    const size_t before_pg = cuemu::pageable_async_copies();
    float host2[64];
    cudaMemcpyAsync(host2, dv, sizeof(float) * 64, cudaMemcpyDeviceToHost, cs);
    expect(host2[0] == 7.f && cuemu::pageable_async_copies() == before_pg + 1, "an async copy to pageable memory completes in the call (counted)");
    cudaEventDestroy(ev);
    cudaStreamDestroy(cs);
    cudaFreeHost(pin);
    cudaFree(dv);
  }

  expect(aborts([&] { TAILOR_LAUNCH(divergent_kernel, 1, 32)(d); }), "__syncthreads after some threads returned aborts (deadlock detected)");

  TAILOR_LAUNCH(wmma_load_kernel, 1, 32)(d, 0);
  int one = 0;
  cudaMemcpy(&one, d, sizeof(int), cudaMemcpyDeviceToHost);
  expect(one == 1, "a WMMA load from a 256-bit aligned pointer");
  expect(aborts([&] { TAILOR_LAUNCH(wmma_load_kernel, 1, 32)(d, 8); }), "a WMMA load from a pointer 16 bytes off 256-bit alignment aborts");

  TAILOR_LAUNCH(vec16_load_kernel, 1, 1)(d, 0);
  one = 0;
  cudaMemcpy(&one, d, sizeof(int), cudaMemcpyDeviceToHost);
  expect(one == 1, "a 16-byte vector load from a 16-byte aligned address");
  expect(aborts([&] { TAILOR_LAUNCH(vec16_load_kernel, 1, 1)(d, 2); }), "a 16-byte vector load from an address 2 bytes off alignment aborts");

  {  // asynchronous copies: the data lands at the wait, zero-filled where asked; before it, poison
    std::vector<int> src(256);
    for (int i = 0; i < 256; i++) src[size_t(i)] = 1000 + i;
    int* ds = d + 256;
    cudaMemcpy(ds, src.data(), src.size() * sizeof(int), cudaMemcpyHostToDevice);
    std::vector<int> got(256);
    TAILOR_LAUNCH(async_copy_kernel<0>, 1, 64)(d);
    cudaMemcpy(got.data(), d, got.size() * sizeof(int), cudaMemcpyDeviceToHost);
    bool right = true, poisoned = true;
    for (int t = 0; t < 64; t++)
      for (int i = 0; i < 4; i++) {
        const int n = (t + 33) % 64;
        right = right && got[size_t(4 * t + i)] == (n == 63 && i >= 2 ? 0 : 1000 + 4 * n + i);
      }
    expect(right, "asynchronous copies land by the wait, the zero-filled bytes as zeros");
    TAILOR_LAUNCH(async_copy_kernel<1>, 1, 64)(d);
    cudaMemcpy(got.data(), d, got.size() * sizeof(int), cudaMemcpyDeviceToHost);
    for (int i = 0; i < 256; i++) poisoned = poisoned && got[size_t(i)] == -1;  // 0xFF bytes
    expect(poisoned, "a read of an asynchronous copy's destination before its thread waits sees poison");
    expect(aborts([&] { TAILOR_LAUNCH(async_unwaited_kernel, 1, 1)(d, ds); }), "a thread returning with an asynchronous copy not waited for aborts");
  }
  cudaFree(d);

  std::printf("\n%d checks, %d failed\n", checks, failures);
  return failures ? 1 : 0;
}
