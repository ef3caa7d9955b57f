// probe.cpp — tailor_probe: loads models with the engine alone (no Node) and prints a one-line verdict
// per file, so the tests can run the parsers under AddressSanitizer. Usage:
//   tailor_probe load PATH...          → "OK <format> <params>" or "ERROR <E_CODE> <message>" per path
//   tailor_probe score PATH ID,ID,...   → mean NLL and last-position argmax (a smoke check)
//   tailor_probe golden PATH ID,ID,...  → JSON {mean_nll, argmax, last_logits} of the sequence, as the golden
//       files hold them (the Windows build's check, test/windows.test.ts)
//   tailor_probe generate PATH ID,ID,... N → the prompt and N greedy tokens through a KV-cache session
//   tailor_probe hooks PATH [CANCEL_AFTER] → the load's hooks against their contract (LoadHooks): progress
//       rises from 0 to the weight bytes; each tensor range is disjoint from the others and already holds its
//       final values when reported; every nonzero weight lies in a reported range. With CANCEL_AFTER, the
//       cancel flag is raised in the hook of that tensor: "ERROR E_CANCELLED" and nothing else reported.
//   tailor_probe release PATH           → a load that hands its host pages back (LoadHooks::release) against a
//       plain load: the arena's resident bytes (only pages shared by two tensors may stay), every tensor read
//       back (host_read, HostTensor) bit for bit, a random LoRA merged into both alike, and host_restore
//       (resident=n/a where the system cannot count resident pages).
//   tailor_probe batches PATH          → model_forward over a packed KV cache (scoring's) with well-formed and
//       malformed batches, a line "<case> OK" or "<case> ERROR <E_CODE> <message>" each: shared prefixes must be
//       copied from rows the batch's tokens compute, and every sequence whole, on rows of its own.
//   tailor_probe reserve GIB            → a LLaMA-shaped arena of about GIB GiB sized plainly (the system's
//       accounting: E_OOM when it cannot be met) and as a released load sizes it (an address range only),
//       with the bytes resident after one tensor is written into the latter.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#ifdef _WIN32
#include "win32.h"
#include <shellapi.h>
#endif

#include "errors.h"
#include "host_weights.h"
#include "forward.h"
#include "loader.h"
#include "runtime.h"

using namespace tailor;

// model_forward's checks of packed batches (KvCache::Layout::Packed): one line per case
static int batch_checks(const char* path) {
  auto m = load_model(path);
  auto be = make_cpu_backend(BackendOptions{});
  const RopeTable rope = make_rope_table(m->cfg);
  Workspace ws;
  BackendBuffer out;
  // tokens at (slot, pos) with token id 1 + pos; copies {src, dst, rows}
  auto run = [&](const char* name, std::vector<std::pair<int, int>> at, std::vector<KvCopy> copies, bool packed = true) {
    KvCache kv;
    if (packed) kv.init_packed(*be, m->cfg, 16);
    else kv.init(*be, m->cfg, 2, 8);
    Batch b;
    for (auto [slot, pos] : at) b.tokens.push_back(1 + pos), b.pos.push_back(pos), b.slot.push_back(slot);
    b.copies = std::move(copies);
    try {
      model_forward(*m, *be, rope, kv, b, ws, out, CancelToken{});
      std::printf("%s OK\n", name);
    } catch (const EngineError& e) {
      std::printf("%s ERROR %s %s\n", name, error_code_name(e.code()), e.what());
    }
  };
  run("whole", {{0, 0}, {0, 1}, {0, 2}, {3, 0}, {3, 1}}, {});
  run("shared-prefix", {{0, 0}, {0, 1}, {0, 2}, {3, 2}, {3, 3}}, {{0, 3, 2}});
  // a third sequence sharing 3 positions with the second: 2 computed by the first, 1 by the second
  run("two-segments", {{0, 0}, {0, 1}, {0, 2}, {0, 3}, {4, 2}, {4, 3}, {8, 3}}, {{0, 4, 2}, {0, 8, 2}, {6, 10, 1}});
  run("copy-of-copied-rows", {{0, 0}, {0, 1}, {0, 2}, {3, 2}, {6, 2}}, {{0, 3, 2}, {3, 6, 2}});
  run("gap-before-tokens", {{0, 0}, {0, 1}, {0, 2}, {3, 2}}, {{0, 3, 1}});
  run("not-from-0", {{0, 1}, {0, 2}}, {});
  run("out-of-order", {{0, 0}, {0, 2}, {0, 1}}, {});
  run("overlapping", {{0, 0}, {0, 1}, {0, 2}, {2, 0}}, {});
  run("past-the-rows", {{14, 0}, {14, 1}, {14, 2}}, {});
  run("copy-from-later-rows", {{0, 2}, {0, 3}, {4, 0}, {4, 1}}, {{4, 0, 2}});
  run("copy-of-unwritten-rows", {{0, 0}, {4, 2}}, {{0, 4, 2}});
  run("copy-onto-tokens", {{0, 0}, {0, 1}, {3, 0}, {3, 1}}, {{0, 3, 2}});
  run("two-copies-one-slot", {{0, 0}, {0, 1}, {0, 2}, {4, 2}}, {{0, 4, 2}, {0, 4, 2}});
  run("copy-past-the-rows", {{0, 0}, {0, 1}, {0, 2}}, {{0, 15, 2}});
  run("negative-position", {{3, -1}, {3, 0}}, {});
  run("copies-without-packing", {{0, 0}, {1, 0}}, {{0, 1, 1}}, false);
  return 0;
}

// "1,2,3" as ids
static std::vector<int> parse_ids(const char* text) {
  std::vector<int> ids;
  std::stringstream ss(text);
  std::string tok;
  while (std::getline(ss, tok, ',')) ids.push_back(std::stoi(tok));
  return ids;
}

// every tensor of m as (kind, layer), the tied lm_head included
static std::vector<std::pair<TensorKind, int>> all_tensors(const Model& m) {
  std::vector<std::pair<TensorKind, int>> r = {{TensorKind::TokEmb, -1}, {TensorKind::OutNorm, -1}, {TensorKind::LmHead, -1}};
  for (int l = 0; l < m.cfg.n_layers; l++)
    for (TensorKind k : kLayerKinds) r.push_back({k, l});
  return r;
}

// true when every tensor host_read gives from a equals b's (bit for bit)
static bool same_reads(const Model& a, const Model& b) {
  for (auto [k, l] : all_tensors(a)) {
    const uint64_t n = tensor_numel(a, k, l);
    if (n != tensor_numel(b, k, l)) return false;
    std::vector<float> x(n), y(n);
    host_read(a, k, l, x.data());
    host_read(b, k, l, y.data());
    if (n && std::memcmp(x.data(), y.data(), n * sizeof(float)) != 0) return false;
  }
  return true;
}

static int reserve_check(double gib) {
  Config c;
  c.format = "hf", c.architecture = "llama";
  c.dim = 4096, c.head_dim = 128, c.vocab_size = 32000, c.context_length = 2048;
  const double per_layer = 4.0 * (4.0 * 4096 * 4096 + 3.0 * 4096 * 11008 + 2 * 4096);  // bytes of one layer in fp32
  c.n_layers = std::max(1, int(gib * double(1ull << 30) / per_layer + 0.5));
  c.layers.assign(size_t(c.n_layers), LayerShape{32, 32, 11008});
  auto try_alloc = [&](bool reserve, Model& m) -> std::string {
    m.cfg = c;
    try {
      model_allocate(m, reserve);
      return "ok";
    } catch (const EngineError& e) {
      return error_code_name(e.code());
    }
  };
  Model plain, reserved;
  const std::string p = try_alloc(false, plain);
  plain = Model();  // (given back before the second try)
  const std::string r = try_alloc(true, reserved);
  int64_t resident = -1;
  if (r == "ok") {
    commit_pages(reserved.layers[0].wq, size_t(4096) * 4096 * sizeof(float));  // (Windows: a reserved range faults until committed)
    std::fill(reserved.layers[0].wq, reserved.layers[0].wq + size_t(4096) * 4096, 1.f);  // one tensor, 64 MiB
    resident = host_resident_bytes(reserved);
  }
  std::printf("RESERVE bytes=%llu layers=%d plain=%s reserve=%s resident_after_one_tensor=%lld\n",
              (unsigned long long)(reserved.arena.size() ? reserved.arena.size() * sizeof(float) : 0), c.n_layers, p.c_str(), r.c_str(), (long long)resident);
  return 0;
}

static int release_check(const char* path) {
  try {
    auto ref = load_model(path);
    LoadHooks h;
    h.release = true;
    auto m = load_model(path, &h);
    const auto tensors = all_tensors(*m);
    // pages shared by two tensors (or by a tensor and the arena's ends) may stay: two per tensor at most
    const int64_t page = int64_t(host_page_size()), resident = host_resident_bytes(*m), bound = int64_t(2 * tensors.size() + 2) * page;
    // (a released load's arena is an address range only: tailor_probe reserve)
    const bool released = m->host_released() && !ref->host_released() && m->arena.get_allocator().reserve_only &&
                          !ref->arena.get_allocator().reserve_only;
    const bool read = same_reads(*m, *ref);
    bool held = true;
    for (auto [k, l] : tensors) {
      HostTensor t(*m, k, l);
      const uint64_t n = tensor_numel(*ref, k, l);
      std::vector<float> y(n);
      host_read(*ref, k, l, y.data());
      held = held && t.size() == n && (!n || std::memcmp(t.data(), y.data(), n * sizeof(float)) == 0);
    }
    const int64_t resident_after = host_resident_bytes(*m);
    // a random rank-2 adapter on every projection, merged into both
    LoraConfig lc;
    lc.rank = 2;
    lc.alpha = 3.f;
    LoraLayout lay;
    lay.build(m->cfg, lc);
    std::vector<float> p(size_t(lay.size));
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (float& v : p) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      v = float(int64_t(s >> 40) % 2001 - 1000) * 1e-4f;
    }
    host_merge_lora(*ref, lay, p.data());
    host_merge_lora(*m, lay, p.data());
    const bool merged = same_reads(*m, *ref);
    host_restore(*m);
    bool restored = !m->host_released() && !m->arena.get_allocator().reserve_only;  // a reserved arena again
    for (auto [k, l] : tensors) {
      const uint64_t n = tensor_numel(*m, k, l);
      const float* a = k == TensorKind::LmHead && m->cfg.tied ? m->tok_emb : m->tensor_ptr(k, l);
      const float* b = k == TensorKind::LmHead && ref->cfg.tied ? ref->tok_emb : ref->tensor_ptr(k, l);
      restored = restored && (!n || std::memcmp(a, b, n * sizeof(float)) == 0);
    }
    auto v = [](bool ok) { return ok ? "ok" : "BAD"; };
    std::printf("RELEASE released=%s resident=%s read=%s held=%s merged=%s restored=%s (arena %zu bytes, resident %lld after the load, %lld after reading, bound %lld)\n",
                v(released), resident < 0 ? "n/a" : v(resident <= bound && resident_after <= bound), v(read), v(held), v(merged), v(restored),
                m->arena.size() * sizeof(float), (long long)resident, (long long)resident_after, (long long)bound);
  } catch (const EngineError& e) {
    std::printf("ERROR %s %s\n", error_code_name(e.code()), e.what());
    return 1;
  }
  return 0;
}

#ifdef _WIN32
// Windows hands main() its arguments in the ANSI code page, which cannot hold every path; the engine takes
// UTF-8 (as the addon passes Node's strings), so the probe reads its command line as UTF-16 and converts it
static std::vector<std::string> utf8_arguments() {
  int n = 0;
  wchar_t** w = CommandLineToArgvW(GetCommandLineW(), &n);
  std::vector<std::string> r;
  for (int i = 0; w && i < n; i++) {
    const int len = WideCharToMultiByte(CP_UTF8, 0, w[i], -1, nullptr, 0, nullptr, nullptr);
    std::string a(size_t(len > 0 ? len - 1 : 0), '\0');
    if (len > 1) WideCharToMultiByte(CP_UTF8, 0, w[i], -1, a.data(), len, nullptr, nullptr);
    r.push_back(a);
  }
  LocalFree(w);
  return r;
}
#endif

int main(int argc, char** argv) {
#ifdef _WIN32
  std::vector<std::string> args = utf8_arguments();
  std::vector<char*> arg_ptrs;
  for (std::string& a : args) arg_ptrs.push_back(a.data());
  arg_ptrs.push_back(nullptr);
  argc = int(args.size());
  argv = arg_ptrs.data();
#endif
  if (argc < 3) {
    std::fprintf(stderr, "usage: tailor_probe load PATH... | score PATH IDS | golden PATH IDS | generate PATH IDS N | hooks PATH [CANCEL_AFTER] | release PATH | batches PATH | reserve GIB\n");
    return 2;
  }
  std::string cmd = argv[1];
  if (cmd == "load") {
    for (int i = 2; i < argc; i++) {
      try {
        auto m = load_model(argv[i]);
        std::printf("OK %s %llu\n", m->cfg.format.c_str(), (unsigned long long)m->param_count());
      } catch (const EngineError& e) {
        std::printf("ERROR %s %s\n", error_code_name(e.code()), e.what());
      }
    }
    return 0;
  }
  if ((cmd == "score" || cmd == "golden") && argc == 4) {
    try {
      auto m = load_model(argv[2]);
      const std::vector<int> ids = parse_ids(argv[3]);
      auto be = make_cpu_backend(BackendOptions{});
      auto r = score_sequences(*m, *be, {ids}, ScoreOptions{true}, CancelToken{}, nullptr);
      const double mean_nll = r[0].nll_sum / double(ids.size() - 1);
      if (cmd == "score") {
        std::printf("mean_nll %.6f argmax_last %d\n", mean_nll, r[0].argmax.back());
        return 0;
      }
      std::printf("{\"mean_nll\": %.9g, \"argmax\": [", mean_nll);
      for (size_t i = 0; i < r[0].argmax.size(); i++) std::printf("%s%d", i ? ", " : "", r[0].argmax[i]);
      std::printf("], \"last_logits\": [");
      for (size_t i = 0; i < r[0].last_logits.size(); i++) std::printf("%s%.9g", i ? ", " : "", double(r[0].last_logits[i]));
      std::printf("]}\n");
    } catch (const EngineError& e) {
      std::printf("ERROR %s %s\n", error_code_name(e.code()), e.what());
      return 1;
    }
    return 0;
  }
  if (cmd == "generate" && argc == 5) {
    try {
      auto m = load_model(argv[2]);
      std::vector<int> ids = parse_ids(argv[3]);
      const int n = std::atoi(argv[4]);
      auto be = make_cpu_backend(BackendOptions{});
      Session session(*m, *be, m->cfg.context_length);
      Sampler greedy(SampleParams{});
      session.advance(ids, CancelToken{});
      for (int i = 0; i < n; i++) {
        ids.push_back(session.sample(greedy));
        if (i + 1 < n) session.advance({ids.back()}, CancelToken{});
      }
      for (size_t i = 0; i < ids.size(); i++) std::printf("%s%d", i ? " " : "", ids[i]);
      std::printf("\n");
    } catch (const EngineError& e) {
      std::printf("ERROR %s %s\n", error_code_name(e.code()), e.what());
      return 1;
    }
    return 0;
  }
  if (cmd == "hooks" && (argc == 3 || argc == 4)) {
    const int cancel_after = argc == 4 ? std::atoi(argv[3]) : -1;
    int32_t flag = 0;
    struct Part {
      const float* p;
      size_t n;
      std::vector<float> seen;  // the values when reported
    };
    std::vector<Part> parts;
    std::vector<std::pair<uint64_t, uint64_t>> prog;
    int allocated = 0, after_cancel = 0;
    LoadHooks h;
    h.cancel = CancelToken{&flag};
    h.allocated = [&](const Model&) { allocated++; };
    h.progress = [&](uint64_t d, uint64_t t) { prog.push_back({d, t}); };
    h.tensor = [&](const Model&, const float* p, size_t n) {
      if (flag) after_cancel++;
      parts.push_back({p, n, std::vector<float>(p, p + n)});
      if (int(parts.size()) == cancel_after) flag = 1;
    };
    try {
      auto m = load_model(argv[2], &h);
      bool progress_ok = !prog.empty() && prog.front().first == 0 && prog.back().first == prog.back().second;
      for (size_t i = 1; i < prog.size(); i++) progress_ok = progress_ok && prog[i].first >= prog[i - 1].first && prog[i].second == prog[0].second;
      bool final_ok = true, disjoint = true, inside = true;
      std::vector<char> covered(m->arena.size(), 0);
      for (auto& pt : parts) {
        if (pt.p < m->arena.data() || pt.p + pt.n > m->arena.data() + m->arena.size()) {
          inside = false;
          continue;
        }
        const size_t off = size_t(pt.p - m->arena.data());
        for (size_t i = 0; i < pt.n; i++) {
          if (covered[off + i]) disjoint = false;
          covered[off + i] = 1;
        }
        final_ok = final_ok && std::equal(pt.seen.begin(), pt.seen.end(), pt.p);
      }
      size_t uncovered = 0;
      for (size_t i = 0; i < covered.size(); i++) uncovered += !covered[i] && m->arena[i] != 0.f;
      std::printf("HOOKS allocated=%d tensors=%zu bytes=%llu progress=%s final=%s disjoint=%s inside=%s uncovered=%zu\n", allocated, parts.size(),
                  (unsigned long long)(prog.empty() ? 0 : prog.back().second), progress_ok ? "ok" : "BAD", final_ok ? "ok" : "BAD",
                  disjoint ? "ok" : "BAD", inside ? "ok" : "BAD", uncovered);
    } catch (const EngineError& e) {
      std::printf("ERROR %s after %zu tensors (%d after the cancel) %s\n", error_code_name(e.code()), parts.size(), after_cancel, e.what());
    }
    return 0;
  }
  if (cmd == "release" && argc == 3) return release_check(argv[2]);
  if (cmd == "batches" && argc == 3) return batch_checks(argv[2]);
  if (cmd == "reserve" && argc == 3) return reserve_check(std::atof(argv[2]));
  std::fprintf(stderr, "unknown command\n");
  return 2;
}
