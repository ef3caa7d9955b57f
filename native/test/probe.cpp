// probe.cpp — tailor_probe: loads models with the engine alone (no Node) and prints a one-line verdict
// per file, so the tests can run the parsers under AddressSanitizer. Usage:
//   tailor_probe load PATH...          → "OK <format> <params>" or "ERROR <E_CODE> <message>" per path
//   tailor_probe score PATH ID,ID,...   → mean NLL and last-position argmax (a smoke check)
//   tailor_probe hooks PATH [CANCEL_AFTER] → the load's hooks against their contract (LoadHooks): progress
//       rises from 0 to the weight bytes; each tensor range is disjoint from the others and already holds its
//       final values when reported; every nonzero weight lies in a reported range. With CANCEL_AFTER, the
//       cancel flag is raised in the hook of that tensor: "ERROR E_CANCELLED" and nothing else reported.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "errors.h"
#include "loader.h"
#include "runtime.h"

using namespace tailor;

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: tailor_probe load PATH... | score PATH IDS | hooks PATH [CANCEL_AFTER]\n");
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
  if (cmd == "score" && argc == 4) {
    try {
      auto m = load_model(argv[2]);
      std::vector<int> ids;
      std::stringstream ss(argv[3]);
      std::string tok;
      while (std::getline(ss, tok, ',')) ids.push_back(std::stoi(tok));
      auto be = make_cpu_backend(BackendOptions{});
      auto r = score_sequences(*m, *be, {ids}, ScoreOptions{true}, CancelToken{}, nullptr);
      std::printf("mean_nll %.6f argmax_last %d\n", r[0].nll_sum / double(ids.size() - 1), r[0].argmax.back());
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
  std::fprintf(stderr, "unknown command\n");
  return 2;
}
