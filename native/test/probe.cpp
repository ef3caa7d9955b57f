// probe.cpp — tailor_probe: loads models with the engine alone (no Node) and prints a one-line verdict
// per file, so the tests can run the parsers under AddressSanitizer. Usage:
//   tailor_probe load PATH...          → "OK <format> <params>" or "ERROR <E_CODE> <message>" per path
//   tailor_probe score PATH ID,ID,...   → mean NLL and last-position argmax (a smoke check)
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
    std::fprintf(stderr, "usage: tailor_probe load PATH... | score PATH IDS\n");
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
  std::fprintf(stderr, "unknown command\n");
  return 2;
}
