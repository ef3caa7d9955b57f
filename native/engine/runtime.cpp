// runtime.cpp — sequence scoring, KV-cache sessions and sampling (see runtime.h). Activations, logits
// and the KV cache are backend buffers; the host reads log-probs, argmaxes and logits through download().
#include "runtime.h"

#include <algorithm>
#include <cmath>

#include "errors.h"

namespace tailor {

int argmax(const float* x, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; i++)
    if (x[i] > x[best]) best = i;
  return int(best);
}

std::vector<SeqScore> score_sequences(const Model& m, Backend& be, const std::vector<std::vector<int>>& seqs,
                                      const ScoreOptions& opt, const CancelToken& cancel, const Progress& progress) {
  const int64_t V = m.cfg.vocab_size, D = m.cfg.dim;
  std::vector<SeqScore> res(seqs.size());
  int64_t total = 0;
  for (auto& s : seqs) {
    if (s.empty()) fail(ErrorCode::ARG, "cannot score an empty sequence");
    if (int64_t(s.size()) > m.cfg.context_length)
      fail(ErrorCode::ARG, "a sequence of " + std::to_string(s.size()) + " tokens exceeds the model's context of " + std::to_string(m.cfg.context_length));
    total += int64_t(s.size());
  }
  RopeTable rope = make_rope_table(m.cfg);
  Workspace ws;
  KvCache kv;
  BackendBuffer h;        // [tokens, D] final hidden states of a batch
  BackendBuffer logits;   // [RB, V] logits of a row block
  BackendBuffer target_b, lp_b, am_b;  // [RB] targets in, log-probs and argmaxes out
  // share[s]: positions 0..share[s]−1 of sequence s hold the tokens of sequence s−1's (their common prefix
  // but its last token, so that s computes the row that predicts its first own token), taken from s−1's keys
  // and values and results, not computed: the choices of a multiple-choice item share their context
  const auto shared = [&](size_t s) -> int {
    if (!opt.share_prefixes || s == 0) return 0;
    const std::vector<int>&a = seqs[s - 1], &c = seqs[s];
    size_t p = 0;
    while (p < a.size() && p < c.size() && a[p] == c[p]) p++;
    const int n = int(std::min(p, c.size())) - 1;
    return n >= kMinSharedPrefix ? n : 0;
  };
  int64_t done = 0;
  size_t i = 0;
  while (i < seqs.size()) {
    // pack sequences [i, j) into one batch of up to max_batch_tokens computed tokens and kBatchRowsPerToken times
    // as many positions, shared prefixes included (at least one sequence)
    size_t j = i;
    int64_t tokens = 0, rows = 0;
    std::vector<int> share;  // [j − i]
    while (j < seqs.size()) {
      const int sh = j == i ? 0 : shared(j);
      const int64_t n = int64_t(seqs[j].size()) - sh;
      if (j > i && (tokens + n > opt.max_batch_tokens || rows + int64_t(seqs[j].size()) > kBatchRowsPerToken * opt.max_batch_tokens)) break;
      share.push_back(sh);
      tokens += n;
      rows += int64_t(seqs[j].size());
      j++;
    }
    // whole sequences one after another in a packed cache (KvCache::Layout::Packed): a sequence's slot is its
    // first row. A shared prefix is copied from the rows where its tokens were computed: the previous
    // sequence's own rows, or, where that one's were copied too, their source (the copies of a layer run
    // together, so none may read what another writes)
    Batch b;
    std::vector<size_t> seq_of;  // [batch row] the sequence of that computed token
    std::vector<KvCopy> from, prev_from;  // a sequence's positions 0.. as segments {computed row, position, length}
    for (size_t s = i, start = 0; s < j; s++) {
      const int sh = share[s - i];
      from.clear();
      for (const KvCopy& g : prev_from) {  // positions [0, sh) of the previous sequence, where they were computed
        if (g.dst >= sh) break;
        const int len = std::min(g.rows, sh - g.dst);
        from.push_back({g.src, g.dst, len});
        b.copies.push_back({g.src, int(start) + g.dst, len});
      }
      from.push_back({int(start) + sh, sh, int(seqs[s].size()) - sh});  // its own positions, computed here
      for (size_t p = size_t(sh); p < seqs[s].size(); p++) {
        b.tokens.push_back(seqs[s][p]);
        b.pos.push_back(int(p));
        b.slot.push_back(int(start));
        seq_of.push_back(s);
      }
      prev_from.swap(from);
      start += seqs[s].size();
    }
    if (kv.n_slots < int(rows)) kv.init_packed(be, m.cfg, int(rows));
    model_forward(m, be, rope, kv, b, ws, h, cancel);
    // logits over the batch's rows in blocks; float64 log-softmax per row
    const int64_t T = b.size(), RB = 256;
    std::vector<std::vector<double>> lpd(j - i);  // [s − i][position] float64 log-probs, for nll_sum
    for (size_t s = i; s < j; s++) {
      const int64_t n = int64_t(seqs[s].size());
      res[s].logprob.resize(size_t(n - 1));
      res[s].argmax.resize(size_t(n));
      lpd[s - i].assign(size_t(n), 0.0);
    }
    for (int64_t r0 = 0; r0 < T; r0 += RB) {
      const int64_t nr = std::min(RB, T - r0);
      logits.reserve(be, sizeof(float) * size_t(nr * V));
      logits_forward(m, be, h.f() + r0 * D, nr, logits.f());
      std::vector<int> target(static_cast<size_t>(nr), -1), am(static_cast<size_t>(nr));
      std::vector<double> lp(static_cast<size_t>(nr), 0.0);
      for (int64_t r = r0; r < r0 + nr; r++) {
        const std::vector<int>& ids = seqs[seq_of[size_t(r)]];
        const int p = b.pos[size_t(r)];
        if (p + 1 < int64_t(ids.size())) target[size_t(r - r0)] = ids[size_t(p) + 1];
      }
      target_b.reserve(be, sizeof(int) * size_t(nr));
      lp_b.reserve(be, sizeof(double) * size_t(nr));
      am_b.reserve(be, sizeof(int) * size_t(nr));
      be.upload(target_b.i(), target.data(), sizeof(int) * size_t(nr));
      be.upload(lp_b.d(), lp.data(), sizeof(double) * size_t(nr));  // rows with no target keep 0
      be.logprob_forward(logits.f(), nr, V, target_b.i(), lp_b.d(), am_b.i());
      be.download(lp.data(), lp_b.d(), sizeof(double) * size_t(nr));
      be.download(am.data(), am_b.i(), sizeof(int) * size_t(nr));
      for (int64_t r = r0; r < r0 + nr; r++) {
        const size_t q = seq_of[size_t(r)];
        const int64_t p = b.pos[size_t(r)], n = int64_t(seqs[q].size());
        SeqScore& out = res[q];
        out.argmax[size_t(p)] = am[size_t(r - r0)];
        if (p + 1 < n) {
          out.logprob[size_t(p)] = float(lp[size_t(r - r0)]);
          lpd[q - i][size_t(p)] = lp[size_t(r - r0)];
        } else if (opt.last_logits) {
          out.last_logits.resize(size_t(V));
          be.download(out.last_logits.data(), logits.f() + (r - r0) * V, sizeof(float) * size_t(V));
        }
      }
    }
    for (size_t q = i; q < j; q++) {
      const int sh = share[q - i];  // the shared positions' results are the previous sequence's (the same tokens)
      res[q].shared = sh;
      if (sh > 0) {
        std::copy(res[q - 1].logprob.begin(), res[q - 1].logprob.begin() + sh, res[q].logprob.begin());
        std::copy(res[q - 1].argmax.begin(), res[q - 1].argmax.begin() + sh, res[q].argmax.begin());
        std::copy(lpd[q - i - 1].begin(), lpd[q - i - 1].begin() + sh, lpd[q - i].begin());
      }
      for (size_t p = 0; p + 1 < seqs[q].size(); p++) res[q].nll_sum -= lpd[q - i][p];
    }
    done += rows;
    if (progress) progress(done, total);
    i = j;
  }
  return res;
}

Session::Session(const Model& m, Backend& be, int n_ctx) : m_(m), be_(be), rope_(make_rope_table(m.cfg)) {
  if (n_ctx <= 0 || n_ctx > m.cfg.context_length) n_ctx = m.cfg.context_length;
  kv_.init(be, m.cfg, 1, n_ctx);
}

const std::vector<float>& Session::eval(const std::vector<int>& tokens, const CancelToken& cancel, int n_batch) {
  advance(tokens, cancel, n_batch);
  return logits();
}

void Session::advance(const std::vector<int>& tokens, const CancelToken& cancel, int n_batch) {
  if (tokens.empty()) fail(ErrorCode::ARG, "nothing to evaluate");
  if (n_past_ + int64_t(tokens.size()) > kv_.n_ctx)
    fail(ErrorCode::ARG, "the context is full (" + std::to_string(kv_.n_ctx) + " tokens)");
  for (size_t i = 0; i < tokens.size(); i += size_t(n_batch)) {
    Batch b;
    size_t e = std::min(tokens.size(), i + size_t(n_batch));
    for (size_t k = i; k < e; k++) {
      b.tokens.push_back(tokens[k]);
      b.pos.push_back(n_past_ + int(k - i));
      b.slot.push_back(0);
    }
    model_forward(m_, be_, rope_, kv_, b, ws_, h_, cancel);
    n_past_ += int(e - i);
    if (e == tokens.size()) {
      const size_t V = size_t(m_.cfg.vocab_size);
      logits_dev_.reserve(be_, sizeof(float) * V);
      logits_forward(m_, be_, h_.f() + (b.size() - 1) * m_.cfg.dim, 1, logits_dev_.f());
      logits_fresh_ = false;
    }
  }
}

const std::vector<float>& Session::logits() {
  if (!logits_fresh_) {
    if (!logits_dev_.f()) fail(ErrorCode::ARG, "no logits yet: evaluate some tokens first");
    const size_t V = size_t(m_.cfg.vocab_size);
    logits_.resize(V);
    be_.download(logits_.data(), logits_dev_.f(), sizeof(float) * V);
    logits_fresh_ = true;
  }
  return logits_;
}

int Session::sample(Sampler& sampler) {
  const SampleParams& p = sampler.params();
  const int64_t V = m_.cfg.vocab_size;
  if (be_.host_memory() || logits_fresh_ || !logits_dev_.f()) return sampler.sample(logits());
  if (p.temperature <= 0.f) {  // greedy: the first maximum, as argmax()
    pick_.reserve(be_, 64);  // int target (−1: no log-prob), int argmax, double log-prob at byte 16
    const int none = -1;
    int* target = pick_.i();
    int* am = pick_.i() + 1;
    be_.upload(target, &none, sizeof(int));
    be_.logprob_forward(logits_dev_.f(), 1, V, target, reinterpret_cast<double*>(pick_.i() + 4), am);
    int tok = 0;
    be_.download(&tok, am, sizeof(int));
    return tok;
  }
  const int k = p.top_k > 0 && p.top_k < V ? p.top_k : int(V);
  if (k > kDeviceTopK) return sampler.sample(logits());  // the whole vocabulary ranked: on the host
  pick_.reserve(be_, sizeof(float) * size_t(k) + sizeof(int) * size_t(k));
  float* vals = pick_.f();
  int* ids = reinterpret_cast<int*>(vals + k);
  be_.topk_scaled(vals, ids, logits_dev_.f(), V, k, p.temperature);
  std::vector<float> hv(static_cast<size_t>(k));
  std::vector<int> hi(static_cast<size_t>(k));
  be_.download(hv.data(), vals, sizeof(float) * size_t(k));
  be_.download(hi.data(), ids, sizeof(int) * size_t(k));
  std::vector<std::pair<float, int>> top(static_cast<size_t>(k));
  for (int i = 0; i < k; i++) top[size_t(i)] = {hv[size_t(i)], hi[size_t(i)]};
  return sampler.pick(std::move(top));
}

static uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

Sampler::Sampler(const SampleParams& p) : p_(p) {
  uint64_t x = p.seed;
  for (auto& s : s_) s = splitmix64(x);
}

double Sampler::uniform() {
  auto rotl = [](uint64_t v, int k) { return (v << k) | (v >> (64 - k)); };
  uint64_t r = rotl(s_[1] * 5, 7) * 9, t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return double(r >> 11) * (1.0 / 9007199254740992.0);  // [0, 1)
}

int Sampler::sample(const std::vector<float>& logits) {
  const int n = int(logits.size());
  if (p_.temperature <= 0.f) return argmax(logits.data(), n);
  cand_.resize(size_t(n));
  for (int i = 0; i < n; i++) cand_[i] = {logits[i] / p_.temperature, i};
  int k = (p_.top_k > 0 && p_.top_k < n) ? p_.top_k : n;
  std::partial_sort(cand_.begin(), cand_.begin() + k, cand_.end(), sampler_order);
  cand_.resize(size_t(k));
  return pick(std::move(cand_));
}

int Sampler::pick(std::vector<std::pair<float, int>> top) {
  cand_ = std::move(top);
  const int k = int(cand_.size());
  if (k == 0) fail(ErrorCode::ARG, "nothing to sample from");
  double mx = cand_[0].first, sum = 0;
  std::vector<double> pr(static_cast<size_t>(k));
  for (int i = 0; i < k; i++) sum += (pr[i] = std::exp(double(cand_[i].first) - mx));
  for (auto& v : pr) v /= sum;
  int keep = k;
  if (p_.top_p < 1.f) {  // smallest prefix whose mass reaches top_p
    double cum = 0;
    for (int i = 0; i < k; i++) {
      cum += pr[i];
      if (cum >= p_.top_p) { keep = i + 1; break; }
    }
  }
  double mass = 0;
  for (int i = 0; i < keep; i++) mass += pr[i];
  double u = uniform() * mass, cum = 0;
  for (int i = 0; i < keep; i++) {
    cum += pr[i];
    if (u < cum) return cand_[i].second;
  }
  return cand_[keep - 1].second;
}

}  // namespace tailor
