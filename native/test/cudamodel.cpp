// cudamodel.cpp — the whole-model part of tailor_cudacheck: one model loaded once, run on the CPU backend
// and on the CUDA backend (its weights uploaded by bind_weights), compared position by position. Rows:
// logits of a fixed sequence at every position (max abs diff ≤ 1e-4), score_sequences on three packed
// sequences of different lengths (log-probs ≤ 1e-4, argmax ids), and 64 greedy tokens through a KV-cache
// Session (ids identical); the weights copied while the model loads (bind_part from the loader's hooks)
// against bind_weights after it. Models: a path (HF folder, GGUF or llama2.c file) or a seeded random GQA model
// with a layer whose attention is pruned away. Then the training rows of cudatrain.cpp.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend.h"
#include "bf16ref.h"
#include "cudacheck.h"
#include "errors.h"
#include "json.h"
#include "forward.h"
#include "loader.h"
#include "model.h"
#include "runtime.h"

using namespace tailor;

void check_training_rows(Model& m, const std::string& label, Backend& cpu, Backend& gpu, int device);  // cudatrain.cpp

namespace {

using cudacheck::note;
using cudacheck::row;
const double kLogitTol = 1e-4;  // absolute, on logits and log-probs


// a seeded random model: dim 96, 3 layers of different shapes (GQA 6/2, MHA 2/2, attention pruned), vocab 300
std::unique_ptr<Model> random_gqa_model() {
  auto m = std::make_unique<Model>();
  Config& c = m->cfg;
  c.format = "hf";
  c.architecture = "llama";
  c.source_dtype = "F32";
  c.dim = 96;
  c.n_layers = 3;
  c.head_dim = 16;
  c.vocab_size = 300;
  c.context_length = 128;
  c.rope_theta = 10000.f;
  c.rope_interleaved = true;
  c.tied = false;
  c.layers = {{6, 2, 200}, {2, 2, 77}, {0, 0, 130}};
  model_allocate(*m);
  std::mt19937_64 rng(7);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (float& w : m->arena) w = 0.08f * nd(rng);
  auto norm = [&](float* p) {
    for (int i = 0; i < c.dim; i++) p[i] = 1.f + 0.1f * nd(rng);
  };
  norm(m->out_norm);
  for (int l = 0; l < c.n_layers; l++) {
    if (c.layers[l].n_head > 0) norm(m->layers[l].attn_norm);
    if (c.layers[l].ffn > 0) norm(m->layers[l].ffn_norm);
  }
  return m;
}

// logits[T, V] of one sequence from position 0, on the host: the whole sequence in one forward, or in forwards
// of `chunk` tokens through its KV cache (chunk 1: the decoding path, each token's attention reading the keys
// and values its predecessors stored)
std::vector<float> sequence_logits(const Model& m, Backend& be, const std::vector<int>& ids, int64_t chunk = 0) {
  const int64_t T = int64_t(ids.size()), V = m.cfg.vocab_size, step = chunk > 0 ? chunk : T;
  RopeTable rope = make_rope_table(m.cfg);
  KvCache kv;
  kv.init(be, m.cfg, 1, int(T));
  Workspace ws;
  BackendBuffer h, logits;  // [step, dim], [step, V]
  logits.reserve(be, sizeof(float) * size_t(step * V));
  std::vector<float> out(size_t(T * V));
  for (int64_t t0 = 0; t0 < T; t0 += step) {
    const int64_t n = std::min(step, T - t0);
    Batch b;
    for (int64_t t = t0; t < t0 + n; t++) {
      b.tokens.push_back(ids[size_t(t)]);
      b.pos.push_back(int(t));
      b.slot.push_back(0);
    }
    model_forward(m, be, rope, kv, b, ws, h, CancelToken{});
    logits_forward(m, be, h.f(), n, logits.f());
    be.download(out.data() + t0 * V, logits.f(), sizeof(float) * size_t(n * V));
  }
  return out;
}

// n tokens after the prompt through a KV-cache Session: picked by Session::sample (on a device: the argmax
// or the top-k candidates computed there), or by the host sampler on the logits copied back
std::vector<int> generate(const Model& m, Backend& be, const std::vector<int>& prompt, int n, const SampleParams& sp, bool session_pick) {
  Session s(m, be, 0);
  Sampler sampler(sp);
  std::vector<int> out;
  s.advance(prompt, CancelToken{});
  for (int i = 0; i < n && s.n_past() < s.n_ctx(); i++) {
    int tok = session_pick ? s.sample(sampler) : sampler.sample(s.logits());
    out.push_back(tok);
    if (i + 1 < n && s.n_past() < s.n_ctx()) s.advance({tok}, CancelToken{});
  }
  return out;
}
std::vector<int> greedy(const Model& m, Backend& be, const std::vector<int>& prompt, int n) { return generate(m, be, prompt, n, SampleParams{}, true); }

// the first position where two token lists differ, or -1
int first_difference(const std::vector<int>& a, const std::vector<int>& b) {
  for (size_t i = 0; i < std::max(a.size(), b.size()); i++)
    if (i >= a.size() || i >= b.size() || a[i] != b[i]) return int(i);
  return -1;
}

// the fixed sequence of the whole-model rows: BOS, then seeded ids, 64 tokens (or the context)
std::vector<int> test_sequence(const Model& m) {
  const int V = m.cfg.vocab_size;
  const int L = std::min(64, m.cfg.context_length);
  std::mt19937 rng(11);
  std::vector<int> ids{m.cfg.bos_id >= 0 && m.cfg.bos_id < V ? m.cfg.bos_id : 0};
  while (int(ids.size()) < L) ids.push_back(int(rng() % uint32_t(V)));
  return ids;
}

void check_model(const Model& m, const std::string& label, Backend& cpu, int device) {
  auto gpu = cudacheck::harness_backend(device);
  gpu->bind_weights(m);
  const std::vector<int> ids = test_sequence(m);
  const int L = int(ids.size());

  // 1. logits at every position of one sequence
  auto lc = sequence_logits(m, cpu, ids), lg = sequence_logits(m, *gpu, ids);
  double diff = 0;
  bool finite = true;
  for (size_t i = 0; i < lc.size(); i++) {
    if (!std::isfinite(lg[i])) finite = false;
    else diff = std::max(diff, double(std::fabs(lg[i] - lc[i])));
  }
  row("model logits", label + " T=" + std::to_string(L) + " every position", diff, kLogitTol, finite && diff <= kLogitTol,
      finite ? "" : " (non-finite)");

  // 2. score_sequences: three sequences packed into one batch (three KV slots)
  std::vector<std::vector<int>> seqs{ids, std::vector<int>(ids.begin(), ids.begin() + L / 2), std::vector<int>(ids.begin() + 1, ids.begin() + 1 + L / 3)};
  ScoreOptions so;
  so.last_logits = true;
  auto sc = score_sequences(m, cpu, seqs, so, CancelToken{}, nullptr);
  auto sg = score_sequences(m, *gpu, seqs, so, CancelToken{}, nullptr);
  double dlp = 0, dlast = 0;
  int am_diff = 0;
  for (size_t s = 0; s < seqs.size(); s++) {
    for (size_t i = 0; i < sc[s].logprob.size(); i++) dlp = std::max(dlp, double(std::fabs(sc[s].logprob[i] - sg[s].logprob[i])));
    for (size_t i = 0; i < sc[s].argmax.size(); i++) am_diff += sc[s].argmax[i] != sg[s].argmax[i];
    for (size_t i = 0; i < sc[s].last_logits.size(); i++) dlast = std::max(dlast, double(std::fabs(sc[s].last_logits[i] - sg[s].last_logits[i])));
  }
  row("score_sequences", label + " 3 seqs, log-probs", std::isfinite(dlp) ? dlp : 1e30, kLogitTol, std::isfinite(dlp) && dlp <= kLogitTol);
  row("score_sequences", label + " 3 seqs, last logits", std::isfinite(dlast) ? dlast : 1e30, kLogitTol, std::isfinite(dlast) && dlast <= kLogitTol);
  row("score_sequences", label + " 3 seqs, argmax ids (differing)", double(am_diff), 0, am_diff == 0);

  // 3. greedy generation through the KV cache: 64 tokens after an 8-token prompt
  std::vector<int> prompt(ids.begin(), ids.begin() + std::min<size_t>(8, ids.size()));
  auto gc = greedy(m, cpu, prompt, 64), gg = greedy(m, *gpu, prompt, 64);  // the GPU's argmax on the device
  int first = first_difference(gc, gg);
  row("greedy generation", label + " " + std::to_string(gc.size()) + " tokens, ids identical", first < 0 ? 0.0 : 1.0, 0, first < 0,
      first < 0 ? "" : " (first difference at token " + std::to_string(first) + ")");
  // sampled generation: the device's candidates (top-k, or the whole vocabulary when it fits in 1024)
  // give the host sampler's tokens on the same logits
  for (const SampleParams& sp : {SampleParams{0.8f, 40, 0.9f, 7}, SampleParams{1.0f, 0, 1.f, 11}}) {
    auto viahost = generate(m, *gpu, prompt, 24, sp, false), viadev = generate(m, *gpu, prompt, 24, sp, true);
    const bool whole = sp.top_k == 0 && m.cfg.vocab_size > Session::kDeviceTopK;  // then ranked on the host
    first = first_difference(viahost, viadev);
    row("sampled generation", label + " top_k=" + std::to_string(sp.top_k) + (whole ? " (host)" : "") + ": device picks = host sampler",
        first < 0 ? 0.0 : 1.0, 0, first < 0, first < 0 ? "" : " (first difference at token " + std::to_string(first) + ")");
  }

  // 4. LoRA training, the pruner's statistics and the allocator (cudatrain.cpp)
  check_training_rows(const_cast<Model&>(m), label, cpu, *gpu, device);
}

// argmax of each row of logits[T, V]
std::vector<int> argmax_rows(const std::vector<float>& lg, int V) {
  std::vector<int> out;
  for (size_t r = 0; r * size_t(V) < lg.size(); r++)
    out.push_back(int(std::max_element(lg.begin() + long(r * V), lg.begin() + long((r + 1) * V)) - (lg.begin() + long(r * V))));
  return out;
}

// the CUDA backend with bf16 weights: logits against the CPU running the same bf16-rounded weights
// (and, on sm_80+ where the tensor cores take bf16 inputs, the product inputs rounded too): fp32 parity,
// so the only difference from fp32 is bf16 rounding; the difference from the fp32 CPU (reported); the
// argmax at every position of every golden sequence identical to PyTorch's fp32 argmax; the weights' memory
void check_bf16(Model& m, const std::string& label, Backend& cpu, int device, const Json* golden) {
  auto gpu = cudacheck::harness_backend(device, true);
  const uint64_t before = gpu->memory_stats().in_use;
  gpu->bind_weights(m);
  const uint64_t bytes = gpu->memory_stats().in_use - before;
  const bool tc = on_tensor_cores(*gpu);
  const int V = m.cfg.vocab_size;
  const std::vector<int> ids = test_sequence(m);
  const uint64_t lt_before = cuda::lt_calls().bf16;
  auto lf = sequence_logits(m, cpu, ids), lg = sequence_logits(m, *gpu, ids);
  // where cuBLASLt is active (and bf16 has tensor cores) the weight products go through it: the head's and
  // each layer's (q, k, v, o where it has attention, gate, up, down where it has an MLP) in every forward
  uint64_t lt_least = 1;
  for (const LayerShape& L : m.cfg.layers) lt_least += (L.n_head > 0 ? 4 : 0) + (L.ffn > 0 ? 3 : 0);
  const uint64_t lt_ran = cuda::lt_calls().bf16 - lt_before;
  if (tc && cuda::lt_enabled())
    row("bf16 weights", label + " weight products through cuBLASLt", double(lt_ran), double(lt_least), lt_ran >= lt_least,
        " (its calls; at least one forward's)");
  else
    note("bf16 weights", label + " weight products", std::string(tc ? "our tensor-core kernel (cuBLASLt: " : "the tiled kernel (cuBLASLt: ") +
                                                         cuda::lt_status() + ")");
  // the CPU on bf16-rounded weights (norm vectors kept in fp32, as the backend keeps them), on tensor cores the
  // products' and attention's roundings, and its cache's keys and values rounded as they are stored where the
  // GPU's cache is bf16 (the KV cache bytes row checks where that is)
  Arena saved = round_weights_bf16(m);
  const bool kv16 = gpu->kv_bf16(m.cfg.head_dim);
  Bf16InputsCpu ref(cpu, nullptr, cuda::attention_tc_usable, cuda::kAttentionTcMinTokens, tc, kv16);
  auto lr = sequence_logits(m, ref, ids);
  // the same sequence a token at a time: the decoding path, the fp32 attention kernel over the bf16 cache
  const std::vector<int> head(ids.begin(), ids.begin() + std::min<size_t>(24, ids.size()));
  auto dr = sequence_logits(m, ref, head, 1), dg = sequence_logits(m, *gpu, head, 1);
  m.arena = saved;
  auto df = sequence_logits(m, cpu, head, 1);
  // the GPU against the bf16 reference: fp32 parity where activations stay fp32 (the tiled kernels); on tensor
  // cores, rounding the product inputs to bf16 makes the reference discontinuous: fp32-level differences upstream
  // flip single roundings, so exact parity cannot hold through a model (each op is exact in its own rows), and
  // the check is that the GPU's distance from the bf16 reference is under half of bf16's own effect on the logits
  auto against_ref = [&](const std::string& what, const std::vector<float>& g, const std::vector<float>& r, const std::vector<float>& f) {
    double d_r = 0, d_bf = 0;
    for (size_t i = 0; i < f.size(); i++) {
      d_r = std::max(d_r, std::isfinite(g[i]) ? double(std::fabs(g[i] - r[i])) : INFINITY);
      d_bf = std::max(d_bf, double(std::fabs(r[i] - f[i])));
    }
    if (!tc) {
      row("bf16 weights", label + " " + what + " vs CPU bf16 ref", d_r, kLogitTol, d_r <= kLogitTol, " (tiled, fp32 activations)");
    } else {
      const double ratio = d_r / std::max(d_bf, 1e-30);
      row("bf16 weights", label + " " + what + " |GPU − CPU bf16 ref| / |ref − fp32|", ratio, 0.5, ratio <= 0.5,
          " (" + std::to_string(d_r) + " vs " + std::to_string(d_bf) + ", tensor cores)");
    }
  };
  against_ref("logits", lg, lr, lf);
  against_ref("decoded", dg, dr, df);
  double scale = 0, d_f = 0;
  for (size_t i = 0; i < lf.size(); i++) {
    scale = std::max(scale, double(std::fabs(lf[i])));
    d_f = std::max(d_f, std::isfinite(lg[i]) ? double(std::fabs(lg[i] - lf[i])) : INFINITY);
  }
  // the cache itself, by the allocator's accounting on fresh backends (no cached block reused): bf16, half the
  // fp32 cache's bytes, where the tensor-core attention takes the head size; fp32 elsewhere
  auto cache_bytes = [&](bool bf16) {
    auto be = cudacheck::harness_backend(device, bf16);
    KvCache kv;
    kv.init(*be, m.cfg, 2, 96);
    return double(be->memory_stats().in_use);
  };
  const bool halved = cuda::attention_tc_usable(m.cfg.head_dim);
  const double kv_ratio = cache_bytes(true) / cache_bytes(false);
  row("bf16 weights", label + " KV cache bytes / fp32 cache's", kv_ratio, halved ? 0.5 : 1.0, kv_ratio == (halved ? 0.5 : 1.0) && kv16 == halved,
      halved ? " (bf16 cache)" : " (fp32 cache: head_dim " + std::to_string(m.cfg.head_dim) + " has no tensor-core attention here)");
  // what bf16 costs against fp32: reported; the golden argmax rows below are the check
  std::printf("%-22s %-44s %11.3e %11.3e %9s  (bf16 rounding, reported)\n", "bf16 weights", (label + " logits vs fp32 CPU").c_str(), d_f, d_f / scale, "");
  row("bf16 weights", label + " device bytes for weights / fp32 arena", double(bytes) / double(sizeof(float) * m.arena.size()), 0.55,
      double(bytes) <= 0.55 * double(sizeof(float) * m.arena.size()));
  if (!golden) return;
  const Json* seqs = golden->get("sequences");
  if (!seqs || seqs->type != Json::Object) fail(ErrorCode::FORMAT, "golden file: no sequences");
  for (auto& kv : seqs->obj) {
    const Json* jids = kv.second.get("ids");
    const Json* jam = kv.second.get("argmax");
    if (!jids || !jam) continue;
    std::vector<int> gi;
    for (auto& v : jids->arr) gi.push_back(int(v.num));
    auto am = argmax_rows(sequence_logits(m, *gpu, gi), V);
    int differ = 0;
    for (size_t i = 0; i < am.size() && i < jam->arr.size(); i++) differ += am[i] != int(jam->arr[i].num);
    row("bf16 weights", label + " golden " + kv.first + " argmax differing", double(differ), 0, differ == 0 && am.size() == jam->arr.size());
  }
}

// the model's tensors: (first float, count), in arena order
std::vector<std::pair<const float*, size_t>> tensor_ranges(Model& m) {
  std::vector<std::pair<const float*, size_t>> r;
  auto add = [&](TensorKind k, int l) {
    uint64_t n = 1;
    for (int64_t d : m.expected_shape(k, l)) n *= uint64_t(d);
    if (n) r.push_back({m.tensor_ptr(k, l), size_t(n)});
  };
  add(TensorKind::TokEmb, 0);
  add(TensorKind::OutNorm, 0);
  if (!m.cfg.tied) add(TensorKind::LmHead, 0);
  for (int l = 0; l < m.cfg.n_layers; l++)
    for (TensorKind k : kLayerKinds) add(k, l);
  std::sort(r.begin(), r.end());
  return r;
}

// Loading straight onto the device (the addon's load): the loader's hooks hand each tensor to bind_part as
// soon as it is decoded (an HF model's q/k rows already permuted), while the next is read. The copy must
// be the one bind_weights makes after the load: logits bit-identical, fp32 and bf16, and the host arena
// identical to a load without hooks. A load cancelled after three tensors leaves no usable copy.
void check_streamed_load(const std::string& path, const std::string& label, int device) {
  auto plain = load_model(path);
  const std::vector<int> ids = test_sequence(*plain);
  for (bool bf16 : {false, true}) {
    const std::string what = label + (bf16 ? " bf16" : " fp32");
    auto whole = cudacheck::harness_backend(device, bf16);
    whole->bind_weights(*plain);
    auto streamed = cudacheck::harness_backend(device, bf16);
    int parts = 0;
    LoadHooks h;
    h.allocated = [&](const Model& m) { streamed->bind_begin(m); };
    h.tensor = [&](const Model& m, const float* p, size_t n) {
      streamed->bind_part(m, p, n);
      parts++;
    };
    auto m = load_model(path, &h);
    streamed->bind_end(*m);
    const bool same_host = m->arena.size() == plain->arena.size() &&
                           std::memcmp(m->arena.data(), plain->arena.data(), sizeof(float) * m->arena.size()) == 0;
    auto a = sequence_logits(*plain, *whole, ids), b = sequence_logits(*m, *streamed, ids);
    double diff = 0;
    for (size_t i = 0; i < a.size(); i++) diff = std::max(diff, std::isfinite(b[i]) ? double(std::fabs(a[i] - b[i])) : INFINITY);
    row("streamed load", what + ": logits vs bound after the load", diff, 0, diff == 0 && same_host && parts > 1,
        " (" + std::to_string(parts) + " parts" + (same_host ? "" : ", host arena differs") + ")");
  }
  // cancelled part-way: E_CANCELLED, and the backend refuses the half-made copy
  auto gpu = cudacheck::harness_backend(device);
  int32_t flag = 0;
  int parts = 0;
  LoadHooks h;
  h.cancel = CancelToken{&flag};
  h.allocated = [&](const Model& m) { gpu->bind_begin(m); };
  h.tensor = [&](const Model& m, const float* p, size_t n) {
    gpu->bind_part(m, p, n);
    if (++parts == 3) flag = 1;
  };
  std::string code = "none", refused = "no";
  try {
    load_model(path, &h);
  } catch (const EngineError& e) {
    code = error_code_name(e.code());
  }
  try {
    gpu->weight(plain->tok_emb);
  } catch (const EngineError& e) {
    refused = e.code() == ErrorCode::INTERNAL ? "yes" : error_code_name(e.code());
  }
  row("streamed load", label + " cancelled after 3 tensors", double(parts), 3, code == "E_CANCELLED" && parts == 3 && refused == "yes",
      " (" + code + ", copy refused: " + refused + ")");
}

// The backend's side of a streamed load with parts in an order no loader uses (last tensor first), so no
// part may rely on the one before: logits bit-identical to bind_weights', fp32 and bf16.
void check_streamed_parts(Model& m, const std::string& label, int device) {
  const std::vector<int> ids = test_sequence(m);
  auto ranges = tensor_ranges(m);
  std::reverse(ranges.begin(), ranges.end());
  for (bool bf16 : {false, true}) {
    auto whole = cudacheck::harness_backend(device, bf16), parts = cudacheck::harness_backend(device, bf16);
    whole->bind_weights(m);
    parts->bind_begin(m);
    for (auto& r : ranges) parts->bind_part(m, r.first, r.second);
    parts->bind_end(m);
    auto a = sequence_logits(m, *whole, ids), b = sequence_logits(m, *parts, ids);
    double diff = 0;
    for (size_t i = 0; i < a.size(); i++) diff = std::max(diff, std::isfinite(b[i]) ? double(std::fabs(a[i] - b[i])) : INFINITY);
    row("streamed load", label + (bf16 ? " bf16" : " fp32") + ": parts last-first vs whole", diff, 0, diff == 0,
        " (" + std::to_string(ranges.size()) + " parts)");
  }
}

}  // namespace

// runs the whole-model rows for each path (and the random GQA model when asked), counted in the harness's checks and failures
void check_whole_models(const std::vector<std::string>& paths, bool random_model, int device, const std::string& golden_path) {
  BackendOptions bo;
  auto cpu = make_cpu_backend(bo);
  Json golden;
  if (!golden_path.empty()) {
    std::ifstream f(golden_path, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (!f.good() && !f.eof()) fail(ErrorCode::IO, "cannot read " + golden_path);
    golden = parse_json(text.data(), text.size(), golden_path);
  }
  for (size_t pi = 0; pi < paths.size(); pi++) {
    const std::string& p = paths[pi];
    try {
      auto m = load_model(p);
      std::string label = p.substr(p.find_last_of('/') == std::string::npos ? 0 : p.find_last_of('/') + 1);
      check_model(*m, label.empty() ? p : label, *cpu, device);
      check_bf16(*m, label.empty() ? p : label, *cpu, device, pi == 0 && !golden_path.empty() ? &golden : nullptr);
      check_streamed_load(p, label.empty() ? p : label, device);
    } catch (const EngineError& e) {
      std::printf("%-22s %-44s error (%s): %s\n", "model", p.c_str(), error_code_name(e.code()), e.what());
      cudacheck::checks++;
      cudacheck::failures++;
    }
  }
  if (random_model) {
    try {
      auto m = random_gqa_model();
      check_model(*m, "random GQA 6/2,2/2,0/0", *cpu, device);
      check_bf16(*m, "random GQA 6/2,2/2,0/0", *cpu, device, nullptr);
      check_streamed_parts(*m, "random GQA 6/2,2/2,0/0", device);
    } catch (const EngineError& e) {
      std::printf("%-22s %-44s error (%s): %s\n", "model", "random GQA", error_code_name(e.code()), e.what());
      cudacheck::checks++;
      cudacheck::failures++;
    }
  }
}
