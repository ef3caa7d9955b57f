// mma.h — the emulator's stand-in for CUDA's WMMA API (see cuemu.h). A real fragment is spread over the
// 32 lanes of a warp in an unspecified layout; here an a or b fragment is held whole by every lane, and an
// accumulator's element i belongs to lane i % 32 (the layout is opaque to correct code, so the results are
// the same): mma_sync computes a lane's own elements and a store writes each element from its lane, so that
// reading another lane's element without a barrier is a race under ThreadSanitizer as it is on the GPU.
// Products of bf16/half inputs are exact in fp32 and accumulate in fp32, as on the tensor cores (the order
// of the sums may differ).
#pragma once
#include <cstdint>
#include <cstdio>
#include <type_traits>

#include "cuda_bf16.h"
#include "cuemu.h"

namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <typename Use, int M, int N, int K, typename T, typename Layout = void>
struct fragment {
  static constexpr int rows = std::is_same<Use, matrix_b>::value ? K : M;
  static constexpr int cols = std::is_same<Use, matrix_a>::value ? K : N;
  static constexpr int num_elements = rows * cols;
  float x[rows * cols];  // [rows, cols] row-major, whatever the memory layout
};

// CUDA's demands on every load/store: the pointer 256-bit aligned, ldm a multiple of 16 bytes (8 bf16/half
// elements, 4 floats). The hardware's behaviour otherwise is undefined; here it is a trap naming the call
inline void check_operand(const void* p, unsigned ldm, size_t elem_bytes, const char* what) {
  if (reinterpret_cast<uintptr_t>(p) % 32 == 0 && (size_t(ldm) * elem_bytes) % 16 == 0) return;
  std::fprintf(stderr, "cuemu: wmma::%s: pointer %p %s 256-bit aligned, ldm %u (%zu bytes per element) %s a multiple of 16 bytes\n", what, p,
               reinterpret_cast<uintptr_t>(p) % 32 ? "NOT" : "is", ldm, elem_bytes, (size_t(ldm) * elem_bytes) % 16 ? "NOT" : "is");
  cuemu::trap();
}

inline float to_f32(float v) { return v; }
inline float to_f32(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename Use, int M, int N, int K, typename T, typename L>
void fill_fragment(fragment<Use, M, N, K, T, L>& f, float v) {
  for (float& e : f.x) e = v;
}

// a/b fragments: the layout is part of the type
template <typename Use, int M, int N, int K, typename T, typename L, typename P>
void load_matrix_sync(fragment<Use, M, N, K, T, L>& f, const P* p, unsigned ldm) {
  using Fr = fragment<Use, M, N, K, T, L>;
  check_operand(p, ldm, sizeof(P), "load_matrix_sync");
  for (int r = 0; r < Fr::rows; r++)
    for (int c = 0; c < Fr::cols; c++)
      f.x[r * Fr::cols + c] = to_f32(std::is_same<L, col_major>::value ? p[size_t(c) * ldm + r] : p[size_t(r) * ldm + c]);
}
template <int M, int N, int K>
void load_matrix_sync(fragment<accumulator, M, N, K, float>& f, const float* p, unsigned ldm, layout_t layout) {
  check_operand(p, ldm, sizeof(float), "load_matrix_sync");
  for (int r = 0; r < M; r++)
    for (int c = 0; c < N; c++) f.x[r * N + c] = layout == mem_col_major ? p[size_t(c) * ldm + r] : p[size_t(r) * ldm + c];
}
template <int M, int N, int K>
void store_matrix_sync(float* p, const fragment<accumulator, M, N, K, float>& f, unsigned ldm, layout_t layout) {
  check_operand(p, ldm, sizeof(float), "store_matrix_sync");
  const int me = cuemu::lane();
  for (int r = 0; r < M; r++)
    for (int c = 0; c < N; c++)
      if ((r * N + c) % 32 == me) (layout == mem_col_major ? p[size_t(c) * ldm + r] : p[size_t(r) * ldm + c]) = f.x[r * N + c];
}
// d = a·b + c, for the elements this lane holds (i % 32 == lane, those store_matrix_sync writes from it): as
// on the GPU, a lane has its share of the accumulator, so the warp computes the tile once, not 32 times; the
// other elements of d are left as they were (no correct code reads them)
template <int M, int N, int K, typename TA, typename LA, typename TB, typename LB>
void mma_sync(fragment<accumulator, M, N, K, float>& d, const fragment<matrix_a, M, N, K, TA, LA>& a,
              const fragment<matrix_b, M, N, K, TB, LB>& b, const fragment<accumulator, M, N, K, float>& c) {
  const int me = cuemu::lane();
  for (int i = me; i < M * N; i += 32) {
    const int m = i / N, n = i % N;
    float s = c.x[i];
    for (int k = 0; k < K; k++) s += a.x[m * K + k] * b.x[k * N + n];
    d.x[i] = s;
  }
}

}  // namespace wmma
}  // namespace nvcuda
