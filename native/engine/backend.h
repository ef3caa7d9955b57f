// backend.h — the seam between the model code and the hardware. The forward pass (forward.cpp) is
// written once against this interface; the CPU backend (cpu_backend.cpp) is the reference, and the CUDA
// backend implements the same ops on device memory. Tensors are raw float buffers the backend allocated
// (alloc/free; upload/download move bytes between them and the host). Weights stay in the model's host
// arena: ops take host weight pointers through weight(), which the CUDA backend maps to its device copy.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "threadpool.h"

namespace tailor {

struct CancelToken {
  const int32_t* flag = nullptr;  // shared with the caller; nonzero = stop (1 = cancel, 2 = finish early)
  int32_t value() const { return flag ? __atomic_load_n(flag, __ATOMIC_RELAXED) : 0; }
  bool cancelled() const { return flag && __atomic_load_n(flag, __ATOMIC_RELAXED) != 0; }
  void check() const;             // throws E_CANCELLED
};

// RoPE frequencies of one model: inv_freq[j] for pair j (scaling and GGUF rope_freqs already applied),
// and the position scale (1/factor for linear scaling).
struct RopeTable {
  int head_dim = 0;
  bool interleaved = false;
  double pos_scale = 1.0;
  std::vector<double> inv_freq;  // [head_dim/2]
};

// A view of one layer's KV cache: k/v[slot][position][n_kv*hd], fp32 elements, or bf16 (its 16 bits, rounded
// to nearest even as stored) where the backend keeps its cache so (Backend::kv_bf16).
struct KvView {
  void* k;
  void* v;
  int n_ctx;          // positions per slot
  int kv_stride;      // elements per position (n_kv*hd of this layer)
  bool bf16 = false;  // elements are bf16, not fp32
  float* k32() const { return static_cast<float*>(k); }
  float* v32() const { return static_cast<float*>(v); }
  uint16_t* k16() const { return static_cast<uint16_t*>(k); }
  uint16_t* v16() const { return static_cast<uint16_t*>(v); }
};

// cache rows src..src+rows−1 → dst..dst+rows−1: a packed cache's shared prefix, from the rows where an earlier
// sequence of the batch computed it into the rows of the sequence that shares it (forward.h, Batch)
struct KvCopy {
  int src, dst, rows;
};

struct Model;

// the elementwise term of a pruning statistic: |w·g|, w·g or (w·g)² (in float64)
enum class WgTerm { AbsWG, WG, SqWG };

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  virtual int threads() const = 0;
  // true when alloc() returns host memory that the host may read and write directly (the CPU backend)
  virtual bool host_memory() const = 0;

  // ---- buffers: memory where this backend computes (CPU: host memory, 64-byte aligned) ----
  virtual void* alloc(size_t bytes) = 0;  // E_OOM saying the bytes asked for (and free, on a device)
  virtual void free(void* p) noexcept = 0;
  virtual void upload(void* dst, const void* host_src, size_t bytes) = 0;    // host → backend buffer
  virtual void download(void* host_dst, const void* src, size_t bytes) = 0;  // backend buffer → host (waits for queued ops)
  virtual void copy(void* dst, const void* src, size_t bytes) = 0;           // backend buffer → backend buffer
  virtual void memset0(void* p, size_t bytes) = 0;

  // ---- weights: the model's host arena, mirrored where the backend computes ----
  // makes (or refreshes) this backend's copy of m's weights (CPU: nothing to do); call again after the
  // host weights change (a LoRA merge, full fine-tuning)
  void bind_weights(const Model& m);
  // the same in steps, so that a model is copied while it is loaded (LoadHooks): bind_begin sizes the copy
  // for m's arena (its contents need not be final, and read as zero until a part covers them); bind_part
  // copies [first, first+n) of the arena, final from then on; bind_end makes the copy usable by ops
  // (weight() fails between begin and end). A failure in between leaves no usable copy.
  virtual void bind_begin(const Model& m) = 0;
  virtual void bind_part(const Model& m, const float* first, size_t n) = 0;
  virtual void bind_end(const Model& m) = 0;
  // the pointer ops take for a host weight pointer into the bound arena (CPU: the same pointer)
  virtual const float* weight(const float* host) const = 0;

  // x[T, dim] = emb[tokens[t], :] (emb a weight() pointer [vocab, dim]; tokens a backend buffer, ids checked)
  virtual void embed_rows(float* x, const float* emb, const int* tokens, int64_t T, int64_t dim) = 0;

  // y[T, out] = x[T, in] · W[out, in]ᵀ   (accumulate: y += ...)
  virtual void matmul_forward(float* y, const float* x, const float* w, int64_t T, int64_t in, int64_t out, bool accumulate) = 0;
  // y[T, dim] = x / rms(x) * w
  virtual void rmsnorm_forward(float* y, const float* x, const float* w, int64_t T, int64_t dim, float eps) = 0;
  // x[T, n_heads*hd] rotated in place by position pos[t]
  virtual void rope_forward(float* x, const int* pos, int64_t T, int n_heads, const RopeTable& rope) = 0;
  // whether this backend's KV caches for heads of head_dim hold bf16 (KvCache allocates 2 bytes an element and
  // views say so): the CUDA backend's bf16 mode where its tensor-core attention takes that head_dim, since that
  // rounds the cached keys and values to bf16 anyway; elsewhere (the CPU, fp32 mode, other head sizes) fp32
  virtual bool kv_bf16(int head_dim) const { return false; }
  // stores k/v rows [T, n_kv*hd] into the cache at (slot[t], pos[t]) (rounded to bf16 in a bf16 cache)
  virtual void kv_store(const KvView& kv, const float* k, const float* v, const int* pos, const int* slot, int64_t T) = 0;
  // copies[n] (backend memory; each at most max_rows rows) in the cache's keys and values, in any order: no copy
  // reads rows another writes
  virtual void kv_copy(const KvView& kv, const KvCopy* copies, int n, int max_rows) = 0;
  // out[T, n_head*hd] = causal softmax(q kᵀ / √hd) v, each token attending to positions 0..pos[t] of its slot
  virtual void attention_forward(float* out, const float* q, const KvView& kv, const int* pos, const int* slot, int64_t T,
                                 int n_head, int n_kv, int hd) = 0;
  // h[n] = silu(g) * u
  virtual void swiglu_forward(float* h, const float* g, const float* u, int64_t n) = 0;
  // per row r of logits[R, V]: argmax[r], and logprob[r] = log softmax(row)[target[r]] (float64
  // normaliser; rows with target < 0 get no logprob)
  virtual void logprob_forward(const float* logits, int64_t R, int64_t V, const int* target, double* logprob, int* argmax) = 0;
  // sampling's candidates: the k largest of x[n]/temperature (float division) ranked by value, ties by
  // the lower index, into vals[k] and ids[k] (backend buffers) best first; 1 ≤ k ≤ min(n, 1024)
  virtual void topk_scaled(float* vals, int* ids, const float* x, int64_t n, int k, float temperature) = 0;
  // dx[T, in] += dy · W;  dW[out, in] += dyᵀ · x   (either output may be null)
  virtual void matmul_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, int64_t T, int64_t in, int64_t out) = 0;
  // weighted mean cross-entropy over rows of logits[N, V] (weight 0 = ignored), and dlogits = scale ·
  // ∂loss/∂logits (dlogits may be null). Returns the loss.
  virtual double crossentropy_forward_backward(float* dlogits, const float* logits, const int* target, const float* weight, int64_t N, int64_t V,
                                               double scale) = 0;
  // runs fn over [0, n) in chunks on the backend's threads
  virtual void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) = 0;
  // y[n] += x[n]
  virtual void add_inplace(float* y, const float* x, int64_t n) = 0;

  // ---- training ops (train_graph.cpp): the float semantics of train_ops.h; backward ops ACCUMULATE ----
  // y[N, D] = x·rstd·w with rstd[N] = 1/sqrt(mean(x²) + eps) saved for the backward
  virtual void rmsnorm_forward_train(float* y, float* rstd, const float* x, const float* w, int64_t N, int64_t D, double eps) = 0;
  // dx[N, D] += ∂/∂x;  dw[D] += Σ_n dy·x·rstd (dw may be null)
  virtual void rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, const float* rstd, int64_t N, int64_t D) = 0;
  // x[N, n_heads*hd] rotated in place by pos[n]; sign = -1 the inverse rotation (RoPE's backward)
  virtual void rope_apply(float* x, const int* pos, int64_t N, int n_heads, const RopeTable& rope, int sign) = 0;
  // causal GQA attention over B right-padded sequences of Tn tokens: q[B*Tn, nh*hd], k/v[B*Tn, nkv*hd] →
  // out[B*Tn, nh*hd]. `att` is opaque state the forward saves for the backward, attention_saved_floats()
  // floats: the CPU keeps the softmax probabilities [B, nh, Tn, Tn] (what the float64 checks verify), CUDA
  // only the log-sum-exp of each score row [B, nh, Tn] and recomputes the probabilities in the backward
  virtual void attention_forward_train(float* out, float* att, const float* q, const float* k, const float* v, int B, int Tn, int nh, int nkv,
                                       int hd) = 0;
  // the floats of `att` between attention_forward_train and attention_backward
  virtual int64_t attention_saved_floats(int B, int Tn, int nh) const = 0;
  // dq, dk, dv += ... from dout, the forward's output `out` and its saved state `att` (the CPU ignores out;
  // CUDA takes Σ_j p·dp of a row as dout·out from it instead of a second pass over the keys)
  virtual void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* out, const float* att, const float* q,
                                  const float* k, const float* v, int B, int Tn, int nh, int nkv, int hd) = 0;
  // dg, du += ∂(silu(g)·u)/∂g·dh, ∂/∂u·dh
  virtual void swiglu_backward(float* dg, float* du, const float* dh, const float* g, const float* u, int64_t n) = 0;
  // dtable[V, D] += dout[n, :] at row ids[n]
  virtual void embedding_backward(float* dtable, const float* dout, const int* ids, int64_t N, int64_t D) = 0;
  // x[n] *= s
  virtual void scale_inplace(float* x, float s, int64_t n) = 0;
  // LoRA dropout of target t in layer l: y[i] = 0 where lora_dropout_uniform(seed, step, l, t, i) < p, else x[i]/(1−p) (y may be x)
  virtual void lora_dropout(float* y, const float* x, int64_t n, double p, uint64_t seed, uint64_t step, int layer, int target) = 0;
  // Σ x² (float64)
  virtual double sum_squares(const float* x, int64_t n) = 0;
  // AdamW over a flat arena (Trainer::train_step): g = grad·clip; moments m, v; p updated in place
  virtual void adamw_step(float* p, const float* grad, float* m, float* v, int64_t n, float clip, float beta1, float beta2, float eps,
                          float weight_decay, double lr, double bc1, double bc2) = 0;

  // ---- pruning statistics (grad_pass.cpp, prune.cpp) ----
  // over W[rows, cols]: sums[rows] = Σ_j term(w[r, j], g[r, j]) per row, or (by_column) sums[cols] = Σ_r per
  // column, in float64, each sum added in index order; w a weight() pointer, g and sums backend buffers
  virtual void wg_term_sums(double* sums, const float* w, const float* g, int64_t rows, int64_t cols, WgTerm term, bool by_column) = 0;

  // ---- memory accounting (bytes of backend buffers): in use now, the peak since reset_peak(), held in
  // the backend's cache for reuse (a device's caching allocator; 0 on the CPU), and held on the device
  // outside the allocator by libraries (cuBLASLt's workspace) ----
  struct MemoryStats {
    uint64_t in_use = 0, peak = 0, cached = 0, library = 0, device_total = 0, device_free = 0;
  };
  virtual MemoryStats memory_stats() const { return {}; }
  virtual void reset_peak() {}
};

struct BackendOptions {
  int threads = 0;    // 0 = all cores
  bool blas = true;   // use the BLAS library for matmul when the build has one
  bool bf16_weights = false;  // CUDA: keep the weights on the device in bf16 (norm vectors fp32); half the memory,
                              // products on tensor cores (sm_80+). LoRA parameters and optimizer state stay fp32.
                              // KV caches in bf16 too where the tensor-core attention takes the head size (kv_bf16).
  size_t staging_bytes = 0;   // CUDA: bytes per page-locked staging buffer of large copies (two of them); 0 = 16 MiB
};

std::unique_ptr<Backend> make_cpu_backend(const BackendOptions& opt);
// the CUDA backend on one device: inference, LoRA training and the weight gradients of the pruner on its
// default stream, large copies on a copy stream through page-locked staging (cuda/transfer.h). E_UNSUPPORTED in a build without CUDA (device.cpp).
std::unique_ptr<Backend> make_cuda_backend(int device_index, const BackendOptions& opt = {});
// Tailor's device memory over every CUDA backend of the process: in use, peak since the last reset (reset
// to the bytes in use now when asked), cached, the library bytes and the device's total and free bytes of
// the last device a backend was made on. All zero when no CUDA backend was ever made (or none is built).
Backend::MemoryStats cuda_process_memory(bool reset_peak = false);

// An owned backend buffer of `bytes`, grown on demand (contents are not kept when it grows).
class BackendBuffer {
 public:
  BackendBuffer() = default;
  BackendBuffer(const BackendBuffer&) = delete;
  BackendBuffer& operator=(const BackendBuffer&) = delete;
  BackendBuffer(BackendBuffer&& o) noexcept : be_(o.be_), p_(o.p_), bytes_(o.bytes_) { o.be_ = nullptr, o.p_ = nullptr, o.bytes_ = 0; }
  BackendBuffer& operator=(BackendBuffer&& o) noexcept {
    if (this != &o) {
      release();
      be_ = o.be_, p_ = o.p_, bytes_ = o.bytes_;
      o.be_ = nullptr, o.p_ = nullptr, o.bytes_ = 0;
    }
    return *this;
  }
  ~BackendBuffer() { release(); }
  void reserve(Backend& be, size_t bytes) {
    if (be_ == &be && bytes <= bytes_) return;
    release();
    p_ = be.alloc(bytes);
    be_ = &be;
    bytes_ = bytes;
  }
  void release() noexcept {
    if (be_ && p_) be_->free(p_);
    p_ = nullptr;
    be_ = nullptr;
    bytes_ = 0;
  }
  float* f() const { return static_cast<float*>(p_); }
  int* i() const { return static_cast<int*>(p_); }
  double* d() const { return static_cast<double*>(p_); }
  void* p() const { return p_; }
  size_t bytes() const { return bytes_; }

 private:
  Backend* be_ = nullptr;
  void* p_ = nullptr;
  size_t bytes_ = 0;
};
bool cpu_has_blas();  // whether this build links a BLAS
std::string cpu_blas_name();

}  // namespace tailor
