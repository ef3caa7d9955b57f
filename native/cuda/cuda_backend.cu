// cuda_backend.cu — the CUDA Backend (backend.h): one device, every buffer in device memory, and a device
// copy of the model's F32 weight arena (uploaded by bind_weights; weight() maps a host weight pointer to the
// same offset in that copy). The ops are the kernels of kernels.h on the default stream; only the embedding
// gather is defined here. Large uploads and downloads (the weights, LoRA state) go through page-locked
// staging on a copy stream (transfer.h), overlapping the host's copying, the DMA and the bf16 rounding.
// Inference, LoRA training and the pruner's weight gradients run on it.
// Buffers come from a caching allocator: a freed block goes to a free list and is handed out again for a
// request of up to its size (at most twice the request), so a training step's many short-lived tensors do
// not each pay for cudaMalloc/cudaFree (which synchronise). This is safe because every user of a block is
// ordered on the default stream: a kernel that reads a block was queued before the host could free it, so
// the next user's kernels run after it; the copy stream's writes are joined back into the default stream
// (an event wait) before an upload returns, and a download returns only when its copies are done. On
// out-of-memory the cache is returned to the driver and the allocation tried once more; then E_OOM says
// what was needed, what is free, what Tailor holds, and what to change.
#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "backend.h"
#include "common.cuh"
#include "kernels.h"
#include "model.h"
#include "transfer.h"

namespace tailor {
namespace {

// Tailor's device memory over every CUDA backend of the process (a pipeline stage's peak, whichever models it
// loads): bytes handed out, their peak since the last reset, and bytes cached by the allocators.
struct ProcessTotals {
  std::mutex mu;
  uint64_t in_use = 0, peak = 0, cached = 0;
  int device = -1;  // the last device a backend was made on (for the device's total and free bytes)
  void add(int64_t use, int64_t cache) {
    std::lock_guard<std::mutex> lock(mu);
    in_use = uint64_t(int64_t(in_use) + use);
    cached = uint64_t(int64_t(cached) + cache);
    peak = std::max(peak, in_use);
  }
};
ProcessTotals& totals() {
  static ProcessTotals t;
  return t;
}

// the library bytes and the device's total and free memory, into m
void device_figures(int device, Backend::MemoryStats& m) {
  size_t free_b = 0, total_b = 0;
  cuda::set_device(device);
  m.library = cuda::lt_workspace_bytes();
  if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess) m.device_free = free_b, m.device_total = total_b;
  else cudaGetLastError();
}

// x[T, dim] = emb[tokens[t], :]  (one block per token row)
__global__ void embed_rows_kernel(float* __restrict__ x, const float* __restrict__ emb, const int* __restrict__ tokens, int64_t dim) {
  const int64_t t = blockIdx.x;
  const float* src = emb + int64_t(tokens[t]) * dim;
  float* dst = x + t * dim;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) dst[i] = src[i];
}

// x[T, dim] = emb[tokens[t], :] from a bf16 table
__global__ void embed_rows_bf16_kernel(float* __restrict__ x, const uint16_t* __restrict__ emb, const int* __restrict__ tokens, int64_t dim) {
  const int64_t t = blockIdx.x;
  const uint16_t* src = emb + int64_t(tokens[t]) * dim;
  float* dst = x + t * dim;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) dst[i] = cuda::bf16_bits_to_float(src[i]);
}

class CudaBackend final : public Backend {
 public:
  CudaBackend(int device, const BackendOptions& opt)
      : device_(device), bf16_(opt.bf16_weights), transfer_(opt.staging_bytes ? opt.staging_bytes : size_t(16) << 20) {
    cuda::set_device(device);
    cudaDeviceProp p;
    cuda::check(cudaGetDeviceProperties(&p, device), "cudaGetDeviceProperties");
    cc_ = p.major * 10 + p.minor;
    name_ = "cuda (device " + std::to_string(device) + ", " + p.name + ", sm_" + std::to_string(p.major) + std::to_string(p.minor) +
            (bf16_ ? ", bf16 weights" : "") + (cuda::lt_enabled() ? ", cuBLASLt" : "") + ")";
  }
  ~CudaBackend() override {
    cudaSetDevice(device_);
    for (auto& b : bind_stage_) b.release();
    free(weights_);
    free(wbf_);
    free(wnorm_);
    cuda::device_free(rope_freq_);
    for (auto& b : cache_) cuda::device_free(b.second);
    for (auto& b : live_) cuda::device_free(b.first);  // buffers still held (their owners outlived us: a bug, not a leak)
    totals().add(-int64_t(in_use_), -int64_t(cached_));
  }
  std::string name() const override { return name_; }
  int threads() const override { return 1; }
  bool host_memory() const override { return false; }

  // ---- buffers (device memory, through the cache) ----
  void* alloc(size_t bytes) override {
    use();
    const size_t size = round_size(bytes);
    std::lock_guard<std::mutex> lock(alloc_mu_);
    void* p = nullptr;
    auto it = cache_.lower_bound(size);
    if (it != cache_.end() && it->first <= 2 * size) {
      p = it->second;
      live_[p] = it->first;
      cached_ -= it->first;
      in_use_ += it->first;
      totals().add(int64_t(it->first), -int64_t(it->first));
      cache_.erase(it);
    } else {
      p = fresh(size);
      live_[p] = size;
      in_use_ += size;
      totals().add(int64_t(size), 0);
    }
    peak_ = std::max(peak_, in_use_);
    return p;
  }
  void free(void* p) noexcept override {
    if (!p) return;
    std::lock_guard<std::mutex> lock(alloc_mu_);
    auto it = live_.find(p);
    if (it == live_.end()) return cuda::device_free(p);  // not ours (cannot happen through the interface)
    in_use_ -= it->second;
    cached_ += it->second;
    totals().add(-int64_t(it->second), int64_t(it->second));
    cache_.emplace(it->second, p);
    live_.erase(it);
  }
  MemoryStats memory_stats() const override {
    std::lock_guard<std::mutex> lock(alloc_mu_);
    MemoryStats m;
    m.in_use = in_use_, m.peak = peak_, m.cached = cached_;
    device_figures(device_, m);
    return m;
  }
  void reset_peak() override {
    std::lock_guard<std::mutex> lock(alloc_mu_);
    peak_ = in_use_;
  }
  void upload(void* dst, const void* src, size_t bytes) override {
    use();
    transfer_.upload(dst, src, bytes);
  }
  void download(void* dst, const void* src, size_t bytes) override {
    use();
    transfer_.download(dst, src, bytes);
  }
  void copy(void* dst, const void* src, size_t bytes) override {
    use();
    if (bytes) cuda::check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice), "cudaMemcpy on the device");
  }
  void memset0(void* p, size_t bytes) override {
    use();
    cuda::device_memset(p, 0, bytes);
  }

  // ---- weights: a device copy of the host arena, fp32 or (bf16_weights) bf16 with the norm vectors kept
  // in fp32. A bf16 weight is handed to ops as a "handle": its bf16 address cast to const float*, which only
  // this backend's matmul and embedding ops accept (they recognise the range); norms get fp32 pointers.
  // Filled in parts (bind_part) so that the loader's decoding of one tensor overlaps the copy of the one
  // before; the copy stream orders them before any op queued after bind_end. ----
  void bind_begin(const Model& m) override {
    std::lock_guard<std::mutex> lock(mu_);
    use();
    struct WeightsOom {  // an out-of-memory here is the weights' own: say what shrinks them
      bool& f;
      explicit WeightsOom(bool& x) : f(x) { f = true; }
      ~WeightsOom() { f = false; }
    } why(weights_oom_);
    const size_t n = m.arena.size();
    host_base_ = nullptr;  // no usable copy until bind_end
    binding_ = m.arena.data();
    if (!bf16_) {
      if (n != n_weights_) {
        free(weights_);
        weights_ = nullptr;
        n_weights_ = 0;
        weights_ = static_cast<float*>(alloc(sizeof(float) * n));
      }
      n_weights_ = n;
      cuda::device_memset(weights_, 0, sizeof(float) * n);
      return;
    }
    // the norm vectors (fp32 on the device), in arena order
    norms_.clear();
    size_t nn = 0;
    auto add_norm = [&](const float* p) {
      if (!p) return;
      norms_.push_back({size_t(p - m.arena.data()), nn});
      nn += size_t(m.cfg.dim);
    };
    for (auto& L : m.layers) add_norm(L.attn_norm), add_norm(L.ffn_norm);
    add_norm(m.out_norm);
    std::sort(norms_.begin(), norms_.end());
    if (n != n_weights_ || nn != n_norm_) {
      free(wbf_), free(wnorm_);
      wbf_ = nullptr, wnorm_ = nullptr, n_weights_ = 0, n_norm_ = 0;
      wbf_ = static_cast<uint16_t*>(alloc(sizeof(uint16_t) * n));
      wnorm_ = static_cast<float*>(alloc(sizeof(float) * std::max<size_t>(nn, 1)));
    }
    n_weights_ = n, n_norm_ = nn;
    norm_dim_ = size_t(m.cfg.dim);
    cuda::device_memset(wbf_, 0, sizeof(uint16_t) * n);
    cuda::device_memset(wnorm_, 0, sizeof(float) * std::max<size_t>(nn, 1));
    // two device staging buffers: fp32 chunks are rounded to bf16 on the device while the next chunk is
    // copied (never a whole fp32 copy on the device); held until bind_end
    // (no larger than the weights: a part never spans more than a chunk nor more than the arena)
    for (auto& b : bind_stage_) b.reserve(*this, std::min(transfer_.chunk_bytes(), sizeof(float) * std::max<size_t>(n, 1)));
  }
  void bind_part(const Model& m, const float* first, size_t n) override {
    std::lock_guard<std::mutex> lock(mu_);
    use();
    if (binding_ != m.arena.data()) fail(ErrorCode::INTERNAL, "bind_part without bind_begin for this model");
    if (first < binding_ || n > n_weights_ || size_t(first - binding_) > n_weights_ - n)
      fail(ErrorCode::INTERNAL, "bind_part: the range is outside the model's weights");
    const size_t off = size_t(first - binding_);
    if (!bf16_) return transfer_.upload(weights_ + off, first, sizeof(float) * n);
    float* const sp[2] = {bind_stage_[0].f(), bind_stage_[1].f()};
    transfer_.upload_bf16(wbf_ + off, first, n, sp);
    for (auto& r : norms_) {  // the part of each norm vector inside the range, in fp32
      const size_t b = std::max(off, r.off), e = std::min(off + n, r.off + norm_dim_);
      if (b < e) cuda::to_device(wnorm_ + r.dst + (b - r.off), binding_ + b, sizeof(float) * (e - b));
    }
  }
  void bind_end(const Model& m) override {
    std::lock_guard<std::mutex> lock(mu_);
    use();
    if (binding_ != m.arena.data()) fail(ErrorCode::INTERNAL, "bind_end without bind_begin for this model");
    cuda::device_synchronize();
    for (auto& b : bind_stage_) b.release();
    binding_ = nullptr;
    host_base_ = m.arena.data();
  }
  const float* weight(const float* host) const override {
    if (!host) return nullptr;
    if (!host_base_ || host < host_base_ || host >= host_base_ + n_weights_)
      fail(ErrorCode::INTERNAL, "the CUDA backend was given a weight outside the model it holds (bind_weights was not called for this model)");
    const size_t off = size_t(host - host_base_);
    if (!bf16_) return weights_ + off;
    for (auto& r : norms_)
      if (off >= r.off && off < r.off + norm_dim_) return wnorm_ + r.dst + (off - r.off);
    return reinterpret_cast<const float*>(wbf_ + off);  // a bf16 handle
  }
  // the bf16 weight behind a handle, or null for an fp32 pointer
  const uint16_t* bf16_of(const float* w) const {
    if (!bf16_ || !wbf_) return nullptr;
    auto* p = reinterpret_cast<const uint16_t*>(w);
    return p >= wbf_ && p < wbf_ + n_weights_ ? p : nullptr;
  }

  void embed_rows(float* x, const float* emb, const int* tokens, int64_t T, int64_t dim) override {
    use();
    if (T == 0 || dim == 0) return;
    if (T > 0x7fffffff) fail(ErrorCode::ARG, "embed_rows: too many rows");
    if (const uint16_t* e = bf16_of(emb)) TAILOR_LAUNCH(embed_rows_bf16_kernel, unsigned(T), 256)(x, e, tokens, dim);
    else TAILOR_LAUNCH(embed_rows_kernel, unsigned(T), 256)(x, emb, tokens, dim);
    cuda::check_launch("embed_rows");
  }

  // ---- ops: the kernels of kernels.h ----
  void matmul_forward(float* y, const float* x, const float* w, int64_t T, int64_t in, int64_t out, bool acc) override {
    use();
    if (const uint16_t* wb = bf16_of(w)) {
      const bool tc = cc_ >= 80;
      BackendBuffer scratch;  // x in bf16 for the tensor cores (from the cache: no cudaMalloc in steady state)
      if (tc) scratch.reserve(*this, sizeof(uint16_t) * size_t(std::max<int64_t>(T * in, 1)));
      // the automatic path: cuBLASLt first where it is active, then our tensor-core kernel (sm_80+) or the tiled one
      return cuda::matmul_forward_bf16w(y, x, wb, T, in, out, acc, tc ? reinterpret_cast<uint16_t*>(scratch.f()) : nullptr,
                                        cuda::Bf16Path::Auto);
    }
    cuda::matmul_forward(y, x, w, T, in, out, acc);
  }
  void rmsnorm_forward(float* y, const float* x, const float* w, int64_t T, int64_t dim, float eps) override {
    use();
    cuda::rmsnorm_forward(y, x, w, T, dim, eps);
  }
  void rope_forward(float* x, const int* pos, int64_t T, int n_heads, const RopeTable& rope) override {
    use();
    cuda::rope_forward(x, pos, T, n_heads, device_rope(rope));
  }
  // bf16 mode keeps the KV cache in bf16 where the tensor-core attention takes the head size: half its memory,
  // and the values that attention rounds the cached keys and values to anyway (the fp32 kernel, which decodes,
  // widens them). Where it does not (sm_75, head_dim not a multiple of 16 up to 128) every read is fp32, and
  // so stays the cache: bf16 there would be a rounding the mode did not otherwise make.
  bool kv_bf16(int head_dim) const override { return attention_tc(head_dim); }
  void kv_store(const KvView& kv, const float* k, const float* v, const int* pos, const int* slot, int64_t T) override {
    use();
    cuda::kv_store(kv, k, v, pos, slot, T);
  }
  void kv_copy(const KvView& kv, const KvCopy* copies, int n, int max_rows) override {
    use();
    cuda::kv_copy(kv, copies, n, max_rows);
  }
  void attention_forward(float* out, const float* q, const KvView& kv, const int* pos, const int* slot, int64_t T, int n_head, int n_kv,
                         int hd) override {
    use();
    if (attention_tc(hd) && T >= cuda::kAttentionTcMinTokens) return cuda::attention_forward_tc(out, q, kv, pos, slot, T, n_head, n_kv, hd);
    // decoding over a long cache splits the keys among blocks: their partial sums in scratch (from the cache)
    BackendBuffer scratch;
    if (const int64_t n = cuda::attention_forward_scratch(T, n_head, hd, kv.n_ctx)) scratch.reserve(*this, sizeof(float) * size_t(n));
    cuda::attention_forward(out, q, kv, pos, slot, T, n_head, n_kv, hd, scratch.f());
  }
  void swiglu_forward(float* h, const float* g, const float* u, int64_t n) override {
    use();
    cuda::swiglu_forward(h, g, u, n);
  }
  void logprob_forward(const float* logits, int64_t R, int64_t V, const int* target, double* logprob, int* argmax) override {
    use();
    cuda::logprob_forward(logits, R, V, target, logprob, argmax);
  }
  void topk_scaled(float* vals, int* ids, const float* x, int64_t n, int k, float temperature) override {
    use();
    cuda::topk_scaled(vals, ids, x, n, k, temperature);
  }
  void matmul_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, int64_t T, int64_t in, int64_t out) override {
    use();
    if (const uint16_t* wb = bf16_of(w)) {  // base weights in bf16: dx through them; dW does not read W
      if (dx) {
        const bool tc = cc_ >= 80;
        BackendBuffer scratch;  // dy in bf16 for the tensor cores
        if (tc) scratch.reserve(*this, sizeof(uint16_t) * size_t(std::max<int64_t>(T * out, 1)));
        cuda::matmul_backward_dx_bf16w(dx, dy, wb, T, in, out, tc ? reinterpret_cast<uint16_t*>(scratch.f()) : nullptr,
                                       cuda::Bf16Path::Auto);  // (cuBLASLt first, as above)
      }
      if (dw) cuda::matmul_backward(nullptr, dw, dy, x, nullptr, T, in, out);
      return;
    }
    cuda::matmul_backward(dx, dw, dy, x, w, T, in, out);
  }
  double crossentropy_forward_backward(float* dlogits, const float* logits, const int* target, const float* weight, int64_t N, int64_t V,
                                       double scale) override {
    use();
    return cuda::crossentropy_forward_backward(dlogits, logits, target, weight, N, V, scale);
  }
  // ---- training ops (train.cu) ----
  void rmsnorm_forward_train(float* y, float* rstd, const float* x, const float* w, int64_t N, int64_t D, double eps) override {
    use();
    cuda::rmsnorm_forward_train(y, rstd, x, w, N, D, eps);
  }
  void rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, const float* rstd, int64_t N, int64_t D) override {
    use();
    cuda::rmsnorm_backward(dx, dw, dy, x, w, rstd, N, D);
  }
  void rope_apply(float* x, const int* pos, int64_t N, int n_heads, const RopeTable& rope, int sign) override {
    use();
    cuda::rope_apply(x, pos, N, n_heads, device_rope(rope), sign);
  }
  void attention_forward_train(float* out, float* att, const float* q, const float* k, const float* v, int B, int Tn, int nh, int nkv,
                               int hd) override {
    use();
    if (attention_tc(hd)) return cuda::attention_forward_train_tc(out, att, q, k, v, B, Tn, nh, nkv, hd);
    cuda::attention_forward_train(out, att, q, k, v, B, Tn, nh, nkv, hd);
  }
  int64_t attention_saved_floats(int B, int Tn, int nh) const override { return cuda::attention_saved_floats(B, Tn, nh); }
  void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* out, const float* att, const float* q, const float* k,
                          const float* v, int B, int Tn, int nh, int nkv, int hd) override {
    use();
    BackendBuffer scratch;  // D[B, nh, Tn] from the cache
    scratch.reserve(*this, sizeof(float) * size_t(std::max<int64_t>(1, int64_t(B) * nh * Tn)));
    if (attention_tc(hd)) return cuda::attention_backward_tc(dq, dk, dv, dout, out, att, q, k, v, B, Tn, nh, nkv, hd, scratch.f());
    cuda::attention_backward(dq, dk, dv, dout, out, att, q, k, v, B, Tn, nh, nkv, hd, scratch.f());
  }
  // attention on bf16 tensor cores: in bf16 mode (the products are bf16 there already), where the device and
  // head_dim allow it — in training always (a forward and its backward take the same path: their lse differ
  // within bf16 rounding), over the KV cache for prompts of kAttentionTcMinTokens or more
  bool attention_tc(int hd) const { return bf16_ && cuda::attention_tc_usable(hd); }
  void swiglu_backward(float* dg, float* du, const float* dh, const float* g, const float* u, int64_t n) override {
    use();
    cuda::swiglu_backward(dg, du, dh, g, u, n);
  }
  void embedding_backward(float* dtable, const float* dout, const int* ids, int64_t N, int64_t D) override {
    use();
    cuda::embedding_backward(dtable, dout, ids, N, D);
  }
  void scale_inplace(float* x, float s, int64_t n) override {
    use();
    cuda::scale_inplace(x, s, n);
  }
  void lora_dropout(float* y, const float* x, int64_t n, double p, uint64_t seed, uint64_t step, int layer, int target) override {
    use();
    cuda::lora_dropout(y, x, n, p, seed, step, layer, target);
  }
  double sum_squares(const float* x, int64_t n) override {
    use();
    return cuda::sum_squares(x, n);
  }
  void wg_term_sums(double* sums, const float* w, const float* g, int64_t rows, int64_t cols, WgTerm term, bool by_column) override {
    use();
    const uint16_t* wb = bf16_of(w);
    cuda::wg_term_sums(sums, wb ? nullptr : w, wb, g, rows, cols, term, by_column);
  }
  void adamw_step(float* p, const float* grad, float* m, float* v, int64_t n, float clip, float beta1, float beta2, float eps, float wd,
                  double lr, double bc1, double bc2) override {
    use();
    cuda::adamw_step(p, grad, m, v, n, clip, beta1, beta2, eps, wd, lr, bc1, bc2);
  }

  // host work (no device threads to split it over): runs fn over the whole range on the calling thread
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) override {
    if (n > 0) fn(0, n);
  }
  void add_inplace(float* y, const float* x, int64_t n) override {
    use();
    cuda::add_inplace(y, x, n);
  }

 private:
  // the CUDA current device belongs to the calling host thread (the addon runs jobs on worker threads)
  void use() const { cuda::set_device(device_); }

  cuda::DeviceRope device_rope(const RopeTable& rope) {
    cuda::DeviceRope r;
    r.head_dim = rope.head_dim;
    r.interleaved = rope.interleaved;
    r.pos_scale = rope.pos_scale;
    r.inv_freq = rope_freqs(rope);
    return r;
  }

  // blocks of 512 bytes; large ones in whole MiB so that similar sizes share cached blocks
  static size_t round_size(size_t bytes) {
    if (bytes < (size_t(1) << 20)) return std::max<size_t>(512, (bytes + 511) / 512 * 512);
    return (bytes + (size_t(1) << 20) - 1) >> 20 << 20;
  }
  // a new block from the driver; on out-of-memory the cache goes back to it and we try once more
  void* fresh(size_t size) {
    try {
      return cuda::device_malloc(size);
    } catch (const EngineError& e) {
      if (e.code() != ErrorCode::OOM) throw;
    }
    for (auto& b : cache_) cuda::device_free(b.second);
    cache_.clear();
    totals().add(0, -int64_t(cached_));
    cached_ = 0;
    void* p = nullptr;
    cudaError_t err = cudaMalloc(&p, size);
    if (err == cudaSuccess) return p;
    cudaGetLastError();
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    auto mib = [](uint64_t b) {  // KiB below 1 MiB (a small request or device must not read "0 MiB")
      return b < (uint64_t(1) << 20) ? std::to_string((b + 512) >> 10) + " KiB" : std::to_string((b + (1 << 19)) >> 20) + " MiB";
    };
    fail(ErrorCode::OOM, "out of GPU memory on " + name_ + ": " + mib(size) + " more needed, " + mib(free_b) + " free of " + mib(total_b) +
                             " (Tailor holds " + mib(in_use_) + "). " + (weights_oom_ ? kWeightsHint : kWorkHint));
  }

  // the table's inv_freq[head_dim/2] on the device, uploaded again only when the table changes
  const double* rope_freqs(const RopeTable& rope) {
    std::lock_guard<std::mutex> lock(mu_);
    if (rope.inv_freq != rope_host_) {
      if (rope.inv_freq.size() > rope_cap_) {
        cuda::device_free(rope_freq_);
        rope_freq_ = nullptr;
        rope_cap_ = 0;
        rope_freq_ = static_cast<double*>(cuda::device_malloc(sizeof(double) * rope.inv_freq.size()));
        rope_cap_ = rope.inv_freq.size();
      }
      cuda::to_device(rope_freq_, rope.inv_freq.data(), sizeof(double) * rope.inv_freq.size());
      rope_host_ = rope.inv_freq;
    }
    return rope_freq_;
  }

  int device_;
  bool bf16_ = false;                // weights stored in bf16 (norm vectors in fp32)
  cuda::Transfer transfer_;          // large copies: page-locked staging on a copy stream
  int cc_ = 0;                       // compute capability ×10
  std::string name_;
  float* weights_ = nullptr;         // [arena] device copy of the model's weights (fp32 mode)
  uint16_t* wbf_ = nullptr;          // [arena] the same in bf16 (bf16 mode)
  float* wnorm_ = nullptr;           // [n_norm_] the norm vectors in fp32 (bf16 mode)
  size_t n_norm_ = 0, norm_dim_ = 0;
  struct NormRange {
    size_t off, dst;  // arena offset of a norm vector, and where it sits in wnorm_
    bool operator<(const NormRange& o) const { return off < o.off; }
  };
  std::vector<NormRange> norms_;
  size_t n_weights_ = 0;             // floats
  const float* host_base_ = nullptr; // the host arena it mirrors
  bool weights_oom_ = false;         // allocating the weights' copy (bind_begin): the E_OOM advice is about them
  static constexpr const char* kWeightsHint =
      "The model's weights do not fit: load them in bf16 (weights 'bf16', --weights bf16) to halve them, prune the model "
      "first, free the GPU of other programs, or use backend 'cpu'";
  static constexpr const char* kWorkHint =
      "Use a shorter maximum length, a smaller micro-batch or LoRA rank, activation checkpointing, a smaller model, or backend 'cpu'";
  const float* binding_ = nullptr;   // the host arena being copied, between bind_begin and bind_end
  BackendBuffer bind_stage_[2];      // [chunk_bytes/4] each: fp32 staging of bf16 uploads, between begin and end
  double* rope_freq_ = nullptr;      // [head_dim/2]
  size_t rope_cap_ = 0;
  std::vector<double> rope_host_;    // what rope_freq_ holds
  std::mutex mu_;                    // jobs on several host threads may share the backend
  mutable std::mutex alloc_mu_;      // the allocator's state below
  std::map<void*, size_t> live_;     // handed out: block → bytes
  std::multimap<size_t, void*> cache_;  // freed, kept for reuse: bytes → block
  uint64_t in_use_ = 0, peak_ = 0, cached_ = 0;
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(int device_index, const BackendOptions& opt) {
  auto be = std::make_unique<CudaBackend>(device_index, opt);
  std::lock_guard<std::mutex> lock(totals().mu);
  totals().device = device_index;
  return be;
}

Backend::MemoryStats cuda_process_memory(bool reset_peak) {
  Backend::MemoryStats m;
  int device;
  {
    std::lock_guard<std::mutex> lock(totals().mu);
    m.in_use = totals().in_use, m.peak = totals().peak, m.cached = totals().cached;
    if (reset_peak) totals().peak = totals().in_use;
    device = totals().device;
  }
  if (device >= 0) device_figures(device, m);  // (no backend yet: the driver is not touched)
  return m;
}

}  // namespace tailor
