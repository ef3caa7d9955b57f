// cublaslt_emu.cpp — cuBLASLt's matmul on the CPU emulator, built as a shared library
// (libtailor_cublaslt_emu.so) that the emulator build of lt_library.cu opens at run time exactly as the real
// build opens libcublasLt: by dlopen, each entry point by its C name, with the types of
// native/cuda/cublaslt_api.h (checked below against every function defined here). The heuristic offers one
// algorithm, and cublasLtMatmul computes D = alpha·op(A)·op(B) + beta·C in column-major order, each matrix
// described by its layout as stored (rows, cols, ld ≥ rows, element type) and op() by TRANSA/TRANSB, with
// cuBLASLt's checks of shapes and types: op(A) is m×k, op(B) k×n, C and D m×n. Supported: compute type
// 32F with scale type 32F, A and B both CUDA_R_32F or both CUDA_R_16BF, C and D CUDA_R_32F (anything else
// is CUBLAS_STATUS_NOT_SUPPORTED). The products accumulate in fp32. When beta is 0, C is not read (so C may
// hold NaN), as documented; alpha and beta are host pointers (the default pointer mode). The products are
// queued on the caller's stream through the emulator's own queues, which live in the binary that opened
// this library and are handed over by cuemuLtBind before anything else is called.
#include <cstdlib>
#include <cstring>
#include <new>
#include <type_traits>
#include <vector>

#include "cublaslt_api.h"

using namespace tailor::cuda::lt;

namespace tailor {
namespace cuda {
namespace lt {
struct Context {
  int device = 0;
};
struct MatmulDescOpaque {
  int32_t compute;
  int32_t scale;
  int32_t transa = kOpN, transb = kOpN;
};
struct LayoutOpaque {
  int32_t type;
  uint64_t rows, cols;
  int64_t ld;
};
struct PreferenceOpaque {
  uint64_t max_workspace = 0;
};
}  // namespace lt
}  // namespace cuda
}  // namespace tailor

namespace {
EmuHooks g_hooks = {};  // set by cuemuLtBind
}  // namespace

namespace {
bool layout_ok(const LayoutOpaque* l) { return l && l->ld >= int64_t(l->rows) && l->ld >= 1; }

float elem(const void* p, int32_t t, uint64_t r, uint64_t c, int64_t ld) {
  const size_t i = size_t(c) * size_t(ld) + size_t(r);
  if (t == kR16BF) {
    const uint32_t bits = uint32_t(static_cast<const uint16_t*>(p)[i]) << 16;  // bf16 → fp32 is exact
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }
  return static_cast<const float*>(p)[i];
}

// the operation's checks, shared by the heuristic and the matmul
Status check(MatmulDesc d, Layout A, Layout B, Layout C,
                     Layout D, uint64_t* m, uint64_t* n, uint64_t* k) {
  if (!d || !layout_ok(A) || !layout_ok(B) || !layout_ok(C) || !layout_ok(D)) return kInvalidValue;
  if (d->compute != kCompute32F || d->scale != kR32F) return kNotSupported;
  if (A->type != B->type || (A->type != kR32F && A->type != kR16BF)) return kNotSupported;
  if (C->type != kR32F || D->type != kR32F) return kNotSupported;
  if ((d->transa != kOpN && d->transa != kOpT) || (d->transb != kOpN && d->transb != kOpT))
    return kNotSupported;
  const bool ta = d->transa == kOpT, tb = d->transb == kOpT;
  *m = ta ? A->cols : A->rows;
  *k = ta ? A->rows : A->cols;
  const uint64_t kb = tb ? B->cols : B->rows;
  *n = tb ? B->rows : B->cols;
  if (kb != *k || C->rows != *m || C->cols != *n || D->rows != *m || D->cols != *n) return kInvalidValue;
  if (C->ld != D->ld) return kInvalidValue;  // (in place: C and D share a layout)
  return kSuccess;
}
}  // namespace

// every entry point, with the C name and the exact type lt_library.cu resolves it to
#define TAILOR_LT_EXPORT extern "C" __attribute__((visibility("default")))

TAILOR_LT_EXPORT void cuemuLtBind(const EmuHooks* hooks) { g_hooks = *hooks; }
TAILOR_LT_EXPORT size_t cublasLtGetVersion() { return 0; }  // (0: the emulated library)

TAILOR_LT_EXPORT Status cublasLtCreate(Handle* h) {
  if (!h) return kInvalidValue;
  if (!g_hooks.device_count || g_hooks.device_count() == 0) return kNotInitialized;  // (unbound, or no device)
  // a library that cannot run on this device (as a cuBLASLt newer than the driver answers), for the tests
  if (std::getenv("TAILOR_CUEMU_LT_REFUSE")) return kArchMismatch;
  *h = new Context;
  return kSuccess;
}
TAILOR_LT_EXPORT Status cublasLtDestroy(Handle h) {
  if (!h) return kNotInitialized;
  delete h;
  return kSuccess;
}
TAILOR_LT_EXPORT Status cublasLtMatmulDescCreate(MatmulDesc* d, int32_t compute, int32_t scale) {
  if (!d) return kInvalidValue;
  *d = new MatmulDescOpaque{compute, scale};
  return kSuccess;
}
TAILOR_LT_EXPORT Status cublasLtMatmulDescDestroy(MatmulDesc d) {
  delete d;
  return kSuccess;
}
TAILOR_LT_EXPORT Status cublasLtMatmulDescSetAttribute(MatmulDesc d, int32_t attr, const void* buf, size_t size) {
  if (!d || !buf) return kInvalidValue;
  int32_t v;
  if (size != sizeof v) return kInvalidValue;
  std::memcpy(&v, buf, sizeof v);
  switch (attr) {
    case kDescTransA: d->transa = v; return kSuccess;
    case kDescTransB: d->transb = v; return kSuccess;
    case kDescComputeType: d->compute = v; return kSuccess;
    case kDescScaleType: d->scale = v; return kSuccess;
    default: return kNotSupported;  // (not emulated)
  }
}
TAILOR_LT_EXPORT Status cublasLtMatrixLayoutCreate(Layout* l, int32_t type, uint64_t rows, uint64_t cols, int64_t ld) {
  if (!l) return kInvalidValue;
  *l = new LayoutOpaque{type, rows, cols, ld};
  return kSuccess;
}
TAILOR_LT_EXPORT Status cublasLtMatrixLayoutDestroy(Layout l) {
  delete l;
  return kSuccess;
}
TAILOR_LT_EXPORT Status cublasLtMatmulPreferenceCreate(Preference* p) {
  if (!p) return kInvalidValue;
  *p = new PreferenceOpaque;
  return kSuccess;
}
TAILOR_LT_EXPORT Status cublasLtMatmulPreferenceDestroy(Preference p) {
  delete p;
  return kSuccess;
}
TAILOR_LT_EXPORT Status cublasLtMatmulPreferenceSetAttribute(Preference p, int32_t attr, const void* buf,
                                                    size_t size) {
  if (!p || !buf) return kInvalidValue;
  switch (attr) {
    case kPrefMaxWorkspaceBytes:
      if (size != sizeof(uint64_t)) return kInvalidValue;
      std::memcpy(&p->max_workspace, buf, sizeof(uint64_t));
      return kSuccess;
    case kPrefMinAlignmentA:
    case kPrefMinAlignmentB:
    case kPrefMinAlignmentC:
    case kPrefMinAlignmentD:
      return size == sizeof(uint32_t) ? kSuccess : kInvalidValue;
    default: return kNotSupported;
  }
}
TAILOR_LT_EXPORT Status cublasLtMatmulAlgoGetHeuristic(Handle h, MatmulDesc d, Layout A, Layout B,
                                              Layout C, Layout D, Preference pref,
                                              int requested, HeuristicResult results[], int* returned) {
  if (!h || !pref || !results || !returned || requested < 1) return kInvalidValue;
  uint64_t m, n, k;
  Status s = check(d, A, B, C, D, &m, &n, &k);
  if (s != kSuccess) return s;
  std::memset(&results[0], 0, sizeof results[0]);
  results[0].algo.data[0] = 0xC0FFEE;  // the one emulated algorithm: no workspace
  results[0].workspaceSize = 0;
  results[0].state = kSuccess;
  results[0].wavesCount = 1.f;
  *returned = 1;
  return kSuccess;
}
TAILOR_LT_EXPORT Status cublasLtMatmul(Handle h, MatmulDesc d, const void* alpha, const void* A, Layout Ad,
                              const void* B, Layout Bd, const void* beta, const void* C, Layout Cd, void* D,
                              Layout Dd, const Algo* algo, void* workspace, size_t workspace_bytes,
                              cudaStream_t stream) {
  if (!h || !alpha || !beta) return kInvalidValue;
  uint64_t m, n, k;
  Status s = check(d, Ad, Bd, Cd, Dd, &m, &n, &k);
  if (s != kSuccess) return s;
  if (algo && algo->data[0] != 0xC0FFEE) return kInvalidValue;
  (void)workspace, (void)workspace_bytes;
  if (m == 0 || n == 0) return kSuccess;
  if ((k && (!A || !B)) || !D) return kInvalidValue;
  float a, b;
  std::memcpy(&a, alpha, 4);
  std::memcpy(&b, beta, 4);
  if (b != 0.f && !C) return kInvalidValue;
  const bool ta = d->transa == kOpT, tb = d->transb == kOpT;
  // a library whose answers are off (as one whose ABI differs from our declarations would be), for the tests
  const float wrong = std::getenv("TAILOR_CUEMU_LT_WRONG") ? 0.5f : 0.f;
  // queued on the stream like a kernel, with what it needs of the descriptors (the caller may destroy them)
  const int32_t at = Ad->type, bt = Bd->type;
  const int64_t lda = Ad->ld, ldb = Bd->ld, ldc = Cd->ld, ldd = Dd->ld;
  g_hooks.enqueue(stream, [=]() {
    // the whole of D is computed before it is written, so C may alias D (in place)
    std::vector<float> out(size_t(m) * size_t(n));
    for (uint64_t j = 0; j < n; j++)
      for (uint64_t i = 0; i < m; i++) {
        float acc = 0.f;
        for (uint64_t p = 0; p < k; p++) {
          const float av = ta ? elem(A, at, p, i, lda) : elem(A, at, i, p, lda);
          const float bv = tb ? elem(B, bt, j, p, ldb) : elem(B, bt, p, j, ldb);
          acc += av * bv;
        }
        float v = a * acc + wrong;
        if (b != 0.f) v += b * elem(C, kR32F, i, j, ldc);
        out[size_t(j) * m + i] = v;
      }
    float* dp = static_cast<float*>(D);
    for (uint64_t j = 0; j < n; j++)
      for (uint64_t i = 0; i < m; i++) dp[size_t(j) * size_t(ldd) + i] = out[size_t(j) * m + i];
  });
  return kSuccess;
}

static_assert(std::is_same<decltype(&cuemuLtBind), EmuBindFn>::value, "cuemuLtBind");
static_assert(std::is_same<decltype(&cublasLtGetVersion), GetVersionFn>::value, "cublasLtGetVersion");
static_assert(std::is_same<decltype(&cublasLtCreate), CreateFn>::value, "cublasLtCreate");
static_assert(std::is_same<decltype(&cublasLtDestroy), DestroyFn>::value, "cublasLtDestroy");
static_assert(std::is_same<decltype(&cublasLtMatmulDescCreate), MatmulDescCreateFn>::value, "cublasLtMatmulDescCreate");
static_assert(std::is_same<decltype(&cublasLtMatmulDescDestroy), MatmulDescDestroyFn>::value, "cublasLtMatmulDescDestroy");
static_assert(std::is_same<decltype(&cublasLtMatmulDescSetAttribute), MatmulDescSetAttributeFn>::value, "cublasLtMatmulDescSetAttribute");
static_assert(std::is_same<decltype(&cublasLtMatrixLayoutCreate), LayoutCreateFn>::value, "cublasLtMatrixLayoutCreate");
static_assert(std::is_same<decltype(&cublasLtMatrixLayoutDestroy), LayoutDestroyFn>::value, "cublasLtMatrixLayoutDestroy");
static_assert(std::is_same<decltype(&cublasLtMatmulPreferenceCreate), PreferenceCreateFn>::value, "cublasLtMatmulPreferenceCreate");
static_assert(std::is_same<decltype(&cublasLtMatmulPreferenceDestroy), PreferenceDestroyFn>::value, "cublasLtMatmulPreferenceDestroy");
static_assert(std::is_same<decltype(&cublasLtMatmulPreferenceSetAttribute), PreferenceSetAttributeFn>::value, "cublasLtMatmulPreferenceSetAttribute");
static_assert(std::is_same<decltype(&cublasLtMatmulAlgoGetHeuristic), AlgoGetHeuristicFn>::value, "cublasLtMatmulAlgoGetHeuristic");
static_assert(std::is_same<decltype(&cublasLtMatmul), MatmulFn>::value, "cublasLtMatmul");
