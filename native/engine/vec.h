// vec.h — small vector kernels shared by the CPU ops: dot, axpy and a vectorised exp (AVX2 + FMA when
// the build targets it, portable loops otherwise). expf8 follows the Cephes polynomial: relative error
// about 1e-7 over the range used by softmax (inputs ≤ 0).
#pragma once
#include <cmath>
#include <cstdint>

// (MSVC defines __AVX2__ under /arch:AVX2, which also lets it use FMA, but never __FMA__)
#if defined(__AVX2__) && (defined(__FMA__) || defined(_MSC_VER))
#include <immintrin.h>
#define TAILOR_AVX2 1
#endif

namespace tailor {

#if TAILOR_AVX2
inline __m256 expf8(__m256 x) {
  const __m256 hi = _mm256_set1_ps(88.3762626647949f), lo = _mm256_set1_ps(-87.3365447504f);
  __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
  x = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
  __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  __m256 r2 = _mm256_mul_ps(r, r);
  __m256 e = _mm256_add_ps(_mm256_fmadd_ps(p, r2, r), _mm256_set1_ps(1.f));
  __m256i pow2 = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  e = _mm256_mul_ps(e, _mm256_castsi256_ps(pow2));
  return _mm256_andnot_ps(under, e);
}

inline float hsum8(__m256 v) {
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
  return _mm_cvtss_f32(h);
}
#endif

inline float dot(const float* a, const float* b, int64_t n) {
#if TAILOR_AVX2
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
  }
  for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  float s = hsum8(_mm256_add_ps(s0, s1));
  for (; i < n; i++) s += a[i] * b[i];
  return s;
#else
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
  }
  for (; i < n; i++) s0 += a[i] * b[i];
  return (s0 + s1) + (s2 + s3);
#endif
}

// y[n] += a * x[n]
inline void axpy(float* y, float a, const float* x, int64_t n) {
  int64_t i = 0;
#if TAILOR_AVX2
  __m256 va = _mm256_set1_ps(a);
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
#endif
  for (; i < n; i++) y[i] += a * x[i];
}

// x[i] = exp(x[i] - mx) in place; returns Σ in double
inline double exp_shift_sum(float* x, int64_t n, float mx) {
  double sum = 0;
  int64_t i = 0;
#if TAILOR_AVX2
  __m256 vm = _mm256_set1_ps(mx), acc = _mm256_setzero_ps();
  int64_t blk = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 e = expf8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
    _mm256_storeu_ps(x + i, e);
    acc = _mm256_add_ps(acc, e);
    if (++blk == 64) {  // flush to double every 512 values to keep the sum exact enough
      sum += hsum8(acc);
      acc = _mm256_setzero_ps();
      blk = 0;
    }
  }
  sum += hsum8(acc);
#endif
  for (; i < n; i++) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  return sum;
}

// Σ exp(x[i] - mx) in double without modifying x
inline double exp_shift_sum_const(const float* x, int64_t n, float mx) {
  double sum = 0;
  int64_t i = 0;
#if TAILOR_AVX2
  __m256 vm = _mm256_set1_ps(mx), acc = _mm256_setzero_ps();
  int64_t blk = 0;
  for (; i + 8 <= n; i += 8) {
    acc = _mm256_add_ps(acc, expf8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm)));
    if (++blk == 64) {
      sum += hsum8(acc);
      acc = _mm256_setzero_ps();
      blk = 0;
    }
  }
  sum += hsum8(acc);
#endif
  for (; i < n; i++) sum += std::exp(double(x[i]) - mx);
  return sum;
}

}  // namespace tailor
