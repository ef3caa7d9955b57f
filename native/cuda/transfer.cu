// transfer.cu — the CUDA backend's large host↔device copies (see transfer.h). Ordering, all by events:
//   upload:      default ──start──▶ copy stream (dst may still be read by queued kernels)
//                copy stream ──end──▶ default (kernels queued after the upload see dst)
//                host waits used[i] before refilling staging buffer i (its DMA is done)
//   download:    default ──start──▶ copy stream (src is written by queued kernels);
//                host waits used[i] before reading staging buffer i
//   upload_bf16: copy of chunk c ──used[c%2]──▶ default (the rounding kernel reads stage c%2);
//                rounding of chunk c ──conv[c%2]──▶ copy stream (before chunk c+2 overwrites stage c%2)
// The CPU emulator (native/test/cuemu) runs queued work as late as CUDA allows, so a missing edge here
// shows there as wrong results.
#include "transfer.h"

#include <algorithm>
#include <cstring>

#include "common.cuh"
#include "kernels.h"

namespace tailor {
namespace cuda {

namespace {
cudaStream_t S(void* p) { return static_cast<cudaStream_t>(p); }
cudaEvent_t E(void* p) { return static_cast<cudaEvent_t>(p); }
}  // namespace

// the copy stream's next work runs after what is queued on the default stream now
void Transfer::join_default_stream() {
  check(cudaEventRecord(E(start_), nullptr), "cudaEventRecord");
  check(cudaStreamWaitEvent(S(stream_), E(start_), 0), "cudaStreamWaitEvent");
}

// the host waits until the copy stream is done with staging buffer b
void Transfer::wait_used(int b) {
  if (!pending_[b]) return;
  check(cudaEventSynchronize(E(used_[b])), "cudaEventSynchronize (staging copy)");
  pending_[b] = false;
}

Transfer::Transfer(size_t chunk_bytes) : chunk_(std::max<size_t>(chunk_bytes, 4096) / 4 * 4) {}

Transfer::~Transfer() {
  if (state_ != 1) return;
  cudaStreamSynchronize(S(stream_));
  for (int i = 0; i < 2; i++) {
    cudaFreeHost(host_[i]);
    cudaEventDestroy(E(used_[i]));
    cudaEventDestroy(E(conv_[i]));
  }
  cudaEventDestroy(E(start_));
  cudaEventDestroy(E(end_));
  cudaStreamDestroy(S(stream_));
}

bool Transfer::ready() {
  if (state_ != 0) return state_ == 1;
  state_ = -1;
  cudaStream_t s = nullptr;
  if (cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) != cudaSuccess) return cudaGetLastError(), false;
  stream_ = s;
  auto event = [](void*& e) {
    cudaEvent_t ev = nullptr;
    if (cudaEventCreateWithFlags(&ev, cudaEventDisableTiming) != cudaSuccess) return false;
    e = ev;
    return true;
  };
  bool ok = event(start_) && event(end_);
  for (int i = 0; i < 2 && ok; i++) ok = event(used_[i]) && event(conv_[i]) && cudaHostAlloc(&host_[i], chunk_, cudaHostAllocDefault) == cudaSuccess;
  if (ok) {
    state_ = 1;
    return true;
  }
  // page-locked memory (or a stream) refused: release what was made, and copy directly from now on
  cudaGetLastError();
  for (int i = 0; i < 2; i++) {
    if (host_[i]) cudaFreeHost(host_[i]);
    if (used_[i]) cudaEventDestroy(E(used_[i]));
    if (conv_[i]) cudaEventDestroy(E(conv_[i]));
    host_[i] = used_[i] = conv_[i] = nullptr;
  }
  if (start_) cudaEventDestroy(E(start_));
  if (end_) cudaEventDestroy(E(end_));
  cudaStreamDestroy(S(stream_));
  start_ = end_ = stream_ = nullptr;
  return false;
}

void Transfer::upload(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (bytes < direct_bytes() || !ready()) return to_device(dst, src, bytes);
  join_default_stream();
  auto* d = static_cast<char*>(dst);
  auto* h = static_cast<const char*>(src);
  for (size_t off = 0, c = 0; off < bytes; off += chunk_, c++) {
    const int b = int(c % 2);
    const size_t k = std::min(chunk_, bytes - off);
    wait_used(b);
    std::memcpy(host_[b], h + off, k);  // while the previous chunk is on its way
    check(cudaMemcpyAsync(d + off, host_[b], k, cudaMemcpyHostToDevice, S(stream_)), "cudaMemcpyAsync to the device");
    check(cudaEventRecord(E(used_[b]), S(stream_)), "cudaEventRecord");
    pending_[b] = true;
  }
  check(cudaEventRecord(E(end_), S(stream_)), "cudaEventRecord");
  check(cudaStreamWaitEvent(nullptr, E(end_), 0), "cudaStreamWaitEvent");
}

void Transfer::download(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (bytes < direct_bytes() || !ready()) return to_host(dst, src, bytes);
  join_default_stream();
  auto* h = static_cast<char*>(dst);
  auto* d = static_cast<const char*>(src);
  const size_t chunks = (bytes + chunk_ - 1) / chunk_;
  // the host copies chunk c-1 out of its staging buffer while chunk c is on its way
  auto drain = [&](size_t c) {
    const int b = int(c % 2);
    const size_t off = c * chunk_, k = std::min(chunk_, bytes - off);
    wait_used(b);
    std::memcpy(h + off, host_[b], k);
  };
  for (size_t c = 0; c < chunks; c++) {
    const int b = int(c % 2);
    const size_t off = c * chunk_, k = std::min(chunk_, bytes - off);
    wait_used(b);
    check(cudaMemcpyAsync(host_[b], d + off, k, cudaMemcpyDeviceToHost, S(stream_)), "cudaMemcpyAsync to the host");
    check(cudaEventRecord(E(used_[b]), S(stream_)), "cudaEventRecord");
    pending_[b] = true;
    if (c > 0) drain(c - 1);
  }
  drain(chunks - 1);
}

void Transfer::upload_bf16(uint16_t* dst, const float* src, size_t n, float* const stage[2]) {
  if (n == 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  const size_t per = chunk_ / sizeof(float);  // floats per chunk
  if (!ready()) {  // synchronous copies, one chunk at a time, through stage[0]
    for (size_t off = 0; off < n; off += per) {
      const size_t k = std::min(per, n - off);
      to_device(stage[0], src + off, sizeof(float) * k);
      f32_to_bf16(dst + off, stage[0], int64_t(k));
    }
    return;
  }
  join_default_stream();
  for (size_t off = 0, c = 0; off < n; off += per, c++) {
    const int b = int(c % 2);
    const size_t k = std::min(per, n - off);
    wait_used(b);
    std::memcpy(host_[b], src + off, sizeof(float) * k);
    if (c >= 2) check(cudaStreamWaitEvent(S(stream_), E(conv_[b]), 0), "cudaStreamWaitEvent");  // stage b read by chunk c-2's rounding
    check(cudaMemcpyAsync(stage[b], host_[b], sizeof(float) * k, cudaMemcpyHostToDevice, S(stream_)), "cudaMemcpyAsync to the device");
    check(cudaEventRecord(E(used_[b]), S(stream_)), "cudaEventRecord");
    pending_[b] = true;
    check(cudaStreamWaitEvent(nullptr, E(used_[b]), 0), "cudaStreamWaitEvent");  // the rounding waits for this copy
    f32_to_bf16(dst + off, stage[b], int64_t(k));
    check(cudaEventRecord(E(conv_[b]), nullptr), "cudaEventRecord");
  }
}

}  // namespace cuda
}  // namespace tailor
