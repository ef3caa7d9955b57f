// transfer.h — large host↔device copies of the CUDA backend, through two page-locked staging buffers on a
// copy stream of its own (transfer.cu). While the DMA engine copies one chunk, the host fills the other
// staging buffer, and in upload_bf16 the default stream rounds the chunk before to bf16: loading (host
// copies), copies and compute overlap. Plain declarations, no CUDA headers (handles are opaque).
#pragma once
#include <cstddef>
#include <cstdint>
#include <mutex>

namespace tailor {
namespace cuda {

class Transfer {
 public:
  explicit Transfer(size_t chunk_bytes = size_t(16) << 20);  // bytes per staging buffer (two of them)
  ~Transfer();
  Transfer(const Transfer&) = delete;
  Transfer& operator=(const Transfer&) = delete;

  // device dst ← host src (pageable). Returns once src may be reused; work queued on the default stream
  // afterwards sees dst, and work queued before it still sees dst's old contents.
  void upload(void* dst, const void* src, size_t bytes);
  // host dst ← device src, after the work queued on the default stream; returns when dst holds it
  void download(void* dst, const void* src, size_t bytes);
  // device bf16 dst[n] ← host fp32 src[n], chunk by chunk through the device buffers stage[0..1] (chunk_bytes()
  // each), rounded by a kernel on the default stream while the next chunk is copied
  void upload_bf16(uint16_t* dst, const float* src, size_t n, float* const stage[2]);

  size_t chunk_bytes() const { return chunk_; }
  // whether copies go through page-locked staging (false until the first large copy, or when page-locked
  // memory or a stream could not be had: copies then are plain cudaMemcpy)
  bool pinned() const { return state_ == 1; }
  // copies below this are plain cudaMemcpy: 256 KiB, or a quarter of a staging buffer when those are
  // smaller (the test harness's 64 KiB staging sends a small model's tensors through the copy stream too)
  static constexpr size_t kDirectBytes = size_t(256) << 10;
  size_t direct_bytes() const { return chunk_ / 4 < kDirectBytes ? chunk_ / 4 : kDirectBytes; }

 private:
  void join_default_stream();
  void wait_used(int b);
  bool ready();  // creates the stream, events and staging on first use; false if any of them fails
  size_t chunk_;
  int state_ = 0;             // 0 not tried, 1 ready, -1 unavailable
  void* stream_ = nullptr;    // cudaStream_t: the copy stream (non-blocking)
  void* host_[2] = {};        // page-locked staging, chunk_ bytes each
  void* used_[2] = {};        // cudaEvent_t: the copy stream's last copy through host_[i] is done
  bool pending_[2] = {};      // used_[i] recorded and not yet waited for by the host
  void* conv_[2] = {};        // cudaEvent_t: the default stream's rounding of stage i is done (upload_bf16)
  void* start_ = nullptr;     // cudaEvent_t: the default stream's work queued before a transfer
  void* end_ = nullptr;       // cudaEvent_t: the copy stream's last copy of an upload
  std::mutex mu_;             // one transfer at a time (jobs on several host threads share the backend)
};

}  // namespace cuda
}  // namespace tailor
