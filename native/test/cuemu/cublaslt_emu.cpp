// cublaslt_emu.cpp — cuBLASLt's matmul on the CPU emulator (see cublasLt.h): the heuristic offers one
// algorithm, and cublasLtMatmul computes D = alpha·op(A)·op(B) + beta·C in column-major order, each matrix
// described by its layout as stored (rows, cols, ld ≥ rows, element type) and op() by TRANSA/TRANSB, with
// cuBLASLt's checks of shapes and types: op(A) is m×k, op(B) k×n, C and D m×n. Supported: compute type
// 32F with scale type 32F, A and B both CUDA_R_32F or both CUDA_R_16BF, C and D CUDA_R_32F (anything else
// is CUBLAS_STATUS_NOT_SUPPORTED). The products accumulate in fp32. When beta is 0, C is not read (so C may
// hold NaN), as documented; alpha and beta are host pointers (the default pointer mode).
#include <cstring>
#include <new>
#include <vector>

#include "cublasLt.h"
#include "cuda_bf16.h"

struct cuemuLtContext {
  int device = 0;
};
struct cuemuLtMatmulDesc {
  cublasComputeType_t compute;
  cudaDataType_t scale;
  int32_t transa = CUBLAS_OP_N, transb = CUBLAS_OP_N;
};
struct cuemuLtMatrixLayout {
  cudaDataType type;
  uint64_t rows, cols;
  int64_t ld;
};
struct cuemuLtMatmulPreference {
  uint64_t max_workspace = 0;
};

namespace {
bool layout_ok(const cuemuLtMatrixLayout* l) { return l && l->ld >= int64_t(l->rows) && l->ld >= 1; }

float elem(const void* p, cudaDataType t, uint64_t r, uint64_t c, int64_t ld) {
  const size_t i = size_t(c) * size_t(ld) + size_t(r);
  if (t == CUDA_R_16BF) return __bfloat162float(__ushort_as_bfloat16(static_cast<const uint16_t*>(p)[i]));
  return static_cast<const float*>(p)[i];
}

// the operation's checks, shared by the heuristic and the matmul
cublasStatus_t check(cublasLtMatmulDesc_t d, cublasLtMatrixLayout_t A, cublasLtMatrixLayout_t B, cublasLtMatrixLayout_t C,
                     cublasLtMatrixLayout_t D, uint64_t* m, uint64_t* n, uint64_t* k) {
  if (!d || !layout_ok(A) || !layout_ok(B) || !layout_ok(C) || !layout_ok(D)) return CUBLAS_STATUS_INVALID_VALUE;
  if (d->compute != CUBLAS_COMPUTE_32F || d->scale != CUDA_R_32F) return CUBLAS_STATUS_NOT_SUPPORTED;
  if (A->type != B->type || (A->type != CUDA_R_32F && A->type != CUDA_R_16BF)) return CUBLAS_STATUS_NOT_SUPPORTED;
  if (C->type != CUDA_R_32F || D->type != CUDA_R_32F) return CUBLAS_STATUS_NOT_SUPPORTED;
  if ((d->transa != CUBLAS_OP_N && d->transa != CUBLAS_OP_T) || (d->transb != CUBLAS_OP_N && d->transb != CUBLAS_OP_T))
    return CUBLAS_STATUS_NOT_SUPPORTED;
  const bool ta = d->transa == CUBLAS_OP_T, tb = d->transb == CUBLAS_OP_T;
  *m = ta ? A->cols : A->rows;
  *k = ta ? A->rows : A->cols;
  const uint64_t kb = tb ? B->cols : B->rows;
  *n = tb ? B->rows : B->cols;
  if (kb != *k || C->rows != *m || C->cols != *n || D->rows != *m || D->cols != *n) return CUBLAS_STATUS_INVALID_VALUE;
  if (C->ld != D->ld) return CUBLAS_STATUS_INVALID_VALUE;  // (in place: C and D share a layout)
  return CUBLAS_STATUS_SUCCESS;
}
}  // namespace

cublasStatus_t cublasLtCreate(cublasLtHandle_t* h) {
  if (!h) return CUBLAS_STATUS_INVALID_VALUE;
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) return CUBLAS_STATUS_NOT_INITIALIZED;
  *h = new cuemuLtContext;
  cudaGetDevice(&(*h)->device);
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtDestroy(cublasLtHandle_t h) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  delete h;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t* d, cublasComputeType_t compute, cudaDataType_t scale) {
  if (!d) return CUBLAS_STATUS_INVALID_VALUE;
  *d = new cuemuLtMatmulDesc{compute, scale};
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d) {
  delete d;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t attr, const void* buf, size_t size) {
  if (!d || !buf) return CUBLAS_STATUS_INVALID_VALUE;
  int32_t v;
  if (size != sizeof v) return CUBLAS_STATUS_INVALID_VALUE;
  std::memcpy(&v, buf, sizeof v);
  switch (attr) {
    case CUBLASLT_MATMUL_DESC_TRANSA: d->transa = v; return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_DESC_TRANSB: d->transb = v; return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_DESC_COMPUTE_TYPE: d->compute = cublasComputeType_t(v); return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_DESC_SCALE_TYPE: d->scale = cudaDataType_t(v); return CUBLAS_STATUS_SUCCESS;
    default: return CUBLAS_STATUS_NOT_SUPPORTED;  // (not emulated)
  }
}
cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t* l, cudaDataType type, uint64_t rows, uint64_t cols, int64_t ld) {
  if (!l) return CUBLAS_STATUS_INVALID_VALUE;
  *l = new cuemuLtMatrixLayout{type, rows, cols, ld};
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l) {
  delete l;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t* p) {
  if (!p) return CUBLAS_STATUS_INVALID_VALUE;
  *p = new cuemuLtMatmulPreference;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p) {
  delete p;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t p, cublasLtMatmulPreferenceAttributes_t attr, const void* buf,
                                                    size_t size) {
  if (!p || !buf) return CUBLAS_STATUS_INVALID_VALUE;
  switch (attr) {
    case CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES:
      if (size != sizeof(uint64_t)) return CUBLAS_STATUS_INVALID_VALUE;
      std::memcpy(&p->max_workspace, buf, sizeof(uint64_t));
      return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES:
      return size == sizeof(uint32_t) ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
    default: return CUBLAS_STATUS_NOT_SUPPORTED;
  }
}
cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t h, cublasLtMatmulDesc_t d, cublasLtMatrixLayout_t A, cublasLtMatrixLayout_t B,
                                              cublasLtMatrixLayout_t C, cublasLtMatrixLayout_t D, cublasLtMatmulPreference_t pref,
                                              int requested, cublasLtMatmulHeuristicResult_t results[], int* returned) {
  if (!h || !pref || !results || !returned || requested < 1) return CUBLAS_STATUS_INVALID_VALUE;
  uint64_t m, n, k;
  cublasStatus_t s = check(d, A, B, C, D, &m, &n, &k);
  if (s != CUBLAS_STATUS_SUCCESS) return s;
  std::memset(&results[0], 0, sizeof results[0]);
  results[0].algo.data[0] = 0xC0FFEE;  // the one emulated algorithm: no workspace
  results[0].workspaceSize = 0;
  results[0].state = CUBLAS_STATUS_SUCCESS;
  results[0].wavesCount = 1.f;
  *returned = 1;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmul(cublasLtHandle_t h, cublasLtMatmulDesc_t d, const void* alpha, const void* A, cublasLtMatrixLayout_t Ad,
                              const void* B, cublasLtMatrixLayout_t Bd, const void* beta, const void* C, cublasLtMatrixLayout_t Cd, void* D,
                              cublasLtMatrixLayout_t Dd, const cublasLtMatmulAlgo_t* algo, void* workspace, size_t workspace_bytes,
                              cudaStream_t stream) {
  if (!h || !alpha || !beta) return CUBLAS_STATUS_INVALID_VALUE;
  uint64_t m, n, k;
  cublasStatus_t s = check(d, Ad, Bd, Cd, Dd, &m, &n, &k);
  if (s != CUBLAS_STATUS_SUCCESS) return s;
  if (algo && algo->data[0] != 0xC0FFEE) return CUBLAS_STATUS_INVALID_VALUE;
  (void)workspace, (void)workspace_bytes;
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  if ((k && (!A || !B)) || !D) return CUBLAS_STATUS_INVALID_VALUE;
  float a, b;
  std::memcpy(&a, alpha, 4);
  std::memcpy(&b, beta, 4);
  if (b != 0.f && !C) return CUBLAS_STATUS_INVALID_VALUE;
  const bool ta = d->transa == CUBLAS_OP_T, tb = d->transb == CUBLAS_OP_T;
  // queued on the stream like a kernel, with what it needs of the descriptors (the caller may destroy them)
  const cudaDataType at = Ad->type, bt = Bd->type;
  const int64_t lda = Ad->ld, ldb = Bd->ld, ldc = Cd->ld, ldd = Dd->ld;
  cuemu::enqueue(stream, [=]() {
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
        float v = a * acc;
        if (b != 0.f) v += b * elem(C, CUDA_R_32F, i, j, ldc);
        out[size_t(j) * m + i] = v;
      }
    float* dp = static_cast<float*>(D);
    for (uint64_t j = 0; j < n; j++)
      for (uint64_t i = 0; i < m; i++) dp[size_t(j) * size_t(ldd) + i] = out[size_t(j) * m + i];
  });
  return CUBLAS_STATUS_SUCCESS;
}
