// runtime.h — what callers do with a loaded model: score sequences (log-likelihoods, argmax, logits),
// and generate text token by token with a KV-cache session and a seeded sampler.
#pragma once
#include <cstdint>
#include <functional>
#include <random>
#include <vector>

#include "backend.h"
#include "forward.h"
#include "model.h"

namespace tailor {

struct SeqScore {
  std::vector<float> logprob;      // [n-1] log p(ids[t+1] | ids[0..t]), float64 log-softmax
  std::vector<int> argmax;         // [n] argmax of the logits at every position
  std::vector<float> last_logits;  // [vocab] logits at the last position (when asked)
  double nll_sum = 0;              // -Σ logprob
  int shared = 0;                  // leading positions whose results are the previous sequence's (computed once)
};

struct ScoreOptions {
  bool last_logits = false;
  int64_t max_batch_tokens = 2048;  // sequences are packed into batches of up to this many computed tokens
  bool share_prefixes = true;       // a sequence's prefix in common with the previous one is computed once
};

// the shortest common prefix that is copied rather than computed again (each copy is a device copy per layer)
constexpr int kMinSharedPrefix = 8;
// a batch's positions (its packed cache's rows, shared prefixes included) are at most this many times its
// computed tokens: 64 few-shot requests sharing 1,500 tokens would otherwise hold 96,000 (3 GiB at LLaMA-7B)
constexpr int64_t kBatchRowsPerToken = 4;

using Progress = std::function<void(int64_t done, int64_t total)>;

// Scores every sequence independently (each from position 0). Sequences may differ in length. The prefix a
// sequence has in common with the one before it in the same batch (as the choices of one item have their
// context) is computed once: its rows' keys and values are copied, and its results are the earlier
// sequence's, which are the same function of the same tokens.
std::vector<SeqScore> score_sequences(const Model& m, Backend& be, const std::vector<std::vector<int>>& seqs,
                                      const ScoreOptions& opt, const CancelToken& cancel, const Progress& progress);

class Sampler;

// A KV-cache session for one sequence.
class Session {
 public:
  Session(const Model& m, Backend& be, int n_ctx);
  // appends tokens at position n_past (in chunks of n_batch) and returns the logits of the last one
  const std::vector<float>& eval(const std::vector<int>& tokens, const CancelToken& cancel, int n_batch = 512);
  // the same, leaving the logits where the backend computes (for sample())
  void advance(const std::vector<int>& tokens, const CancelToken& cancel, int n_batch = 512);
  // the last token's logits on the host (copied from the backend on first use after advance)
  const std::vector<float>& logits();
  // the next token from the last logits: what sampler.sample(logits()) returns, but on a device only the
  // result crosses to the host (greedy: the argmax; top-k ≤ 1024: the k candidates), not the vocabulary
  int sample(Sampler& sampler);
  static constexpr int kDeviceTopK = 1024;  // the largest top_k sampled from a device's candidates
  int n_past() const { return n_past_; }
  int n_ctx() const { return kv_.n_ctx; }
  void reset() { n_past_ = 0; }

 private:
  const Model& m_;
  Backend& be_;
  RopeTable rope_;
  KvCache kv_;
  Workspace ws_;
  BackendBuffer h_;            // [T, dim] final hidden states of the last chunk
  BackendBuffer logits_dev_;   // [vocab] logits of the last token (backend buffer)
  std::vector<float> logits_;  // [vocab] the same, on the host
  bool logits_fresh_ = false;  // logits_ holds logits_dev_
  BackendBuffer pick_;         // device sampling: top-k values [k] then ids [k]; or (greedy) target, argmax, logprob
  int n_past_ = 0;
};

struct SampleParams {
  float temperature = 0.f;  // 0 = greedy
  int top_k = 0;            // 0 = off
  float top_p = 1.f;        // 1 = off
  uint64_t seed = 0;
};

// the sampler's ranking of candidates: by value, ties by the lower token id
inline bool sampler_order(const std::pair<float, int>& a, const std::pair<float, int>& b) {
  return a.first > b.first || (a.first == b.first && a.second < b.second);
}

// Deterministic on every platform: xoshiro256** seeded through splitmix64, own uniform mapping.
class Sampler {
 public:
  explicit Sampler(const SampleParams& p);
  int sample(const std::vector<float>& logits);
  // the rest of sample() from its candidates: the top k of logits/temperature in sampler_order (k = top_k,
  // or the whole vocabulary when top_k is off), e.g. as a device selected them
  int pick(std::vector<std::pair<float, int>> top);
  const SampleParams& params() const { return p_; }

 private:
  double uniform();
  SampleParams p_;
  uint64_t s_[4];
  std::vector<std::pair<float, int>> cand_;
};

int argmax(const float* x, int64_t n);

}  // namespace tailor
