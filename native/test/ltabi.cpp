// ltabi.cpp — Tailor's declarations of cuBLASLt (native/cuda/cublaslt_api.h) against the real cublasLt.h, at
// compile time: every value we pass, every layout we read, and every entry point's type with our handles
// in place of the library's. Built (target tailor_ltabi, an object library) only where the CUDA toolkit has
// the header; gpu-check.sh builds it before it lets the backend open the library. Nothing here runs.
#include <cublasLt.h>

#include <cstddef>
#include <type_traits>

#include "cublaslt_api.h"

namespace lt = tailor::cuda::lt;

// status codes
static_assert(lt::kSuccess == CUBLAS_STATUS_SUCCESS, "CUBLAS_STATUS_SUCCESS");
static_assert(lt::kNotInitialized == CUBLAS_STATUS_NOT_INITIALIZED, "CUBLAS_STATUS_NOT_INITIALIZED");
static_assert(lt::kAllocFailed == CUBLAS_STATUS_ALLOC_FAILED, "CUBLAS_STATUS_ALLOC_FAILED");
static_assert(lt::kInvalidValue == CUBLAS_STATUS_INVALID_VALUE, "CUBLAS_STATUS_INVALID_VALUE");
static_assert(lt::kArchMismatch == CUBLAS_STATUS_ARCH_MISMATCH, "CUBLAS_STATUS_ARCH_MISMATCH");
static_assert(lt::kMappingError == CUBLAS_STATUS_MAPPING_ERROR, "CUBLAS_STATUS_MAPPING_ERROR");
static_assert(lt::kExecutionFailed == CUBLAS_STATUS_EXECUTION_FAILED, "CUBLAS_STATUS_EXECUTION_FAILED");
static_assert(lt::kInternalError == CUBLAS_STATUS_INTERNAL_ERROR, "CUBLAS_STATUS_INTERNAL_ERROR");
static_assert(lt::kNotSupported == CUBLAS_STATUS_NOT_SUPPORTED, "CUBLAS_STATUS_NOT_SUPPORTED");
static_assert(lt::kLicenseError == CUBLAS_STATUS_LICENSE_ERROR, "CUBLAS_STATUS_LICENSE_ERROR");
static_assert(sizeof(cublasStatus_t) == sizeof(lt::Status), "cublasStatus_t is a 32-bit int");
// types, compute type, operations
static_assert(lt::kR32F == CUDA_R_32F && lt::kR16F == CUDA_R_16F && lt::kR16BF == CUDA_R_16BF, "cudaDataType_t");
static_assert(sizeof(cudaDataType_t) == sizeof(int32_t), "cudaDataType_t is a 32-bit int");
static_assert(lt::kCompute32F == CUBLAS_COMPUTE_32F, "CUBLAS_COMPUTE_32F");
static_assert(sizeof(cublasComputeType_t) == sizeof(int32_t), "cublasComputeType_t is a 32-bit int");
static_assert(lt::kOpN == CUBLAS_OP_N && lt::kOpT == CUBLAS_OP_T, "cublasOperation_t");
// attributes
static_assert(lt::kDescComputeType == CUBLASLT_MATMUL_DESC_COMPUTE_TYPE, "CUBLASLT_MATMUL_DESC_COMPUTE_TYPE");
static_assert(lt::kDescScaleType == CUBLASLT_MATMUL_DESC_SCALE_TYPE, "CUBLASLT_MATMUL_DESC_SCALE_TYPE");
static_assert(lt::kDescTransA == CUBLASLT_MATMUL_DESC_TRANSA, "CUBLASLT_MATMUL_DESC_TRANSA");
static_assert(lt::kDescTransB == CUBLASLT_MATMUL_DESC_TRANSB, "CUBLASLT_MATMUL_DESC_TRANSB");
static_assert(lt::kPrefMaxWorkspaceBytes == CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, "CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES");
static_assert(lt::kPrefMinAlignmentA == CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, "CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES");
static_assert(lt::kPrefMinAlignmentB == CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, "CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES");
static_assert(lt::kPrefMinAlignmentC == CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, "CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES");
static_assert(lt::kPrefMinAlignmentD == CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, "CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES");
static_assert(sizeof(cublasLtMatmulDescAttributes_t) == sizeof(int32_t), "cublasLtMatmulDescAttributes_t is a 32-bit int");
static_assert(sizeof(cublasLtMatmulPreferenceAttributes_t) == sizeof(int32_t), "cublasLtMatmulPreferenceAttributes_t is a 32-bit int");
// the structures we hold or read
static_assert(sizeof(lt::Algo) == sizeof(cublasLtMatmulAlgo_t), "cublasLtMatmulAlgo_t's size");
static_assert(sizeof(lt::HeuristicResult) == sizeof(cublasLtMatmulHeuristicResult_t), "cublasLtMatmulHeuristicResult_t's size");
static_assert(offsetof(lt::HeuristicResult, workspaceSize) == offsetof(cublasLtMatmulHeuristicResult_t, workspaceSize), "workspaceSize");
static_assert(offsetof(lt::HeuristicResult, state) == offsetof(cublasLtMatmulHeuristicResult_t, state), "state");
static_assert(offsetof(lt::HeuristicResult, wavesCount) == offsetof(cublasLtMatmulHeuristicResult_t, wavesCount), "wavesCount");
// the handles are pointers in both
static_assert(std::is_pointer<cublasLtHandle_t>::value && std::is_pointer<cublasLtMatmulDesc_t>::value &&
                  std::is_pointer<cublasLtMatrixLayout_t>::value && std::is_pointer<cublasLtMatmulPreference_t>::value,
              "opaque handles");

// Each entry point's real type, with the library's handle, enum and struct types replaced by ours, must be
// our function type: Ours<T> maps the real parameter types to the ones cublaslt_api.h uses.
template <typename T> struct Ours { using type = T; };
template <> struct Ours<cublasStatus_t> { using type = lt::Status; };
template <> struct Ours<cublasLtHandle_t> { using type = lt::Handle; };
template <> struct Ours<cublasLtHandle_t*> { using type = lt::Handle*; };
template <> struct Ours<cublasLtMatmulDesc_t> { using type = lt::MatmulDesc; };
template <> struct Ours<cublasLtMatmulDesc_t*> { using type = lt::MatmulDesc*; };
template <> struct Ours<cublasLtMatrixLayout_t> { using type = lt::Layout; };
template <> struct Ours<cublasLtMatrixLayout_t*> { using type = lt::Layout*; };
template <> struct Ours<cublasLtMatmulPreference_t> { using type = lt::Preference; };
template <> struct Ours<cublasLtMatmulPreference_t*> { using type = lt::Preference*; };
template <> struct Ours<cublasComputeType_t> { using type = int32_t; };
template <> struct Ours<cudaDataType_t> { using type = int32_t; };
template <> struct Ours<cublasLtMatmulDescAttributes_t> { using type = int32_t; };
template <> struct Ours<cublasLtMatmulPreferenceAttributes_t> { using type = int32_t; };
template <> struct Ours<cublasLtMatmulHeuristicResult_t*> { using type = lt::HeuristicResult*; };
template <> struct Ours<const cublasLtMatmulAlgo_t*> { using type = const lt::Algo*; };
template <typename F> struct Mapped;
template <typename R, typename... A> struct Mapped<R (*)(A...)> { using type = typename Ours<R>::type (*)(typename Ours<A>::type...); };
#define TAILOR_LT_SAME(fn, ours) static_assert(std::is_same<Mapped<decltype(&fn)>::type, lt::ours>::value, #fn "'s type")
TAILOR_LT_SAME(cublasLtCreate, CreateFn);
TAILOR_LT_SAME(cublasLtDestroy, DestroyFn);
TAILOR_LT_SAME(cublasLtGetVersion, GetVersionFn);
TAILOR_LT_SAME(cublasLtMatmulDescCreate, MatmulDescCreateFn);
TAILOR_LT_SAME(cublasLtMatmulDescDestroy, MatmulDescDestroyFn);
TAILOR_LT_SAME(cublasLtMatmulDescSetAttribute, MatmulDescSetAttributeFn);
TAILOR_LT_SAME(cublasLtMatrixLayoutCreate, LayoutCreateFn);
TAILOR_LT_SAME(cublasLtMatrixLayoutDestroy, LayoutDestroyFn);
TAILOR_LT_SAME(cublasLtMatmulPreferenceCreate, PreferenceCreateFn);
TAILOR_LT_SAME(cublasLtMatmulPreferenceDestroy, PreferenceDestroyFn);
TAILOR_LT_SAME(cublasLtMatmulPreferenceSetAttribute, PreferenceSetAttributeFn);
TAILOR_LT_SAME(cublasLtMatmulAlgoGetHeuristic, AlgoGetHeuristicFn);
TAILOR_LT_SAME(cublasLtMatmul, MatmulFn);
