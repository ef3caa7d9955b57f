// cudacheck.h — what the files of tailor_cudacheck share (cudacheck.cpp: the forward kernels and main;
// cudacheck_train.cpp: the training ops; cudabench.cpp: timings): the row counters, seeded inputs, device
// copies of host vectors, bf16 helpers and the row printer with its tolerances.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend.h"
#include "bf16.h"
#include "forward.h"
#include "kernels.h"
#include "model.h"

namespace cudacheck {

namespace cu = tailor::cuda;

// forces the block tile of our products' kernels (64 or 128) while it lives, then gives the choice back to them
struct ForcedTile {
  explicit ForcedTile(int tile) { cu::product_tile_override(tile); }
  ~ForcedTile() { cu::product_tile_override(0); }
  ForcedTile(const ForcedTile&) = delete;
  ForcedTile& operator=(const ForcedTile&) = delete;
};

inline int failures = 0, checks = 0;

// The sanitizer builds' runs leave the larger cases out. --races: the harness in the emulator's ThreadSanitizer
// build (TAILOR_TSAN, native/test/cuemu/cuemu.cpp), where every memory access of a kernel is checked against
// the other threads' and costs ~50 times more: cases of more than 5M multiply-adds. --memcheck: its
// AddressSanitizer build, ~3 times slower: the LLaMA-sized cases, over 50M (the product with T=64 in=2048
// out=5632 took half of that run). Left-out cases are counted; each kernel and each of its paths (tiles,
// tails, bf16, transposes, the split decode) still runs on the smaller ones, and every other row runs as it
// is. 0: every case.
inline int64_t row_work_limit = 0;
inline int left_out = 0;
inline bool left_out_for_sanitizer(int64_t work) {
  if (row_work_limit <= 0 || work <= row_work_limit) return false;
  left_out++;
  return true;
}
inline std::mt19937_64 rng(20240531);

inline std::vector<float> randf(size_t n, float scale = 1.f) {
  std::normal_distribution<float> nd(0.f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = nd(rng);
  return v;
}

// a device copy of a host vector (or n uninitialised elements), freed with the object
template <typename T>
struct Dev {
  T* p = nullptr;
  size_t n = 0;
  explicit Dev(size_t count) : p(static_cast<T*>(cu::device_malloc(count * sizeof(T)))), n(count) {}
  explicit Dev(const std::vector<T>& h) : Dev(h.size()) { cu::to_device(p, h.data(), h.size() * sizeof(T)); }
  Dev(const Dev&) = delete;
  ~Dev() { cu::device_free(p); }
  std::vector<T> get() const {
    std::vector<T> h(n);
    cu::to_host(h.data(), p, n * sizeof(T));
    return h;
  }
};

// the host's bf16 (bf16.h)
using tailor::bf16_bits;
using tailor::bf16_floats;
using tailor::bf16_round;
using tailor::bf16_value;
using tailor::bf16_vector;
using tailor::rounded_bf16;

// one table row: normwise error of got against ref (non-finite values fail)
template <typename T>
void report(const char* op, const std::string& what, const std::vector<T>& got, const std::vector<T>& ref, double tol) {
  double diff = 0, scale = 0;
  bool finite = got.size() == ref.size();
  for (size_t i = 0; i < got.size() && i < ref.size(); i++) {
    double g = double(got[i]), r = double(ref[i]);
    if (!std::isfinite(g) && !(std::isnan(g) && std::isnan(r)) && g != r) finite = false;
    if (std::isfinite(g) && std::isfinite(r)) diff = std::max(diff, std::fabs(g - r));
    if (std::isfinite(r)) scale = std::max(scale, std::fabs(r));
  }
  double rel = diff / std::max(scale, 1e-30);
  bool ok = finite && rel <= tol;
  checks++;
  if (!ok) failures++;
  std::printf("%-22s %-44s %11.3e %11.3e %9.1e  %s\n", op, what.c_str(), diff, rel, tol, ok ? "ok" : finite ? "FAIL" : "FAIL (non-finite)");
}

// one pass/fail table row with a scalar difference (the whole-model and training rows)
inline void row(const char* op, const std::string& what, double diff, double tol, bool ok, const std::string& extra = "") {
  checks++;
  if (!ok) failures++;
  std::printf("%-22s %-44s %11.3e %11s %9.1e  %s%s\n", op, what.c_str(), diff, "", tol, ok ? "ok" : "FAIL", extra.c_str());
}

inline void note(const char* op, const std::string& what, const std::string& msg) { std::printf("%-22s %-44s %s\n", op, what.c_str(), msg.c_str()); }

inline const double kF32 = 1e-4;  // fp32 kernels against the CPU: a different summation order, nothing more
inline const double kBf16 = 1e-2; // bf16 inputs against fp32 ones: within bf16 rounding (8-bit mantissa)
// a bf16 kernel against a float64 model of its own roundings (the same values rounded at the same points):
// what is left is fp32 summation order and, now and then, a value that lands on the other side of a bf16
// rounding boundary (one bf16 step of that one term). One bf16 step (2^-8) relative to the largest value:
// a term lost, doubled or misplaced costs far more
inline const double kBf16Model = 4e-3;

inline std::string shape(int64_t T, int64_t in, int64_t out, bool acc) {
  return "T=" + std::to_string(T) + " in=" + std::to_string(in) + " out=" + std::to_string(out) + (acc ? " +=" : "");
}

inline std::string nd(int64_t N, int64_t D) { return "N=" + std::to_string(N) + " D=" + std::to_string(D); }

// the RoPE table of a head size, layout and scaling (forward.h's make_rope_table on a minimal Config)
inline tailor::RopeTable rope_table(int hd, bool interleaved, tailor::RopeScalingType type, float factor, float theta) {
  tailor::Config c;
  c.head_dim = hd;
  c.rope_interleaved = interleaved;
  c.rope_theta = theta;
  c.rope_scaling.type = type;
  c.rope_scaling.factor = factor;
  return tailor::make_rope_table(c);
}

// the kernels' view of a RopeTable whose inv_freq is already on the device (inv_freq: its copy)
inline cu::DeviceRope device_rope(const tailor::RopeTable& r, const double* inv_freq) {
  cu::DeviceRope dr;
  dr.head_dim = r.head_dim;
  dr.interleaved = r.interleaved;
  dr.pos_scale = r.pos_scale;
  dr.inv_freq = inv_freq;
  return dr;
}

// the CUDA backend the whole-model rows use: 64 KiB staging buffers, so that even the test models'
// weight uploads go through many chunks of the copy stream's pipeline (cuda/transfer.h)
inline std::unique_ptr<tailor::Backend> harness_backend(int device, bool bf16 = false) {
  tailor::BackendOptions bo;
  bo.bf16_weights = bf16;
  bo.staging_bytes = size_t(64) << 10;
  return tailor::make_cuda_backend(device, bo);
}

// host↔device copies through the copy stream (cudacheck_transfer.cpp)
void check_transfers();

}  // namespace cudacheck
