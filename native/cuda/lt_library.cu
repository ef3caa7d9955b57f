// lt_library.cu — finds and opens cuBLASLt at run time (cublaslt_api.h): the addon is built without it and
// uses the analyst's copy, from a CUDA toolkit, a driver bundle or PyTorch's wheels, where there is one.
// The first call to api() chooses, once per process:
//   TAILOR_CUBLASLT=0 | off        → none (Tailor's kernels only);
//   TAILOR_CUBLASLT=<file or path> → that library alone (say, a venv's nvidia/cublas/lib/libcublasLt.so.12),
//                                    or for a folder the library's names in it;
//   unset, 1, on, auto             → the newest of libcublasLt.so.13/12/11 (cublasLt64_13/12/11.dll) that the
//                                    system's search finds, then the same names in $CUDA_HOME, $CUDA_PATH
//                                    and /usr/local/cuda.
// A candidate is taken when it opens, has every entry point and makes a handle on the current device (a
// library newer than the driver refuses there), else the next is tried; library_status() keeps the story.
// The emulator build (TAILOR_CUEMU) looks the same way for the emulated library, libtailor_cublaslt_emu.so,
// with the folder CMake built it in (TAILOR_CUEMU_LT_DIR) in place of /usr/local/cuda, and hands it the
// emulator's stream queues.
#include "common.cuh"
#include "cublaslt_api.h"

#if defined(_WIN32)
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#else
#include <dlfcn.h>
#include <sys/stat.h>
#endif

#include <cstdlib>
#include <string>
#include <vector>

namespace tailor {
namespace cuda {
namespace lt {

namespace {

// the library's names, newest first, and the folders searched after the system's own search
#if defined(TAILOR_CUEMU)
// the emulated library, searched for exactly as the real one is, with the build's folder as the fixed one
const char* const kNames[] = {"libtailor_cublaslt_emu.so"};
const char* const kFixedDirs[] = {TAILOR_CUEMU_LT_DIR};
#elif defined(_WIN32)
const char* const kNames[] = {"cublasLt64_13.dll", "cublasLt64_12.dll", "cublasLt64_11.dll"};
const char* const kFixedDirs[] = {""};  // (none: CUDA_PATH is where the toolkit's installer says it is)
#else
const char* const kNames[] = {"libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so.11"};
const char* const kFixedDirs[] = {"/usr/local/cuda/lib64"};
#endif
#if defined(_WIN32)
const char kSep = '\\';
#else
const char kSep = '/';
#endif

void* open_library(const std::string& path, std::string* error) {
#if defined(_WIN32)
  // a full path loads that file and the DLLs beside it; a bare name searches the system's way
  const bool full = path.find_first_of("\\/") != std::string::npos;
  HMODULE h = LoadLibraryExA(path.c_str(), nullptr, full ? LOAD_WITH_ALTERED_SEARCH_PATH : 0);
  if (!h) *error = "LoadLibrary error " + std::to_string(GetLastError());
  return reinterpret_cast<void*>(h);
#else
  dlerror();
  void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char* e = dlerror();
    *error = e ? e : "dlopen failed";
  }
  return h;
#endif
}

void* find_symbol(void* lib, const char* name) {
#if defined(_WIN32)
  return reinterpret_cast<void*>(GetProcAddress(reinterpret_cast<HMODULE>(lib), name));
#else
  return dlsym(lib, name);
#endif
}

void close_library(void* lib) {
#if defined(_WIN32)
  FreeLibrary(reinterpret_cast<HMODULE>(lib));
#else
  dlclose(lib);
#endif
}

bool file_exists(const std::string& path) {
#if defined(_WIN32)
  const DWORD a = GetFileAttributesA(path.c_str());
  return a != INVALID_FILE_ATTRIBUTES && !(a & FILE_ATTRIBUTE_DIRECTORY);
#else
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
#endif
}

bool is_directory(const std::string& path) {
#if defined(_WIN32)
  const DWORD a = GetFileAttributesA(path.c_str());
  return a != INVALID_FILE_ATTRIBUTES && (a & FILE_ATTRIBUTE_DIRECTORY);
#else
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
#endif
}

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

// out += the library's names that exist in folder dir, newest first
void add_in(const std::string& dir, std::vector<std::string>& out) {
  for (const char* n : kNames) {
    const std::string p = dir + kSep + n;
    if (file_exists(p)) out.push_back(p);
  }
}

// the candidates when TAILOR_CUBLASLT names none: bare names first (the system's search, as the CUDA
// runtime and PyTorch's own loading do), then the toolkit's usual folders, where those files exist
std::vector<std::string> default_candidates() {
  std::vector<std::string> out(std::begin(kNames), std::end(kNames));
  std::vector<std::string> dirs;
  for (const char* var : {"CUDA_HOME", "CUDA_PATH"}) {
    const std::string root = env(var);
    if (root.empty()) continue;
#if defined(_WIN32)
    dirs.push_back(root + "\\bin\\x64");  // (CUDA 13 keeps its DLLs here)
    dirs.push_back(root + "\\bin");
#else
    dirs.push_back(root + "/lib64");
    dirs.push_back(root + "/lib");
#endif
  }
  for (const char* d : kFixedDirs)
    if (*d) dirs.push_back(d);
  for (const std::string& d : dirs) add_in(d, out);
  return out;
}

#if defined(TAILOR_CUEMU)
int emu_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) return 0;
  return n;
}
const EmuHooks kEmuHooks = {emu_device_count, cuemu::enqueue};
#endif

// every entry point of one opened library, or the name of the first one missing
bool resolve(void* lib, Api* a, std::string* missing) {
  struct Entry {
    const char* name;
    void** slot;
    bool required;
  };
  const Entry entries[] = {
      {"cublasLtCreate", reinterpret_cast<void**>(&a->create), true},
      {"cublasLtDestroy", reinterpret_cast<void**>(&a->destroy), true},
      {"cublasLtGetVersion", reinterpret_cast<void**>(&a->get_version), false},
      {"cublasLtMatmulDescCreate", reinterpret_cast<void**>(&a->matmul_desc_create), true},
      {"cublasLtMatmulDescDestroy", reinterpret_cast<void**>(&a->matmul_desc_destroy), true},
      {"cublasLtMatmulDescSetAttribute", reinterpret_cast<void**>(&a->matmul_desc_set_attribute), true},
      {"cublasLtMatrixLayoutCreate", reinterpret_cast<void**>(&a->layout_create), true},
      {"cublasLtMatrixLayoutDestroy", reinterpret_cast<void**>(&a->layout_destroy), true},
      {"cublasLtMatmulPreferenceCreate", reinterpret_cast<void**>(&a->preference_create), true},
      {"cublasLtMatmulPreferenceDestroy", reinterpret_cast<void**>(&a->preference_destroy), true},
      {"cublasLtMatmulPreferenceSetAttribute", reinterpret_cast<void**>(&a->preference_set_attribute), true},
      {"cublasLtMatmulAlgoGetHeuristic", reinterpret_cast<void**>(&a->algo_get_heuristic), true},
      {"cublasLtMatmul", reinterpret_cast<void**>(&a->matmul), true},
  };
  for (const Entry& e : entries) {
    *e.slot = find_symbol(lib, e.name);
    if (!*e.slot && e.required) {
      *missing = e.name;
      return false;
    }
  }
  return true;
}

struct Chosen {
  Api api;
  bool ok = false;
  std::string status;
};

void choose(Chosen& c) {
  const std::string setting = env("TAILOR_CUBLASLT");
  if (setting == "0" || setting == "off" || setting == "OFF") {
    c.status = "turned off by TAILOR_CUBLASLT=" + setting;
    return;
  }
  const bool named = !(setting.empty() || setting == "1" || setting == "on" || setting == "ON" || setting == "auto" || setting == "AUTO");
  // a named folder: the library's names in it (say, a venv's nvidia/cublas/lib)
  std::vector<std::string> candidates = named ? std::vector<std::string>{setting} : default_candidates();
  if (named && is_directory(setting)) {
    candidates.clear();
    add_in(setting, candidates);
    if (candidates.empty()) {
      std::string names;
      for (const char* n : kNames) names += (names.empty() ? "" : ", ") + std::string(n);
      c.status = "TAILOR_CUBLASLT=" + setting + " not usable: a folder without " + names;
      return;
    }
  }
  std::vector<std::string> not_found;  // candidates that did not open (the usual case: absent)
  std::string rejected;                // candidates that opened and were not usable, and why
  for (const std::string& path : candidates) {
    std::string error;
    void* lib = open_library(path, &error);
    if (!lib) {
      // an absent library by its name alone; any other failure (a dependency missing, another architecture)
      // with the loader's words, which name the file already on Linux (LoadLibrary's error does not)
      const bool absent = !named && error.find("No such file") != std::string::npos;
      not_found.push_back(absent ? path : error.find(path) != std::string::npos ? error : path + ": " + error);
      continue;
    }
    Api a;
    std::string missing;
    if (!resolve(lib, &a, &missing)) {
      rejected += (rejected.empty() ? "" : "; ") + path + " has no " + missing;
      close_library(lib);
      continue;
    }
#if defined(TAILOR_CUEMU)
    if (auto bind = reinterpret_cast<EmuBindFn>(find_symbol(lib, "cuemuLtBind"))) bind(&kEmuHooks);
#endif
    // a handle on the current device: a library that cannot run here (newer than the driver) says so now
    Handle h = nullptr;
    const Status s = a.create(&h);
    if (s != kSuccess) {
      rejected += (rejected.empty() ? "" : "; ") + path + ": cublasLtCreate returned status " + std::to_string(s);
      close_library(lib);  // (nothing of it is in use)
      continue;
    }
    a.destroy(h);
    c.api = a;
    c.ok = true;
    c.status = path;
    if (a.get_version) {  // CUBLASLT_VERSION: major·10000 + minor·100 + patch
      const size_t v = a.get_version();
      c.status += " (version " + std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." + std::to_string(v % 100) + ")";
    }
    if (!rejected.empty()) c.status += "; passed over: " + rejected;
    return;  // kept open for the process's life
  }
  std::string tried;
  for (const std::string& p : not_found) tried += (tried.empty() ? "" : ", ") + p;
  c.status = named ? "TAILOR_CUBLASLT=" + setting + " not usable" : "no usable cuBLASLt library";
  if (!tried.empty()) c.status += (named ? ": " : " (tried ") + tried + (named ? "" : ")");
  if (!rejected.empty()) c.status += "; " + rejected;
  if (!named) c.status += "; set TAILOR_CUBLASLT to its path";
}

// chosen on the first call, by one thread (a function-local static: the others wait), and fixed from then on,
// so the products' hot path reads it without a lock
const Chosen& chosen() {
  static const Chosen c = [] {
    Chosen r;
    choose(r);
    return r;
  }();
  return c;
}

}  // namespace

const Api* api() {
  const Chosen& c = chosen();
  return c.ok ? &c.api : nullptr;
}

std::string library_status() { return chosen().status; }

}  // namespace lt
}  // namespace cuda
}  // namespace tailor
