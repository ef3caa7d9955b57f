// blaslt.cu — the matrix products through cuBLASLt, which lt_library.cu opens at run time where the machine
// has it (cublaslt_api.h); where it has not, or TAILOR_CUBLASLT=0, or a build with -DTAILOR_CUBLASLT=OFF,
// every lt_* call returns false and matmul.cu's own kernels run. One cublasLt handle and one workspace
// (kWorkspace bytes, allocated once) per device, made on first use under a mutex; the descriptors and the
// algorithm (cublasLtMatmulAlgoGetHeuristic) of each shape are made once and cached (plans, below). fp32
// compute without TF32 (CUBLAS_COMPUTE_32F), so results match the fp32 CPU to rounding.
// A call that cuBLASLt refuses or fails returns false without printing; the first such error is kept for
// lt_status(), and the caller falls back to our kernels.
//
// Row-major to cuBLASLt's column-major: a row-major [R, C] array with row stride C is, read column-major,
// the C×R matrix with ld = C (its transpose). cuBLASLt computes D(m×n) = alpha·op(A)(m×k)·op(B)(k×n) + beta·C,
// each layout describing the matrix as stored (before op). With Wc = W[out,in] as in×out (ld in), Xc = x[T,in]
// as in×T (ld in), DYc = dy[T,out] as out×T (ld out):
//   forward   y[T,out] (+)= x·Wᵀ   → Yc (out×T, ld out) = Wcᵀ·Xc:   A = Wc op T, B = Xc op N;  m=out, n=T,   k=in
//   dx        dx[T,in] += dy·W     → DXc (in×T, ld in)  = Wc·DYc:   A = Wc op N, B = DYc op N; m=in,  n=T,   k=out
//             (the same for bf16 dy and W: lt_matmul_backward_dx_bf16)
//   dW        dW[out,in] += dyᵀ·x  → DWc (in×out, ld in) = Xc·DYcᵀ: A = Xc op N, B = DYc op T; m=in,  n=out, k=T
// (check: DXc(i,t) = Σ_o W[o,i]·dy[t,o];  DWc(i,o) = Σ_t x[t,i]·dy[t,o] = dW[o,i].)
// Written against the documented C API only; in CI it runs against the emulated library
// (native/test/cuemu/cublaslt_emu.cpp), opened the same way — see the notes at lt_gemm.
#include "common.cuh"
#include "kernels.h"

#include "cublaslt_api.h"

#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

namespace tailor {
namespace cuda {

namespace {
std::atomic<int> g_override{-1};  // lt_set_enabled: -1 the library's choice (lt_library.cu), 0 off, 1 on
std::mutex g_mu;
std::string g_first_error;  // the first refusal or failure, for lt_status()
std::atomic<uint64_t> g_calls[5] = {};  // lt_calls(): forward f32, forward bf16, dx f32, dx bf16, dW f32

// an entry point's result, counted when cuBLASLt computed the product
inline bool counted(int which, bool ran) {
  if (ran) g_calls[which].fetch_add(1, std::memory_order_relaxed);
  return ran;
}
}  // namespace

#if defined(TAILOR_HAVE_CUBLASLT)

namespace {
constexpr size_t kWorkspace = size_t(32) << 20;

void keep_error(const std::string& what) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_first_error.empty()) g_first_error = what;
}

struct LtDevice {
  lt::Handle handle = nullptr;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
  bool failed = false;    // cublasLtCreate failed on this device: never try again
  int verdict = 0;        // the self-check (self_check): 0 not run yet, 1 passed, −1 failed (never used then)
  bool checking = false;  // a thread is running the self-check (others use our kernels meanwhile)
  std::string why;        // why it is not used on this device
};
std::map<int, LtDevice> g_devices;

int self_check(const LtDevice& d, std::string* why);

// the current device's handle and workspace (made on first use, then checked once by self_check), or null
// when cuBLASLt cannot run there or gave wrong products
const LtDevice* device_state() {
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) {
    cudaGetLastError();
    return nullptr;
  }
  const lt::Api* a = lt::api();
  if (!a) return nullptr;
  const LtDevice* result = nullptr;
  LtDevice* to_check = nullptr;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    LtDevice& d = g_devices[dev];
    if (!d.failed && !d.handle) {
      const lt::Status s = a->create(&d.handle);
      if (s != lt::kSuccess) {
        d.failed = true;
        d.handle = nullptr;
        d.why = "cublasLtCreate on device " + std::to_string(dev) + ": status " + std::to_string(int(s));
      } else if (cudaMalloc(&d.workspace, kWorkspace) == cudaSuccess) {
        d.workspace_bytes = kWorkspace;
      } else {
        d.workspace = nullptr;  // runs without a workspace (fewer algorithms)
        cudaGetLastError();     // a failed cudaMalloc must not surface at the next kernel's check_launch
      }
    }
    if (d.handle && d.verdict == 1) result = &d;
    if (d.handle && d.verdict == 0 && !d.checking) to_check = &d, d.checking = true;
  }
  if (to_check) {  // (map nodes stay put, so the pointer holds outside the lock)
    std::string why;
    const int verdict = self_check(*to_check, &why);
    std::lock_guard<std::mutex> lock(g_mu);
    to_check->checking = false;
    to_check->verdict = verdict;
    if (verdict < 0) to_check->why = why;
    if (verdict > 0) result = to_check;
  }
  return result;
}

// the largest power of two up to 256 that divides the address (cuBLASLt's heuristic assumes 256-byte
// aligned buffers unless told otherwise; our operands can be views into larger buffers)
uint32_t alignment(const void* p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  uint32_t al = 256;
  while (al > 1 && (a % al) != 0) al >>= 1;
  return al;
}

// A plan: the descriptors and the heuristic's algorithm for one shape, layout and alignment on one device,
// made once and kept (up to kMaxPlans of them; past that, plans are made and dropped per call). A shape
// cuBLASLt refuses is kept too (ok = false), so the refusal is asked and noted once.
struct PlanKey {
  int device;
  int32_t ta, tb, type;
  uint64_t a_rows, a_cols, b_rows, b_cols, m, n, k;
  int64_t lda, ldb, ldd;
  uint32_t al_a, al_b, al_d;
  bool operator<(const PlanKey& o) const {
    return std::tie(device, ta, tb, type, a_rows, a_cols, b_rows, b_cols, m, n, k, lda, ldb, ldd, al_a, al_b, al_d) <
           std::tie(o.device, o.ta, o.tb, o.type, o.a_rows, o.a_cols, o.b_rows, o.b_cols, o.m, o.n, o.k, o.lda, o.ldb, o.ldd, o.al_a,
                    o.al_b, o.al_d);
  }
};
struct Plan {
  bool ok = false;
  lt::MatmulDesc op = nullptr;
  lt::Layout la = nullptr, lb = nullptr, ld = nullptr;
  lt::Algo algo = {};
  std::string error;  // why not ok
};
constexpr size_t kMaxPlans = 1024;
std::map<PlanKey, Plan> g_plans;  // under g_mu

void destroy(Plan& p) {
  const lt::Api* a = lt::api();  // (not null: a plan exists only when the library was opened)
  if (p.ld) a->layout_destroy(p.ld);
  if (p.lb) a->layout_destroy(p.lb);
  if (p.la) a->layout_destroy(p.la);
  if (p.op) a->matmul_desc_destroy(p.op);
  p = Plan{};
}

// Notes for the real library (not run here): TRANSA/TRANSB are set as int32_t, the documented attribute
// type; the preference's MIN_ALIGNMENT_* (uint32_t) tell the heuristic our pointers' actual alignment, whose
// default assumption is 256 bytes; MAX_WORKSPACE_BYTES (uint64_t) is the workspace we pass to the matmul.
Plan make_plan(const LtDevice& dev, const PlanKey& key, int32_t ta, int32_t tb, int32_t type) {
  const lt::Api& a = *lt::api();
  Plan p;
  lt::Preference pref = nullptr;
  lt::Status s = lt::kSuccess;
  const char* step = "";
  auto ok = [&](auto call, const char* name) {  // runs call() unless an earlier step failed
    if (s != lt::kSuccess) return;
    s = call();
    step = name;
  };
  const int32_t opa = ta, opb = tb;
  const uint64_t ws = dev.workspace_bytes;
  lt::HeuristicResult heur = {};
  int found = 0;
  ok([&] { return a.matmul_desc_create(&p.op, lt::kCompute32F, lt::kR32F); }, "cublasLtMatmulDescCreate");
  ok([&] { return a.matmul_desc_set_attribute(p.op, lt::kDescTransA, &opa, sizeof opa); }, "CUBLASLT_MATMUL_DESC_TRANSA");
  ok([&] { return a.matmul_desc_set_attribute(p.op, lt::kDescTransB, &opb, sizeof opb); }, "CUBLASLT_MATMUL_DESC_TRANSB");
  ok([&] { return a.layout_create(&p.la, type, key.a_rows, key.a_cols, key.lda); }, "cublasLtMatrixLayoutCreate (A)");
  ok([&] { return a.layout_create(&p.lb, type, key.b_rows, key.b_cols, key.ldb); }, "cublasLtMatrixLayoutCreate (B)");
  ok([&] { return a.layout_create(&p.ld, lt::kR32F, key.m, key.n, key.ldd); }, "cublasLtMatrixLayoutCreate (C/D)");
  ok([&] { return a.preference_create(&pref); }, "cublasLtMatmulPreferenceCreate");
  ok([&] { return a.preference_set_attribute(pref, lt::kPrefMaxWorkspaceBytes, &ws, sizeof ws); }, "MAX_WORKSPACE_BYTES");
  ok([&] { return a.preference_set_attribute(pref, lt::kPrefMinAlignmentA, &key.al_a, sizeof key.al_a); }, "MIN_ALIGNMENT_A_BYTES");
  ok([&] { return a.preference_set_attribute(pref, lt::kPrefMinAlignmentB, &key.al_b, sizeof key.al_b); }, "MIN_ALIGNMENT_B_BYTES");
  ok([&] { return a.preference_set_attribute(pref, lt::kPrefMinAlignmentC, &key.al_d, sizeof key.al_d); }, "MIN_ALIGNMENT_C_BYTES");
  ok([&] { return a.preference_set_attribute(pref, lt::kPrefMinAlignmentD, &key.al_d, sizeof key.al_d); }, "MIN_ALIGNMENT_D_BYTES");
  ok([&] { return a.algo_get_heuristic(dev.handle, p.op, p.la, p.lb, p.ld, p.ld, pref, 1, &heur, &found); }, "cublasLtMatmulAlgoGetHeuristic");
  if (pref) a.preference_destroy(pref);
  if (s == lt::kSuccess && (found < 1 || heur.state != lt::kSuccess)) {
    s = found < 1 ? lt::kNotSupported : heur.state;
    step = "cublasLtMatmulAlgoGetHeuristic (no usable algorithm)";
  }
  if (s != lt::kSuccess) {
    destroy(p);
    p.error = std::string(step) + " returned status " + std::to_string(int(s));
    return p;
  }
  p.algo = heur.algo;
  p.ok = true;
  return p;
}

// D (m×n column-major, fp32, ld = ldd) = op(A)·op(B) + (accumulate ? D : 0), A and B of one type. alpha and
// beta are host floats (the default pointer mode, scale type lt::kR32F); C and D are the same buffer with
// the same layout (in place, which cuBLASLt allows when C's and D's layouts match); the default stream (0)
// is the one every kernel of ours runs on, so the order of operations is kept.
bool lt_gemm_on(const LtDevice* dev, const char* what, int32_t ta, int32_t tb, int32_t type, const void* A, uint64_t a_rows,
                uint64_t a_cols, int64_t lda, const void* B, uint64_t b_rows, uint64_t b_cols, int64_t ldb, float* D, uint64_t m, uint64_t n,
                uint64_t k, int64_t ldd, bool accumulate) {
  constexpr uint64_t kMax = 0x7fffffffu;
  if (m == 0 || n == 0 || k == 0 || m > kMax || n > kMax || k > kMax) return false;  // k = 0: our kernels write the zeros
  int device = 0;
  cudaGetDevice(&device);
  const PlanKey key{device, ta, tb, type, a_rows, a_cols, b_rows, b_cols, m, n, k, lda, ldb, ldd,
                    alignment(A), alignment(B), alignment(D)};
  Plan local;
  const Plan* plan = nullptr;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    auto it = g_plans.find(key);
    if (it != g_plans.end()) plan = &it->second;  // (entries are never erased, so the pointer stays valid)
  }
  if (!plan) {
    local = make_plan(*dev, key, ta, tb, type);
    const std::string error = local.ok ? "" : local.error;
    {
      std::lock_guard<std::mutex> lock(g_mu);
      if (g_plans.size() < kMaxPlans) {
        auto ins = g_plans.emplace(key, local);
        if (!ins.second) destroy(local);  // another thread made the same plan meanwhile: use theirs
        else local = Plan{};              // the map owns the descriptors now
        plan = &ins.first->second;
      } else {
        plan = &local;
      }
    }
    if (!error.empty())
      keep_error(std::string(what) + " m=" + std::to_string(m) + " n=" + std::to_string(n) + " k=" + std::to_string(k) + ": " + error);
  }
  bool ran = false;
  if (plan->ok) {
    const float alpha = 1.f, beta = accumulate ? 1.f : 0.f;
    const lt::Status s = lt::api()->matmul(dev->handle, plan->op, &alpha, A, plan->la, B, plan->lb, &beta, D, plan->ld, D, plan->ld,
                                           &plan->algo, dev->workspace, dev->workspace_bytes, nullptr);
    ran = s == lt::kSuccess;
    if (!ran)
      keep_error(std::string(what) + " m=" + std::to_string(m) + " n=" + std::to_string(n) + " k=" + std::to_string(k) +
                 ": cublasLtMatmul returned status " + std::to_string(int(s)));
  }
  if (plan == &local) destroy(local);
  return ran;
}
// the five products on one device (null: false), in the row-major terms of kernels.h
bool fwd_f32(const LtDevice* d, float* y, const float* x, const float* w, int64_t T, int64_t in, int64_t out, bool accumulate) {
  return d && lt_gemm_on(d, "forward f32", lt::kOpT, lt::kOpN, lt::kR32F, w, uint64_t(in), uint64_t(out), in, x, uint64_t(in), uint64_t(T), in,
                         y, uint64_t(out), uint64_t(T), uint64_t(in), out, accumulate);
}
bool fwd_bf16(const LtDevice* d, float* y, const uint16_t* x, const uint16_t* w, int64_t T, int64_t in, int64_t out, bool accumulate) {
  return d && lt_gemm_on(d, "forward bf16", lt::kOpT, lt::kOpN, lt::kR16BF, w, uint64_t(in), uint64_t(out), in, x, uint64_t(in), uint64_t(T),
                         in, y, uint64_t(out), uint64_t(T), uint64_t(in), out, accumulate);
}
bool dx_f32(const LtDevice* d, float* dx, const float* dy, const float* w, int64_t T, int64_t in, int64_t out) {
  return d && lt_gemm_on(d, "backward dx f32", lt::kOpN, lt::kOpN, lt::kR32F, w, uint64_t(in), uint64_t(out), in, dy, uint64_t(out),
                         uint64_t(T), out, dx, uint64_t(in), uint64_t(T), uint64_t(out), in, true);
}
bool dx_bf16(const LtDevice* d, float* dx, const uint16_t* dy, const uint16_t* w, int64_t T, int64_t in, int64_t out) {
  return d && lt_gemm_on(d, "backward dx bf16", lt::kOpN, lt::kOpN, lt::kR16BF, w, uint64_t(in), uint64_t(out), in, dy, uint64_t(out),
                         uint64_t(T), out, dx, uint64_t(in), uint64_t(T), uint64_t(out), in, true);
}
bool dw_f32(const LtDevice* d, float* dw, const float* dy, const float* x, int64_t T, int64_t in, int64_t out) {
  return d && lt_gemm_on(d, "backward dW f32", lt::kOpN, lt::kOpT, lt::kR32F, x, uint64_t(in), uint64_t(T), in, dy, uint64_t(out), uint64_t(T),
                         out, dw, uint64_t(in), uint64_t(out), uint64_t(T), in, true);
}

// Before cuBLASLt computes anything of a model's, each of the five products on small odd shapes (x[5, 40],
// W[24, 40]: every transpose and both element types) against a float64 reference on the host. A library
// whose answers differ (one whose ABI does not match our declarations, or a broken install) is never used
// on this device, and says why; a product it refuses is no failure (the callers fall back for it anyway).
// Returns 1 passed, −1 failed, 0 could not run (no device memory now: tried again at the next product).
int self_check(const LtDevice& d, std::string* why) {
  constexpr int64_t T = 5, in = 40, out = 24;
  uint32_t state = 12345u;
  auto next = [&] {  // deterministic values in [−1, 1), exact in bf16 (8 significant bits)
    state = state * 1664525u + 1013904223u;
    return float(int(state >> 24) - 128) / 128.f;
  };
  std::vector<float> x(T * in), w(out * in), dy(T * out), y0(T * out), dx0(T * in), dw0(out * in);
  for (auto* v : {&x, &w, &dy, &y0, &dx0, &dw0})
    for (float& e : *v) e = next();
  auto bits = [](const std::vector<float>& v) {  // (exact: the values are bf16 already)
    std::vector<uint16_t> b(v.size());
    for (size_t i = 0; i < v.size(); i++) {
      uint32_t u;
      std::memcpy(&u, &v[i], 4);
      b[i] = uint16_t(u >> 16);
    }
    return b;
  };
  const std::vector<uint16_t> xb = bits(x), wb = bits(w), dyb = bits(dy);
  // one device block for every buffer: x w dy y dx dw (fp32), then xb wb dyb (bf16)
  const size_t nf = x.size() + w.size() + dy.size() + y0.size() + dx0.size() + dw0.size(), nb = xb.size() + wb.size() + dyb.size();
  void* mem = nullptr;
  if (cudaMalloc(&mem, nf * 4 + nb * 2) != cudaSuccess) return cudaGetLastError(), 0;
  float* gx = static_cast<float*>(mem);
  float *gw = gx + x.size(), *gdy = gw + w.size(), *gy = gdy + dy.size(), *gdx = gy + y0.size(), *gdw = gdx + dx0.size();
  uint16_t* gxb = reinterpret_cast<uint16_t*>(gdw + dw0.size());
  uint16_t *gwb = gxb + xb.size(), *gdyb = gwb + wb.size();
  auto up = [](void* dst, const void* src, size_t bytes) { return cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice) == cudaSuccess; };
  auto down = [](std::vector<float>& dst, const float* src) { return cudaMemcpy(dst.data(), src, dst.size() * 4, cudaMemcpyDeviceToHost) == cudaSuccess; };
  bool io = up(gx, x.data(), x.size() * 4) && up(gw, w.data(), w.size() * 4) && up(gdy, dy.data(), dy.size() * 4) && up(gxb, xb.data(), xb.size() * 2) &&
            up(gwb, wb.data(), wb.size() * 2) && up(gdyb, dyb.data(), dyb.size() * 2);
  // each case: run it (from its starting values), read it back, compare with the host's float64 sum
  std::string bad;
  auto run_case = [&](const char* name, float* g, const std::vector<float>& start, const std::function<bool()>& product,
                      const std::function<double(int64_t, int64_t)>& ref, int64_t rows, int64_t cols) {
    if (!io || !bad.empty()) return;
    io = up(g, start.data(), start.size() * 4);
    if (!io || !product()) return;  // (refused: not a wrong answer)
    std::vector<float> got(start.size());
    io = down(got, g);
    for (int64_t r = 0; io && r < rows && bad.empty(); r++)
      for (int64_t c = 0; c < cols; c++) {
        const double want = ref(r, c), e = std::fabs(double(got[size_t(r * cols + c)]) - want);
        if (!(e <= 1e-3 * (1.0 + std::fabs(want)))) {
          bad = std::string(name) + " [" + std::to_string(r) + "," + std::to_string(c) + "] is " + std::to_string(got[size_t(r * cols + c)]) +
                ", expected " + std::to_string(want);
          break;
        }
      }
  };
  auto dot = [](const float* a, int64_t as, const float* b, int64_t bs, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += double(a[i * as]) * double(b[i * bs]);
    return s;
  };
  // y[T, out] = x · Wᵀ;  dx[T, in] += dy · W;  dW[out, in] += dyᵀ · x
  auto y_ref = [&](int64_t t, int64_t o) { return dot(&x[size_t(t * in)], 1, &w[size_t(o * in)], 1, in); };
  auto dx_ref = [&](int64_t t, int64_t i) { return double(dx0[size_t(t * in + i)]) + dot(&dy[size_t(t * out)], 1, &w[size_t(i)], in, out); };
  auto dw_ref = [&](int64_t o, int64_t i) { return double(dw0[size_t(o * in + i)]) + dot(&dy[size_t(o)], out, &x[size_t(i)], in, T); };
  run_case("forward f32", gy, y0, [&] { return fwd_f32(&d, gy, gx, gw, T, in, out, false); }, y_ref, T, out);
  run_case("backward dx f32", gdx, dx0, [&] { return dx_f32(&d, gdx, gdy, gw, T, in, out); }, dx_ref, T, in);
  run_case("backward dW f32", gdw, dw0, [&] { return dw_f32(&d, gdw, gdy, gx, T, in, out); }, dw_ref, out, in);
  run_case("forward bf16", gy, y0, [&] { return fwd_bf16(&d, gy, gxb, gwb, T, in, out, false); }, y_ref, T, out);
  run_case("backward dx bf16", gdx, dx0, [&] { return dx_bf16(&d, gdx, gdyb, gwb, T, in, out); }, dx_ref, T, in);
  cudaFree(mem);
  if (!io) {
    cudaGetLastError();
    *why = "its self-check could not run (a CUDA copy failed)";
    return -1;
  }
  if (bad.empty()) return 1;
  *why = "its products are wrong on a test (" + bad + "): not used";
  return -1;
}

// why cuBLASLt is not used on the current device ("" when nothing is known)
std::string device_why() {
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return cudaGetLastError(), std::string();
  std::lock_guard<std::mutex> lock(g_mu);
  auto it = g_devices.find(dev);
  return it == g_devices.end() ? std::string() : it->second.why;
}

}  // namespace

bool lt_built_in() { return true; }

size_t lt_workspace_bytes() {
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return cudaGetLastError(), size_t(0);
  std::lock_guard<std::mutex> lock(g_mu);
  auto it = g_devices.find(dev);
  return it == g_devices.end() ? 0 : it->second.workspace_bytes;
}

bool lt_matmul_f32(float* y, const float* x, const float* w, int64_t T, int64_t in, int64_t out, bool accumulate) {
  return counted(0, fwd_f32(device_state(), y, x, w, T, in, out, accumulate));
}
bool lt_matmul_bf16w(float* y, const uint16_t* x_bf16, const uint16_t* w_bf16, int64_t T, int64_t in, int64_t out, bool accumulate) {
  return counted(1, fwd_bf16(device_state(), y, x_bf16, w_bf16, T, in, out, accumulate));
}
bool lt_matmul_backward_dx_f32(float* dx, const float* dy, const float* w, int64_t T, int64_t in, int64_t out) {
  return counted(2, dx_f32(device_state(), dx, dy, w, T, in, out));
}
bool lt_matmul_backward_dx_bf16(float* dx, const uint16_t* dy_bf16, const uint16_t* w_bf16, int64_t T, int64_t in, int64_t out) {
  return counted(3, dx_bf16(device_state(), dx, dy_bf16, w_bf16, T, in, out));
}
bool lt_matmul_backward_dw_f32(float* dw, const float* dy, const float* x, int64_t T, int64_t in, int64_t out) {
  return counted(4, dw_f32(device_state(), dw, dy, x, T, in, out));
}

#else  // no cuBLASLt in this build: the callers use our kernels

bool lt_built_in() { return false; }
size_t lt_workspace_bytes() { return 0; }
bool lt_matmul_f32(float*, const float*, const float*, int64_t, int64_t, int64_t, bool) { return false; }
bool lt_matmul_bf16w(float*, const uint16_t*, const uint16_t*, int64_t, int64_t, int64_t, bool) { return false; }
bool lt_matmul_backward_dx_f32(float*, const float*, const float*, int64_t, int64_t, int64_t) { return false; }
bool lt_matmul_backward_dx_bf16(float*, const uint16_t*, const uint16_t*, int64_t, int64_t, int64_t) { return false; }
bool lt_matmul_backward_dw_f32(float*, const float*, const float*, int64_t, int64_t, int64_t) { return false; }
namespace {
const void* device_state() { return nullptr; }
std::string device_why() { return std::string(); }
}  // namespace

#endif

LtCalls lt_calls() {
  LtCalls c;
  c.f32 = g_calls[0].load();
  c.bf16 = g_calls[1].load();
  c.dx_f32 = g_calls[2].load();
  c.dx_bf16 = g_calls[3].load();
  c.dw_f32 = g_calls[4].load();
  return c;
}

void lt_set_enabled(int on) { g_override = on < 0 ? -1 : on ? 1 : 0; }

bool lt_enabled() {
  if (!lt_built_in() || g_override.load() == 0) return false;
  return device_state() != nullptr;  // (null too when lt_library.cu opened no library)
}

std::string lt_status() {
  if (!lt_built_in()) return "off (not in this build: TAILOR_CUBLASLT=OFF)";
  std::string s;
  if (g_override.load() == 0)
    s = "off (disabled by the caller)";
  else if (!lt::api())
    s = "off (" + lt::library_status() + ")";
  else if (device_state())
    s = "on (" + lt::library_status() + ")";
  else {
    const std::string why = device_why();
    s = "off (" + lt::library_status() + ": " + (why.empty() ? "no handle on this device" : why) + ")";
  }
  std::lock_guard<std::mutex> lock(g_mu);
  if (!g_first_error.empty()) s += "; first refusal: " + g_first_error;
  return s;
}

}  // namespace cuda
}  // namespace tailor
