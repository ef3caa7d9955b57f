// cudacheck_attention.cpp — tailor_cudacheck's rows for the attention over the KV cache (native/cuda/attention.cu)
// and the cache's own ops (kv_store, kv_copy in pointwise.cu): the fp32 kernel and, on sm_80+, the bf16
// tensor-core one, each over an fp32 cache and over the bf16 mode's bf16 cache, against the CPU backend (and a
// float64 model of the tensor cores' roundings, bf16ref.h); then every attention op's argument checks.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "backend.h"
#include "bf16ref.h"
#include "cudacheck.h"
#include "errors.h"
#include "kernels.h"

using namespace tailor;
using namespace cudacheck;

namespace {

void check_attention(Backend& cpu) {
  struct Case { const char* name; int n_head, n_kv, hd, n_ctx, slots; std::vector<int> pos, slot; };
  std::vector<int> p64(64), s64(64, 1), mp, ms;
  for (int i = 0; i < 64; i++) p64[size_t(i)] = i;
  for (int i = 10; i <= 20; i++) mp.push_back(i), ms.push_back(0);
  for (int i = 0; i <= 5; i++) mp.push_back(i), ms.push_back(1);
  mp.push_back(50), ms.push_back(2);
  const Case cases[] = {
      {"GQA 8/2 hd=64 prefill T=64 (slot 1)", 8, 2, 64, 128, 2, p64, s64},
      {"GQA 32/8 hd=128 decode T=1 @100", 32, 8, 128, 256, 1, {100}, {0}},
      {"GQA 6/3 hd=40 mixed 3 slots T=18", 6, 3, 40, 64, 3, mp, ms},
      {"MHA 4/4 hd=256 T=3 @0,1,2", 4, 4, 256, 16, 1, {0, 1, 2}, {0, 0, 0}},
      {"GQA 8/1 hd=8 T=5 @31..35", 8, 1, 8, 40, 1, {31, 32, 33, 34, 35}, {0, 0, 0, 0, 0}},
      // decoding over caches long enough to split (n_ctx ≥ 2·kAttentionSplitKeys): one slot, tokens of three
      // slots (one seeing the first split only), a split holding one visible key, head_dim 256's short tiles
      {"GQA 32/8 hd=128 decode T=1 @1500 (ctx 2048)", 32, 8, 128, 2048, 1, {1500}, {0}},
      {"GQA 8/2 hd=64 decode 3 slots T=3 @700,40,1023 (ctx 1024)", 8, 2, 64, 1024, 3, {700, 40, 1023}, {2, 0, 1}},
      {"GQA 6/3 hd=40 T=2 @511,512 (ctx 600)", 6, 3, 40, 600, 1, {511, 512}, {0, 0}},
      {"MHA 4/4 hd=256 T=8 @600..607 (ctx 640)", 4, 4, 256, 640, 1, {600, 601, 602, 603, 604, 605, 606, 607}, {0, 0, 0, 0, 0, 0, 0, 0}},
  };
  for (const Case& c : cases) {
    const int64_t T = int64_t(c.pos.size()), kvs = int64_t(c.n_kv) * c.hd, qd = int64_t(c.n_head) * c.hd;
    const size_t cache_n = size_t(c.slots) * size_t(c.n_ctx) * size_t(kvs);
    auto kc = randf(cache_n), vc = randf(cache_n), k = randf(size_t(T * kvs)), v = randf(size_t(T * kvs)), q = randf(size_t(T * qd));
    std::vector<float> ref(static_cast<size_t>(T * qd));
    auto rk = kc, rv = vc;
    KvView cv{rk.data(), rv.data(), c.n_ctx, int(kvs)};
    cpu.kv_store(cv, k.data(), v.data(), c.pos.data(), c.slot.data(), T);
    cpu.attention_forward(ref.data(), q.data(), cv, c.pos.data(), c.slot.data(), T, c.n_head, c.n_kv, c.hd);
    Dev<float> gkc(kc), gvc(vc), gk(k), gv(v), gq(q), gout(ref.size());
    Dev<int> gp(c.pos), gs(c.slot);
    KvView gview{gkc.p, gvc.p, c.n_ctx, int(kvs)};
    cu::kv_store(gview, gk.p, gv.p, gp.p, gs.p, T);
    // one block per head, and (where the call splits) the keys split among blocks, merged after
    const int64_t split = cu::attention_forward_scratch(T, c.n_head, c.hd, c.n_ctx);
    Dev<float> scratch(size_t(std::max<int64_t>(split, 1)));
    auto attend = [&](const KvView& view, const std::string& what, const std::vector<float>& expect) {
      cu::attention_forward(gout.p, gq.p, view, gp.p, gs.p, T, c.n_head, c.n_kv, c.hd);
      report("attention_forward", what, gout.get(), expect, kF32);
      if (!split) return;
      std::vector<float> poison(gout.n, std::nanf(""));  // every output must be written by the merge
      cu::to_device(gout.p, poison.data(), poison.size() * sizeof(float));
      cu::attention_forward(gout.p, gq.p, view, gp.p, gs.p, T, c.n_head, c.n_kv, c.hd, scratch.p);
      report("attention_forward", what + ", " + std::to_string(cu::attention_splits(c.n_ctx)) + " splits",
             gout.get(), expect, kF32);
    };
    report("kv_store", c.name, gkc.get(), rk, 0.0);
    report("kv_store (v)", c.name, gvc.get(), rv, 0.0);
    attend(gview, c.name, ref);
    // the bf16 mode's cache: stored rounded to nearest even (the host's rounding of the CPU's cache, exactly),
    // read widened to fp32 (the CPU's attention over the rounded cache, within fp32 rounding)
    Dev<uint16_t> hk(bf16_vector(kc)), hv(bf16_vector(vc));
    const KvView hview{hk.p, hv.p, c.n_ctx, int(kvs), true};
    cu::kv_store(hview, gk.p, gv.p, gp.p, gs.p, T);
    auto rk16 = rounded_bf16(rk), rv16 = rounded_bf16(rv);
    cpu.attention_forward(ref.data(), q.data(), KvView{rk16.data(), rv16.data(), c.n_ctx, int(kvs)}, c.pos.data(), c.slot.data(), T, c.n_head,
                          c.n_kv, c.hd);
    report("kv_store", std::string(c.name) + ", bf16 cache", bf16_floats(hk.get()), rk16, 0.0);
    report("kv_store (v)", std::string(c.name) + ", bf16 cache", bf16_floats(hv.get()), rv16, 0.0);
    attend(hview, std::string(c.name) + ", bf16 cache", ref);
  }
  // scoring's shared prefixes: rows of a packed cache copied, copies of different lengths at once (none reads
  // rows another writes, as score_sequences makes them)
  const int kvs = 2 * 64, rows = 3000;
  const std::vector<KvCopy> copies = {{0, 1000, 700}, {10, 1800, 3}, {700, 1803, 1}, {5, 2000, 990}};
  auto kc = randf(size_t(rows) * kvs), vc = randf(size_t(rows) * kvs);
  auto rk = kc, rv = vc;
  cpu.kv_copy(KvView{rk.data(), rv.data(), 1, kvs}, copies.data(), int(copies.size()), 990);
  Dev<float> gkc(kc), gvc(vc);
  Dev<KvCopy> gc(copies);
  cu::kv_copy(KvView{gkc.p, gvc.p, 1, kvs}, gc.p, int(copies.size()), 990);
  report("kv_copy", "4 copies of 1..990 rows, kv 128", gkc.get(), rk, 0.0);
  report("kv_copy (v)", "4 copies of 1..990 rows, kv 128", gvc.get(), rv, 0.0);
  Dev<uint16_t> hk(bf16_vector(kc)), hv(bf16_vector(vc));
  cu::kv_copy(KvView{hk.p, hv.p, 1, kvs, true}, gc.p, int(copies.size()), 990);
  report("kv_copy", "4 copies of 1..990 rows, kv 128, bf16 cache", bf16_floats(hk.get()), rounded_bf16(rk), 0.0);
  report("kv_copy (v)", "4 copies of 1..990 rows, kv 128, bf16 cache", bf16_floats(hv.get()), rounded_bf16(rv), 0.0);
}

// the same attention on bf16 tensor cores (the bf16 mode's, for prompts): against the fp32 result (within bf16
// rounding) and against a float64 model of the kernel — in a block of 64 tokens of one slot q, k, v rounded to
// bf16 and p rounded for P·V; a block of several slots runs the fp32 path, unrounded (kBf16Model, cudacheck.h)
void check_attention_tc(Backend& cpu) {
  if (!cu::attention_tc_usable(64)) return;  // (sm_75: check_attention_train_tc says so)
  struct Case { const char* name; int n_head, n_kv, hd, n_ctx, slots; std::vector<int> pos, slot; };
  auto run = [](int first, int n, int sl, std::vector<int>& p, std::vector<int>& s) {
    for (int i = 0; i < n; i++) p.push_back(first + i), s.push_back(sl);
  };
  std::vector<int> p1, s1, p2, s2, p3, s3, p4, s4;
  run(0, 120, 1, p1, s1);
  run(10, 70, 0, p2, s2), run(0, 20, 1, p2, s2);
  run(200, 64, 0, p3, s3);
  run(5, 33, 0, p4, s4);
  const Case cases[] = {
      {"GQA 4/2 hd=64 prefill T=120 (slot 1)", 4, 2, 64, 128, 2, p1, s1},
      {"GQA 6/3 hd=48 T=90, block 2 of two slots", 6, 3, 48, 96, 2, p2, s2},
      {"MHA 2/2 hd=128 T=64 @200..263", 2, 2, 128, 300, 1, p3, s3},
      {"GQA 4/2 hd=16 T=33 @5..37", 4, 2, 16, 40, 1, p4, s4},
  };
  for (const Case& c : cases) {
    const int64_t T = int64_t(c.pos.size()), kvs = int64_t(c.n_kv) * c.hd, qd = int64_t(c.n_head) * c.hd;
    if (left_out_for_sanitizer(T * c.pos.back() * c.hd * c.n_head)) continue;
    const size_t cache_n = size_t(c.slots) * size_t(c.n_ctx) * size_t(kvs);
    auto kc = randf(cache_n), vc = randf(cache_n), k = randf(size_t(T * kvs)), v = randf(size_t(T * kvs)), q = randf(size_t(T * qd));
    std::vector<float> ref(static_cast<size_t>(T * qd));
    KvView cv{kc.data(), vc.data(), c.n_ctx, int(kvs)};
    cpu.kv_store(cv, k.data(), v.data(), c.pos.data(), c.slot.data(), T);  // the cache as the kernel reads it
    cpu.attention_forward(ref.data(), q.data(), cv, c.pos.data(), c.slot.data(), T, c.n_head, c.n_kv, c.hd);
    Dev<float> gkc(kc), gvc(vc), gq(q), gout(ref.size());
    Dev<int> gp(c.pos), gs(c.slot);
    cu::attention_forward_tc(gout.p, gq.p, KvView{gkc.p, gvc.p, c.n_ctx, int(kvs)}, gp.p, gs.p, T, c.n_head, c.n_kv, c.hd);
    const auto got = gout.get();
    std::vector<double> model(ref.size());  // the kernel's roundings, in float64
    attention_tc_model(model.data(), q.data(), cv, c.pos.data(), c.slot.data(), T, c.n_head, c.n_kv, c.hd);
    report("attention_forward_tc", std::string(c.name) + " vs fp32", got, ref, kBf16);
    report("attention_forward_tc", std::string(c.name) + " vs bf16 model", std::vector<double>(got.begin(), got.end()), model, kBf16Model);
    // over a bf16 cache of the same values (the bf16 mode's): in a block of one slot the tensor cores take what
    // they took (the values it rounded them to as it staged them), so its rows are the same bit for bit; a block
    // of several slots runs the fp32 path, now over the rounded values: the CPU's attention over them
    Dev<uint16_t> hk(bf16_vector(kc)), hv(bf16_vector(vc));
    cu::attention_forward_tc(gout.p, gq.p, KvView{hk.p, hv.p, c.n_ctx, int(kvs), true}, gp.p, gs.p, T, c.n_head, c.n_kv, c.hd);
    const auto got16 = gout.get();
    auto rk16 = rounded_bf16(kc), rv16 = rounded_bf16(vc);
    std::vector<float> cpu16(ref.size());
    cpu.attention_forward(cpu16.data(), q.data(), KvView{rk16.data(), rv16.data(), c.n_ctx, int(kvs)}, c.pos.data(), c.slot.data(), T, c.n_head,
                          c.n_kv, c.hd);
    std::vector<float> one[2], several[2];  // {bf16 cache, reference} rows of blocks of one slot, of several
    for (int64_t b0 = 0; b0 < T; b0 += 64) {
      const int64_t b1 = std::min<int64_t>(T, b0 + 64);
      const bool mixed = std::any_of(c.slot.begin() + b0, c.slot.begin() + b1, [&](int sl) { return sl != c.slot[size_t(b0)]; });
      auto& dst = mixed ? several : one;
      dst[0].insert(dst[0].end(), got16.begin() + b0 * qd, got16.begin() + b1 * qd);
      dst[1].insert(dst[1].end(), (mixed ? cpu16 : got).begin() + b0 * qd, (mixed ? cpu16 : got).begin() + b1 * qd);
    }
    report("attention_forward_tc", std::string(c.name) + ", bf16 cache = fp32 cache (blocks of one slot)", one[0], one[1], 0.0);
    if (!several[0].empty())
      report("attention_forward_tc", std::string(c.name) + ", bf16 cache (blocks of several slots) vs CPU", several[0], several[1], kF32);
  }
}

// every attention op refuses bad sizes before it launches, with the error's code: null pointers throughout,
// so a launch would fault; a size of 0 is nothing to do (no error, no launch)
void check_attention_args() {
  const bool tc = cu::attention_tc_usable(64);
  KvView kv{nullptr, nullptr, 64, 4 * 64};
  using Op = std::function<void(int64_t B, int64_t T, int nh, int nkv, int hd)>;
  struct Entry { const char* name; bool tc; Op op; };
  const Entry ops[] = {
      {"attention_forward", false, [&](int64_t, int64_t T, int nh, int nkv, int hd) { cu::attention_forward(nullptr, nullptr, kv, nullptr, nullptr, T, nh, nkv, hd); }},
      {"attention_forward_tc", true,
       [&](int64_t, int64_t T, int nh, int nkv, int hd) { cu::attention_forward_tc(nullptr, nullptr, kv, nullptr, nullptr, T, nh, nkv, hd); }},
      {"attention_forward_train", false,
       [](int64_t B, int64_t T, int nh, int nkv, int hd) { cu::attention_forward_train(nullptr, nullptr, nullptr, nullptr, nullptr, int(B), int(T), nh, nkv, hd); }},
      {"attention_backward", false,
       [](int64_t B, int64_t T, int nh, int nkv, int hd) {
         cu::attention_backward(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, int(B), int(T), nh, nkv, hd);
       }},
      {"attention_forward_train_tc", true,
       [](int64_t B, int64_t T, int nh, int nkv, int hd) { cu::attention_forward_train_tc(nullptr, nullptr, nullptr, nullptr, nullptr, int(B), int(T), nh, nkv, hd); }},
      {"attention_backward_tc", true,
       [](int64_t B, int64_t T, int nh, int nkv, int hd) {
         cu::attention_backward_tc(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, int(B), int(T), nh, nkv, hd);
       }},
  };
  struct Bad { const char* what; int64_t B, T; int nh, nkv, hd; bool tc_only; const char* code; };
  const Bad bads[] = {
      {"no tokens (nothing to do)", 2, 0, 8, 2, 64, false, ""},
      {"no heads (nothing to do)", 2, 5, 0, 2, 64, false, ""},
      {"negative tokens", 2, -1, 8, 2, 64, false, "E_ARG"},
      {"n_head 6 over n_kv 4", 2, 5, 6, 4, 64, false, "E_ARG"},
      {"n_kv 0", 2, 5, 8, 0, 64, false, "E_ARG"},
      {"head_dim 264", 2, 5, 8, 2, 264, false, "E_UNSUPPORTED"},
      {"head_dim 40 (tensor cores: x16)", 2, 5, 8, 2, 40, true, "E_UNSUPPORTED"},
      {"head_dim 144 (tensor cores: <=128)", 2, 5, 8, 2, 144, true, "E_UNSUPPORTED"},
      {"70000 heads", 1, 5, 70000, 70000, 64, false, "E_UNSUPPORTED"},
  };
  for (const Entry& e : ops) {
    if (e.tc && !tc) continue;  // (below sm_80 every call is E_UNSUPPORTED: the "usable below sm_80" row)
    int wrong = 0;
    std::string first;
    for (const Bad& b : bads) {
      if (b.tc_only && !e.tc) continue;
      std::string got;
      try {
        e.op(b.B, b.T, b.nh, b.nkv, b.hd);
      } catch (const EngineError& err) {
        got = error_code_name(err.code());
      }
      if (got != b.code) {
        if (!wrong++) first = std::string("  (") + b.what + ": " + (got.empty() ? "no error" : got) + ", expected " + (*b.code ? b.code : "no error") + ")";
      }
    }
    row(e.name, "bad sizes: E_ARG, E_UNSUPPORTED, or nothing", wrong, 0, wrong == 0, first);
  }
  cu::device_synchronize();  // nothing was launched: a launch on null pointers would fault here
}

}  // namespace

void check_attention_ops(Backend& cpu) {
  check_attention(cpu);
  check_attention_tc(cpu);
  check_attention_args();
}
