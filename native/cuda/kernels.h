// kernels.h — the C++ face of the CUDA kernels (native/cuda/*.cu): plain declarations, no CUDA headers,
// so C++ code compiled by the host compiler (the parity harness, later the CUDA backend) can call them.
// Every pointer an op takes is DEVICE memory; ops run asynchronously on the default stream, in order, and
// report a bad launch at once and a fault in a kernel at the next device_synchronize() (both as an
// EngineError). The semantics of each op are the CPU backend's (backend.h, cpu_backend.cpp).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "backend.h"  // KvView

namespace tailor {
namespace cuda {

// ---- device and memory (device.cu) ----
void set_device(int index);
int compute_capability();                 // of the current device: major*10 + minor (asked once per device)
int multiprocessor_count();               // of the current device (asked once per device)
void* device_malloc(size_t bytes);        // E_OOM when the device is full
void device_free(void* p) noexcept;
void to_device(void* dst, const void* src, size_t bytes);
void to_host(void* dst, const void* src, size_t bytes);
void device_memset(void* p, int value, size_t bytes);
void device_synchronize();                // waits for every queued op; throws if one of them faulted

// ---- matrix products (matmul.cu) ----
// y[T, out] = x[T, in] · W[out, in]ᵀ  (accumulate: y += ...); fp32 shared-memory tiles
void matmul_forward(float* y, const float* x, const float* w, int64_t T, int64_t in, int64_t out, bool accumulate);
// the same product from bf16 x and W (bf16 bits as uint16_t) with fp32 accumulation: tensor cores (WMMA) on
// sm_80+, the tiled kernel on sm_75; `path` forces one (TensorCores on sm_75 is E_UNSUPPORTED)
enum class Bf16Path { Auto, TensorCores, Fallback };
void matmul_forward_bf16(float* y, const uint16_t* x, const uint16_t* w, int64_t T, int64_t in, int64_t out, bool accumulate,
                         Bf16Path path = Bf16Path::Auto);
// y[T, out] (+)= x[T, in] · W[out, in]ᵀ with fp32 x and bf16 W (the backend's bf16 weights): tensor cores on
// sm_80+, where x is first rounded to bf16 into x_bf16 (T·in values of scratch); the tiled kernel (fp32 x,
// no scratch needed) on sm_75 or when forced
void matmul_forward_bf16w(float* y, const float* x, const uint16_t* w, int64_t T, int64_t in, int64_t out, bool accumulate, uint16_t* x_bf16,
                          Bf16Path path = Bf16Path::Auto);
// dx[T, in] += dy[T, out] · W[out, in] with bf16 W: tensor cores on sm_80+ (dy rounded to bf16 into dy_bf16,
// T·out values of scratch), the tiled kernel (fp32 dy, no scratch) on sm_75 or when forced
void matmul_backward_dx_bf16w(float* dx, const float* dy, const uint16_t* w, int64_t T, int64_t in, int64_t out, uint16_t* dy_bf16,
                              Bf16Path path = Bf16Path::Auto);
// the block tile of our products' kernels (the tensor-core one and the fp32 tiled one) for C[M, N] on the
// current device: 128×128 where that makes at least one block per multiprocessor, else 64×64;
// product_tile_override (for the tests and the benchmark) forces one (64 or 128; 0 back to this choice)
int product_tile_for(int64_t M, int64_t N);
void product_tile_override(int tile);
// how the tensor-core product kernel moves bf16 operands x and w (inner dimension K; N too when W's rows run
// along k, the backward's dx) to shared memory: asynchronous copies of 16 bytes, of 4, or 0 (element by
// element through registers), by the shapes' multiples of 8 or 2 and the pointers' alignment
int tc_copy_bytes(const void* x, const void* w, int64_t K, int64_t N, bool w_rows_are_k);
// dx[T, in] += dy[T, out] · W[out, in];  dW[out, in] += dyᵀ · x[T, in]   (either output may be null)
void matmul_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, int64_t T, int64_t in, int64_t out);

// ---- the same products through cuBLASLt (blaslt.cu), when the build found it (TAILOR_HAVE_CUBLASLT) ----
// Each returns false, having done nothing, when cuBLASLt is not built in or refuses or fails the call (the
// caller then runs the kernels above); fp32 compute, no TF32. matmul.cu tries them first when lt_enabled().
// y[T, out] (+)= x[T, in] · W[out, in]ᵀ
bool lt_matmul_f32(float* y, const float* x, const float* w, int64_t T, int64_t in, int64_t out, bool accumulate);
// the same from bf16 x and W (bits as uint16_t), fp32 accumulation and output
bool lt_matmul_bf16w(float* y, const uint16_t* x_bf16, const uint16_t* w_bf16, int64_t T, int64_t in, int64_t out, bool accumulate);
// dx[T, in] += dy[T, out] · W[out, in]
bool lt_matmul_backward_dx_f32(float* dx, const float* dy, const float* w, int64_t T, int64_t in, int64_t out);
// the same from bf16 dy and W, fp32 accumulation and output
bool lt_matmul_backward_dx_bf16(float* dx, const uint16_t* dy_bf16, const uint16_t* w_bf16, int64_t T, int64_t in, int64_t out);
// dW[out, in] += dy[T, out]ᵀ · x[T, in]
bool lt_matmul_backward_dw_f32(float* dw, const float* dy, const float* x, int64_t T, int64_t in, int64_t out);
bool lt_built_in();   // this build has cuBLASLt
size_t lt_workspace_bytes();  // device memory cuBLASLt's workspace holds on the current device (0 before its first use)
// built in, not disabled (TAILOR_CUBLASLT=0 in the environment, or lt_set_enabled(0)), and a handle could be
// made on the current device (made here on first use)
bool lt_enabled();
void lt_set_enabled(int on);  // for comparisons in the tests: 1 on, 0 off, -1 back to the environment's choice
std::string lt_status();      // "on", "off (why)", and the first refusal if there was one
// products cuBLASLt has computed in this process (calls of the five entry points above that returned true;
// its self-check is not counted): which path a model's products took, for the tests and the benchmark
struct LtCalls {
  uint64_t f32 = 0, bf16 = 0, dx_f32 = 0, dx_bf16 = 0, dw_f32 = 0;
};
LtCalls lt_calls();

// ---- per-token ops (pointwise.cu) ----
// dst[n] = bf16(src[n]), round to nearest even
void f32_to_bf16(uint16_t* dst, const float* src, int64_t n);
// y[T, dim] = x / rms(x) * w   (sum of squares in float64, as on the CPU)
void rmsnorm_forward(float* y, const float* x, const float* w, int64_t T, int64_t dim, float eps);
// RopeTable with its inv_freq[head_dim/2] (float64) in device memory
struct DeviceRope {
  int head_dim = 0;
  bool interleaved = false;
  double pos_scale = 1.0;
  const double* inv_freq = nullptr;
};
// x[T, n_heads*hd] rotated in place by position pos[t] (angles in float64, as on the CPU)
void rope_forward(float* x, const int* pos, int64_t T, int n_heads, const DeviceRope& rope);
// stores k/v rows [T, kv_stride] into the cache at (slot[t], pos[t])
void kv_store(const KvView& kv, const float* k, const float* v, const int* pos, const int* slot, int64_t T);
// the cache's rows copies[i].src.. → copies[i].dst.. for the n copies (device memory), each ≤ max_rows rows
void kv_copy(const KvView& kv, const KvCopy* copies, int n, int max_rows);
// h[n] = silu(g) * u   (h may be g)
void swiglu_forward(float* h, const float* g, const float* u, int64_t n);
// y[n] += x[n]
void add_inplace(float* y, const float* x, int64_t n);

// ---- attention (attention.cu) ----
// out[T, n_head*hd] = causal softmax(q kᵀ / √hd) v, token t attending to positions 0..pos[t] of slot[t] in
// the cache (GQA: query head h reads KV head h / (n_head/n_kv)); hd ≤ 256. With `scratch` (at least
// attention_forward_scratch floats), a call of few tokens over a long cache (decoding) splits each token's keys
// among blocks and merges them after (flash-decoding); without it, or where that is 0, one block per head
void attention_forward(float* out, const float* q, const KvView& kv, const int* pos, const int* slot, int64_t T, int n_head, int n_kv,
                       int hd, float* scratch = nullptr);
// the scratch floats a split attention_forward takes for T tokens over a cache of n_ctx positions a slot: 0
// unless T ≤ 8 and n_ctx ≥ 2·kAttentionSplitKeys (then a split per kAttentionSplitKeys positions)
int64_t attention_forward_scratch(int64_t T, int n_head, int hd, int n_ctx);
constexpr int kAttentionSplitKeys = 256;
// the key splits of a split attention_forward over a cache of n_ctx positions a slot
int attention_splits(int n_ctx);

// the same on bf16 tensor cores (the backend's bf16 mode, for prompts): q and the cached k, v rounded to bf16,
// p rounded to bf16 for P·V, scores and sums in fp32; blocks of 64 tokens of one slot (others: the fp32 path).
// Needs attention_tc_usable(hd), else E_UNSUPPORTED
void attention_forward_tc(float* out, const float* q, const KvView& kv, const int* pos, const int* slot, int64_t T, int n_head, int n_kv,
                          int hd);
// the backend's bf16 mode takes attention_forward_tc for calls of at least this many tokens (prompts); fewer
// (decoding) read the cache with the fp32 kernel
constexpr int64_t kAttentionTcMinTokens = 32;

// ---- losses (loss.cu) ----
// per row r of logits[R, V]: argmax[r] (the first maximum), and logprob[r] = log softmax(row)[target[r]]
// (float64 normaliser) for rows with target[r] >= 0; other rows' logprob is not written
void logprob_forward(const float* logits, int64_t R, int64_t V, const int* target, double* logprob, int* argmax);
// weighted mean cross-entropy over rows of logits[N, V] (weight 0 = ignored) returned to the host (this
// synchronises), and dlogits[N, V] = scale · ∂loss/∂logits (dlogits may be null)
double crossentropy_forward_backward(float* dlogits, const float* logits, const int* target, const float* weight, int64_t N, int64_t V,
                                     double scale);

// ---- training ops (train.cu): the float semantics of train_ops.h; backward ops ACCUMULATE (+=) ----
// y[N, D] = x·rstd·w, rstd[N] = 1/sqrt(mean(x²) + eps) saved for the backward (sum of squares in float64)
void rmsnorm_forward_train(float* y, float* rstd, const float* x, const float* w, int64_t N, int64_t D, double eps);
// dx[N, D] += r·w·dy − r³·x/D·Σ dy·w·x;  dw[D] += Σ_n dy·x·r (dw may be null)
void rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, const float* rstd, int64_t N, int64_t D);
// x[N, n_heads*hd] rotated in place by pos[n]; sign = -1 the inverse rotation (RoPE's backward)
void rope_apply(float* x, const int* pos, int64_t N, int n_heads, const DeviceRope& rope, int sign);
// causal GQA attention over B right-padded sequences of Tn tokens: q[B*Tn, nh*hd], k/v[B*Tn, nkv*hd] →
// out[B*Tn, nh*hd]; lse[B, nh, Tn] = log Σ_{j≤t} exp(q_t·k_j/√hd) of each score row, all the backward keeps
// (flash-style: the probabilities are recomputed there, never stored); hd ≤ 256
void attention_forward_train(float* out, float* lse, const float* q, const float* k, const float* v, int B, int Tn, int nh, int nkv, int hd);
// dq[B*Tn, nh*hd], dk/dv[B*Tn, nkv*hd] += ... from dout[B*Tn, nh*hd], the forward's out and lse, and q, k, v
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* out, const float* lse, const float* q, const float* k,
                        const float* v, int B, int Tn, int nh, int nkv, int hd, float* scratch = nullptr);  // scratch: B*nh*Tn floats, or null
// the floats of the saved state (lse) for these sizes: B*nh*Tn
int64_t attention_saved_floats(int B, int Tn, int nh);
// D[B, nh, Tn] = dout_t·out_t of each row (the backward's Σ_j p_tj·dp_tj), both backward paths' first step
void attention_backward_d(float* D, const float* dout, const float* out, int B, int Tn, int nh, int hd);
// the same two ops on bf16 tensor cores (attention_tc.cu), for the backend's bf16 mode: q, k, v and dout rounded
// to bf16, products accumulated in fp32, p and ds rounded to bf16 for the products they feed; lse as above (the
// two paths' lse are interchangeable only within bf16 rounding: a forward and its backward take the same path).
// Usable on sm_80+ with head_dim a multiple of 16 up to 128; elsewhere the ops fail with E_UNSUPPORTED
bool attention_tc_usable(int hd);
void attention_forward_train_tc(float* out, float* lse, const float* q, const float* k, const float* v, int B, int Tn, int nh, int nkv, int hd);
void attention_backward_tc(float* dq, float* dk, float* dv, const float* dout, const float* out, const float* lse, const float* q, const float* k,
                           const float* v, int B, int Tn, int nh, int nkv, int hd, float* scratch = nullptr);
// dg[n] += dh·u·σ(g)(1 + g(1 − σ(g)));  du[n] += dh·silu(g)
void swiglu_backward(float* dg, float* du, const float* dh, const float* g, const float* u, int64_t n);
// dtable[V, D] += dout[n, :] at row ids[n], rows added in order n = 0..N-1 (deterministic)
void embedding_backward(float* dtable, const float* dout, const int* ids, int64_t N, int64_t D);
// x[n] *= s
void scale_inplace(float* x, float s, int64_t n);
// LoRA dropout: y[i] = dropout_draw(dropout_key(seed, step, layer, target), i) < p ? 0 : x[i] / (1 − p)
// (lora_hash.h; y may be x)
void lora_dropout(float* y, const float* x, int64_t n, double p, uint64_t seed, uint64_t step, int layer, int target);
// Σ x² in float64, returned to the host (this synchronises)
double sum_squares(const float* x, int64_t n);
// AdamW on a flat arena, as Trainer::train_step on the CPU: g = grad·clip; m = β1·m + (1−β1)·g;
// v = β2·v + (1−β2)·g²; p = p·(1 − lr·wd) − lr·(m/bc1) / (√(v/bc2) + eps) (the last line in float64)
void adamw_step(float* p, const float* grad, float* m, float* v, int64_t n, float clip, float beta1, float beta2, float eps, float weight_decay,
                double lr, double bc1, double bc2);

// ---- sampling (sample.cu) ----
// the k best of x[n]/temperature by value, ties by the lower index, into vals[k], ids[k] best first
// (the host Sampler's candidates); 1 ≤ k ≤ min(n, 1024)
void topk_scaled(float* vals, int* ids, const float* x, int64_t n, int k, float temperature);

// ---- pruning statistics (prune.cu) ----
// over W[rows, cols] (fp32 w, or bf16 w_bf16 when not null): sums[rows] per row, or (by_column) sums[cols]
// per column, of term(w, g) in float64
void wg_term_sums(double* sums, const float* w, const uint16_t* w_bf16, const float* g, int64_t rows, int64_t cols, WgTerm term, bool by_column);

}  // namespace cuda
}  // namespace tailor
