// cublaslt_api.h — Tailor's own declarations of the part of cuBLASLt's C API that blaslt.cu calls, and the
// table of entry points that lt_library.cu fills from the library it opens at run time. Neither the build nor
// the shipped addon needs cuBLASLt: the addon opens libcublasLt.so.13/12/11 (cublasLt64_13/12/11.dll on
// Windows) where the analyst's machine has it (a CUDA toolkit, a driver bundle, PyTorch's wheels), and runs
// Tailor's own kernels where it has not.
//
// The values and layouts are cuBLASLt's documented ABI (cublasLt.h, cublas_api.h, library_types.h): status
// codes, data and compute types, operations, the descriptor and preference attributes we set, the
// algorithm (64 bytes) and the heuristic result. Enums cross the C ABI as 32-bit ints, so they are ints
// here. native/test/ltabi.cpp checks every value and layout against the real header where a toolkit has it
// (gpu-check.sh builds it first), and the emulated library (native/test/cuemu/cublaslt_emu.cpp) is compiled
// against these function types.
#pragma once
#include <cuda_runtime.h>  // cudaStream_t

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace tailor {
namespace cuda {
namespace lt {

// cublasStatus_t
using Status = int32_t;
constexpr Status kSuccess = 0, kNotInitialized = 1, kAllocFailed = 3, kInvalidValue = 7, kArchMismatch = 8, kMappingError = 11,
                 kExecutionFailed = 13, kInternalError = 14, kNotSupported = 15, kLicenseError = 16;
// cudaDataType_t
constexpr int32_t kR32F = 0, kR16F = 2, kR16BF = 14;
// cublasComputeType_t: fp32 compute, no TF32
constexpr int32_t kCompute32F = 68;
// cublasOperation_t
constexpr int32_t kOpN = 0, kOpT = 1;
// cublasLtMatmulDescAttributes_t (values int32_t)
constexpr int32_t kDescComputeType = 0, kDescScaleType = 1, kDescTransA = 3, kDescTransB = 4;
// cublasLtMatmulPreferenceAttributes_t (MAX_WORKSPACE_BYTES: uint64_t; MIN_ALIGNMENT_*: uint32_t)
constexpr int32_t kPrefMaxWorkspaceBytes = 1, kPrefMinAlignmentA = 5, kPrefMinAlignmentB = 6, kPrefMinAlignmentC = 7,
                  kPrefMinAlignmentD = 8;

// opaque handles (pointers to the library's own structures)
struct Context;
struct MatmulDescOpaque;
struct LayoutOpaque;
struct PreferenceOpaque;
using Handle = Context*;                 // cublasLtHandle_t
using MatmulDesc = MatmulDescOpaque*;    // cublasLtMatmulDesc_t
using Layout = LayoutOpaque*;            // cublasLtMatrixLayout_t
using Preference = PreferenceOpaque*;    // cublasLtMatmulPreference_t

struct Algo {  // cublasLtMatmulAlgo_t: semi-opaque, kept by value
  uint64_t data[8];
};
struct HeuristicResult {  // cublasLtMatmulHeuristicResult_t
  Algo algo;
  size_t workspaceSize;
  Status state;
  float wavesCount;
  int reserved[4];
};
static_assert(sizeof(Algo) == 64, "cublasLtMatmulAlgo_t is 64 bytes");

// the entry points, by their C names in the library
extern "C" {
typedef Status (*CreateFn)(Handle*);                                                    // cublasLtCreate
typedef Status (*DestroyFn)(Handle);                                                    // cublasLtDestroy
typedef size_t (*GetVersionFn)();                                                       // cublasLtGetVersion
typedef Status (*MatmulDescCreateFn)(MatmulDesc*, int32_t compute, int32_t scale);      // cublasLtMatmulDescCreate
typedef Status (*MatmulDescDestroyFn)(MatmulDesc);                                      // cublasLtMatmulDescDestroy
typedef Status (*MatmulDescSetAttributeFn)(MatmulDesc, int32_t attr, const void* buf, size_t bytes);  // cublasLtMatmulDescSetAttribute
typedef Status (*LayoutCreateFn)(Layout*, int32_t type, uint64_t rows, uint64_t cols, int64_t ld);    // cublasLtMatrixLayoutCreate
typedef Status (*LayoutDestroyFn)(Layout);                                              // cublasLtMatrixLayoutDestroy
typedef Status (*PreferenceCreateFn)(Preference*);                                      // cublasLtMatmulPreferenceCreate
typedef Status (*PreferenceDestroyFn)(Preference);                                      // cublasLtMatmulPreferenceDestroy
typedef Status (*PreferenceSetAttributeFn)(Preference, int32_t attr, const void* buf, size_t bytes);  // cublasLtMatmulPreferenceSetAttribute
typedef Status (*AlgoGetHeuristicFn)(Handle, MatmulDesc, Layout A, Layout B, Layout C, Layout D, Preference, int requested,
                                     HeuristicResult results[], int* returned);         // cublasLtMatmulAlgoGetHeuristic
typedef Status (*MatmulFn)(Handle, MatmulDesc, const void* alpha, const void* A, Layout, const void* B, Layout, const void* beta,
                           const void* C, Layout, void* D, Layout, const Algo* algo, void* workspace, size_t workspace_bytes,
                           cudaStream_t stream);                                        // cublasLtMatmul
}

// The library lt_library.cu opened, with every entry point resolved (get_version may be null: it is only
// used for the report).
struct Api {
  CreateFn create = nullptr;
  DestroyFn destroy = nullptr;
  GetVersionFn get_version = nullptr;
  MatmulDescCreateFn matmul_desc_create = nullptr;
  MatmulDescDestroyFn matmul_desc_destroy = nullptr;
  MatmulDescSetAttributeFn matmul_desc_set_attribute = nullptr;
  LayoutCreateFn layout_create = nullptr;
  LayoutDestroyFn layout_destroy = nullptr;
  PreferenceCreateFn preference_create = nullptr;
  PreferenceDestroyFn preference_destroy = nullptr;
  PreferenceSetAttributeFn preference_set_attribute = nullptr;
  AlgoGetHeuristicFn algo_get_heuristic = nullptr;
  MatmulFn matmul = nullptr;
};

// The library, opened on first call (thread-safe) and kept for the process's life; null when cuBLASLt is
// turned off (TAILOR_CUBLASLT=0) or none of the candidates opened, resolved and made a handle on the
// current device. The candidates: TAILOR_CUBLASLT's value when it names a file (only that one), else the
// library names above through the system's search (LD_LIBRARY_PATH, the loader cache; PATH on Windows), then
// in $CUDA_HOME, $CUDA_PATH and /usr/local/cuda.
const Api* api();
// what api() found, for people: "libcublasLt.so.12 (version 120804)", or "off (TAILOR_CUBLASLT=0)", or
// "not found (tried …)" / the candidate that opened and why it was not used
std::string library_status();

#if defined(TAILOR_CUEMU)
// The emulated library (a shared library like the real one) runs its products on the emulator's streams,
// whose queues live in the addon or test binary that opened it: lt_library.cu hands it these on opening.
struct EmuHooks {
  int (*device_count)();
  void (*enqueue)(cudaStream_t, std::function<void()>);
};
extern "C" typedef void (*EmuBindFn)(const EmuHooks*);  // cuemuLtBind, exported by the emulated library only
#endif

}  // namespace lt
}  // namespace cuda
}  // namespace tailor
