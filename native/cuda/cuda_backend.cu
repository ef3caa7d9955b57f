// cuda_backend.cu — the CUDA Backend (backend.h): one device, its default stream, every buffer in device
// memory, and a device copy of the model's F32 weight arena (uploaded by bind_weights; weight() maps a host
// weight pointer to the same offset in that copy). The ops are the kernels of kernels.h; only the embedding
// gather is defined here. Inference runs whole models on it; training keeps to the CPU backend.
#include <cstring>
#include <mutex>
#include <vector>

#include "backend.h"
#include "common.cuh"
#include "kernels.h"
#include "model.h"

namespace tailor {
namespace {

// x[T, dim] = emb[tokens[t], :]  (one block per token row)
__global__ void embed_rows_kernel(float* __restrict__ x, const float* __restrict__ emb, const int* __restrict__ tokens, int64_t dim) {
  const int64_t t = blockIdx.x;
  const float* src = emb + int64_t(tokens[t]) * dim;
  float* dst = x + t * dim;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) dst[i] = src[i];
}

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device) : device_(device) {
    cuda::set_device(device);
    cudaDeviceProp p;
    cuda::check(cudaGetDeviceProperties(&p, device), "cudaGetDeviceProperties");
    name_ = "cuda (device " + std::to_string(device) + ", " + p.name + ", sm_" + std::to_string(p.major) + std::to_string(p.minor) + ")";
  }
  ~CudaBackend() override {
    cudaSetDevice(device_);
    cuda::device_free(weights_);
    cuda::device_free(rope_freq_);
  }
  std::string name() const override { return name_; }
  int threads() const override { return 1; }
  bool host_memory() const override { return false; }

  // ---- buffers (device memory) ----
  void* alloc(size_t bytes) override {
    use();
    return cuda::device_malloc(bytes);  // E_OOM with the bytes needed and free
  }
  void free(void* p) noexcept override { cuda::device_free(p); }
  void upload(void* dst, const void* src, size_t bytes) override {
    use();
    cuda::to_device(dst, src, bytes);
  }
  void download(void* dst, const void* src, size_t bytes) override {
    use();
    cuda::to_host(dst, src, bytes);
  }
  void copy(void* dst, const void* src, size_t bytes) override {
    use();
    if (bytes) cuda::check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice), "cudaMemcpy on the device");
  }
  void memset0(void* p, size_t bytes) override {
    use();
    cuda::device_memset(p, 0, bytes);
  }

  // ---- weights: a device copy of the host arena (fp32; bf16 storage is future work) ----
  void bind_weights(const Model& m) override {
    std::lock_guard<std::mutex> lock(mu_);
    use();
    const size_t n = m.arena.size();
    if (n != n_weights_) {
      cuda::device_free(weights_);
      weights_ = nullptr;
      n_weights_ = 0;
      weights_ = static_cast<float*>(cuda::device_malloc(sizeof(float) * n));
      n_weights_ = n;
    }
    cuda::to_device(weights_, m.arena.data(), sizeof(float) * n);
    host_base_ = m.arena.data();
  }
  const float* weight(const float* host) const override {
    if (!host) return nullptr;
    if (!host_base_ || host < host_base_ || host >= host_base_ + n_weights_)
      fail(ErrorCode::INTERNAL, "the CUDA backend was given a weight outside the model it holds (bind_weights was not called for this model)");
    return weights_ + (host - host_base_);
  }

  void embed_rows(float* x, const float* emb, const int* tokens, int64_t T, int64_t dim) override {
    use();
    if (T == 0 || dim == 0) return;
    if (T > 0x7fffffff) fail(ErrorCode::ARG, "embed_rows: too many rows");
    TAILOR_LAUNCH(embed_rows_kernel, unsigned(T), 256)(x, emb, tokens, dim);
    cuda::check_launch("embed_rows");
  }

  // ---- ops: the kernels of kernels.h ----
  void matmul_forward(float* y, const float* x, const float* w, int64_t T, int64_t in, int64_t out, bool acc) override {
    use();
    cuda::matmul_forward(y, x, w, T, in, out, acc);
  }
  void rmsnorm_forward(float* y, const float* x, const float* w, int64_t T, int64_t dim, float eps) override {
    use();
    cuda::rmsnorm_forward(y, x, w, T, dim, eps);
  }
  void rope_forward(float* x, const int* pos, int64_t T, int n_heads, const RopeTable& rope) override {
    use();
    cuda::DeviceRope r;
    r.head_dim = rope.head_dim;
    r.interleaved = rope.interleaved;
    r.pos_scale = rope.pos_scale;
    r.inv_freq = rope_freqs(rope);
    cuda::rope_forward(x, pos, T, n_heads, r);
  }
  void kv_store(const KvView& kv, const float* k, const float* v, const int* pos, const int* slot, int64_t T) override {
    use();
    cuda::kv_store(kv, k, v, pos, slot, T);
  }
  void attention_forward(float* out, const float* q, const KvView& kv, const int* pos, const int* slot, int64_t T, int n_head, int n_kv,
                         int hd) override {
    use();
    cuda::attention_forward(out, q, kv, pos, slot, T, n_head, n_kv, hd);
  }
  void swiglu_forward(float* h, const float* g, const float* u, int64_t n) override {
    use();
    cuda::swiglu_forward(h, g, u, n);
  }
  void logprob_forward(const float* logits, int64_t R, int64_t V, const int* target, double* logprob, int* argmax) override {
    use();
    cuda::logprob_forward(logits, R, V, target, logprob, argmax);
  }
  void matmul_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, int64_t T, int64_t in, int64_t out) override {
    use();
    cuda::matmul_backward(dx, dw, dy, x, w, T, in, out);
  }
  double crossentropy_forward_backward(float* dlogits, const float* logits, const int* target, const float* weight, int64_t N, int64_t V,
                                       double scale) override {
    use();
    return cuda::crossentropy_forward_backward(dlogits, logits, target, weight, N, V, scale);
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
  std::string name_;
  float* weights_ = nullptr;         // [arena] device copy of the model's weights
  size_t n_weights_ = 0;             // floats
  const float* host_base_ = nullptr; // the host arena it mirrors
  double* rope_freq_ = nullptr;      // [head_dim/2]
  size_t rope_cap_ = 0;
  std::vector<double> rope_host_;    // what rope_freq_ holds
  std::mutex mu_;                    // jobs on several host threads may share the backend
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(int device_index) { return std::make_unique<CudaBackend>(device_index); }

}  // namespace tailor
