// host_weights.cpp — reading, releasing and re-decoding a model's host weights (host_weights.h), and the
// page commit and hand-back (madvise; Windows: VirtualAlloc MEM_COMMIT / VirtualFree MEM_DECOMMIT) and the
// residency count (mincore) behind them.
#include "host_weights.h"

#include <algorithm>
#include <cstring>

#include "errors.h"

#ifdef _WIN32
#include "win32.h"
#else
#include <sys/mman.h>
#include <unistd.h>
#endif

namespace tailor {

size_t host_page_size() {
#ifdef _WIN32
  SYSTEM_INFO si;
  GetSystemInfo(&si);
  return size_t(si.dwPageSize);
#else
  static const size_t p = size_t(::sysconf(_SC_PAGESIZE));
  return p;
#endif
}

void commit_pages(void* p, size_t bytes) {
#ifdef _WIN32
  if (!bytes) return;
  const size_t ps = host_page_size();
  const uintptr_t b = uintptr_t(p) / ps * ps, e = (uintptr_t(p) + bytes + ps - 1) / ps * ps;
  if (!VirtualAlloc(reinterpret_cast<void*>(b), e - b, MEM_COMMIT, PAGE_READWRITE))
    fail(ErrorCode::OOM, "out of memory: cannot commit " + std::to_string(e - b) + " bytes of host memory for a tensor (error " +
                             std::to_string(GetLastError()) + ")");
#else
  (void)p, (void)bytes;  // the mapping's pages appear when first touched
#endif
}

void discard_pages(void* p, size_t bytes) {
  const size_t ps = host_page_size();
  const uintptr_t b = (uintptr_t(p) + ps - 1) / ps * ps, e = (uintptr_t(p) + bytes) / ps * ps;
  if (e <= b) return;
#ifdef _WIN32
  VirtualFree(reinterpret_cast<void*>(b), e - b, MEM_DECOMMIT);  // (pages shared with a neighbour stay committed)
#else
  ::madvise(reinterpret_cast<void*>(b), e - b, MADV_DONTNEED);
#endif
}

int64_t host_resident_bytes(const Model& m) {
#ifdef _WIN32
  // Windows: the committed bytes of the arena's range (a released arena commits a tensor's pages only while
  // it is decoded), counted region by region
  if (m.arena.empty()) return 0;
  const uintptr_t b = uintptr_t(m.arena.data()), e = uintptr_t(m.arena.data() + m.arena.size());
  int64_t n = 0;
  for (uintptr_t p = b; p < e;) {
    MEMORY_BASIC_INFORMATION mi;
    if (VirtualQuery(reinterpret_cast<void*>(p), &mi, sizeof mi) == 0) return -1;
    const uintptr_t lo = std::max(p, uintptr_t(mi.BaseAddress)), hi = std::min(e, uintptr_t(mi.BaseAddress) + mi.RegionSize);
    if (mi.State == MEM_COMMIT && hi > lo) n += int64_t(hi - lo);
    if (hi <= p) return -1;  // (a region that does not move forward: the system cannot say)
    p = hi;
  }
  return n;
#else
  if (m.arena.empty()) return 0;
  const size_t ps = host_page_size();
  const uintptr_t b = uintptr_t(m.arena.data()) / ps * ps, e = uintptr_t(m.arena.data() + m.arena.size());
  const size_t pages = (e - b + ps - 1) / ps;
  std::vector<unsigned char> vec(pages);
#ifdef __APPLE__
  if (::mincore(reinterpret_cast<void*>(b), e - b, reinterpret_cast<char*>(vec.data())) != 0) return -1;
#else
  if (::mincore(reinterpret_cast<void*>(b), e - b, vec.data()) != 0) return -1;
#endif
  int64_t n = 0;
  for (unsigned char v : vec) n += v & 1;
  return n * int64_t(ps);
#endif
}

const SourceTensor* WeightSource::find(TensorKind k, int layer) const {
  for (const SourceTensor& t : tensors)
    if (t.kind == k && t.layer == layer) return &t;
  return nullptr;
}

void WeightSource::check_unchanged() const {
  for (const auto& f : files) f->check_unchanged();
}

void decode_tensor(const Model& m, TensorKind kind, int layer, DType dtype, const uint8_t* data, uint64_t n, bool permute, float* dst) {
  if (!n) return;
  dtype_to_f32(dtype, data, n, dst);
  if (permute && (kind == TensorKind::Wq || kind == TensorKind::Wk)) {
    const LayerShape& ls = m.cfg.layers[size_t(layer)];
    rows_to_interleaved(dst, kind == TensorKind::Wq ? ls.n_head : ls.n_kv_head, m.cfg.head_dim, m.cfg.dim);
  }
}

uint64_t tensor_numel(const Model& m, TensorKind k, int layer) {
  if (k == TensorKind::LmHead && m.cfg.tied) k = TensorKind::TokEmb;
  std::vector<int64_t> s = m.expected_shape(k, layer < 0 ? 0 : layer);
  if (s.empty()) return 0;
  uint64_t n = 1;
  for (int64_t v : s) n *= uint64_t(v);
  return n;
}

// the arena range of a tensor (a tied lm_head is the embedding table)
static float* arena_ptr(const Model& m, TensorKind k, int layer) {
  if (k == TensorKind::LmHead && m.cfg.tied) k = TensorKind::TokEmb;
  return const_cast<Model&>(m).tensor_ptr(k, layer < 0 ? 0 : layer);
}

// dst ← the tensor decoded from the source s, with the merged adapters applied in order
static void decode_from_source(const Model& m, const WeightSource& s, TensorKind k, int layer, float* dst, uint64_t n) {
  if (k == TensorKind::LmHead && m.cfg.tied) k = TensorKind::TokEmb;
  const SourceTensor* t = s.find(k, k == TensorKind::TokEmb || k == TensorKind::OutNorm || k == TensorKind::LmHead ? -1 : layer);
  if (!t) {
    std::fill(dst, dst + n, 0.f);  // never in the file: zero in the arena too (e.g. a pruned sublayer's norm)
    return;
  }
  if (t->n != n) fail(ErrorCode::INTERNAL, std::string("host weights: ") + tensor_kind_name(k) + " has another size in the source");
  s.check_unchanged();  // (before a byte is read: a truncated mapping would fault)
  decode_tensor(m, k, layer, t->dtype, t->data, n, s.permute_qk, dst);
  const int target = lora_target_of(k);
  if (target >= 0)
    for (const WeightSource::Merge& mg : s.merges) lora_merge_one(mg.lay, mg.params.data(), layer, target, dst);
}

void host_read(const Model& m, TensorKind k, int layer, float* dst) {
  const uint64_t n = tensor_numel(m, k, layer);
  if (!n) return;
  if (!m.host_released()) {
    const float* p = arena_ptr(m, k, layer);
    if (!p) fail(ErrorCode::INTERNAL, std::string("host weights: no arena range for ") + tensor_kind_name(k));
    std::memcpy(dst, p, size_t(n) * sizeof(float));
    return;
  }
  decode_from_source(m, *m.source, k, layer, dst, n);
}

HostTensor::HostTensor(const Model& m, TensorKind k, int layer) : m_(m), p_(arena_ptr(m, k, layer)), n_(tensor_numel(m, k, layer)) {
  if (m_.host_released() && p_ && n_) {
    commit_pages(p_, size_t(n_) * sizeof(float));
    decode_from_source(m_, *m_.source, k, layer, p_, n_);
  }
}

HostTensor::~HostTensor() {
  if (m_.host_released() && p_ && n_) discard_pages(p_, size_t(n_) * sizeof(float));
}

HostLayer::HostLayer(const Model& m, int layer) {
  for (TensorKind k : kLayerKinds) t_.push_back(std::make_unique<HostTensor>(m, k, layer));
}

void host_restore(Model& m) {
  if (!m.host_released()) return;
  // a new arena that the system reserves memory for (the released one was only an address range): E_OOM
  // here, with the model unchanged, rather than a process killed while the weights are decoded into it
  std::shared_ptr<WeightSource> src = m.source;
  src->check_unchanged();  // E_IO here leaves the model as it was
  model_allocate(m);
  m.source.reset();  // the arena is the model of record from here on (it may be written in place)
  for (const SourceTensor& t : src->tensors) decode_from_source(m, *src, t.kind, t.layer, arena_ptr(m, t.kind, t.layer), t.n);
}

void host_merge_lora(Model& m, const LoraLayout& lay, const float* params) {
  if (!m.host_released()) return lora_merge(m, lay, params);
  m.source->merges.push_back({lay, std::vector<float>(params, params + lay.size)});
}

void host_bind(Model& m, Backend& be) {
  if (!m.host_released()) return be.bind_weights(m);
  m.source->check_unchanged();  // before the device copy is touched
  be.bind_begin(m);
  for (const SourceTensor& t : m.source->tensors) {
    HostTensor h(m, t.kind, t.layer);
    if (h.data() && h.size()) be.bind_part(m, h.data(), size_t(h.size()));
  }
  be.bind_end(m);
}

}  // namespace tailor
