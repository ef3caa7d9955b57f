// trainer.cpp — the LoRA training loop (see trainer.h).
#include "trainer.h"

#include <algorithm>
#include <cmath>

#include "errors.h"

namespace tailor {

Trainer::Trainer(Model& m, Backend& be, const TrainConfig& cfg, std::vector<Example> data)
    : m_(m), be_(be), cfg_(cfg), data_(std::move(data)), rope_(make_rope_table(m.cfg)), w_(weights_view(m)) {
  if (data_.empty()) fail(ErrorCode::ARG, "no training examples");
  if (cfg.epochs <= 0 || cfg.batch <= 0 || cfg.micro_batch <= 0) fail(ErrorCode::ARG, "epochs, batch and micro-batch must be positive");
  if (cfg.max_len < 2 || cfg.max_len > m.cfg.context_length)
    fail(ErrorCode::ARG, "max length must be between 2 and the model's context (" + std::to_string(m.cfg.context_length) + ")");
  const OptimConfig& o = cfg.optim;
  if (!(o.lr > 0) || !(o.beta1 >= 0 && o.beta1 < 1) || !(o.beta2 >= 0 && o.beta2 < 1) || !(o.eps > 0) || !(o.weight_decay >= 0) || o.warmup_steps < 0 || !(o.clip >= 0))
    fail(ErrorCode::ARG, "optimizer settings out of range (lr > 0, 0 ≤ β < 1, ε > 0, weight decay ≥ 0, warm-up ≥ 0, clip ≥ 0)");
  for (auto& e : data_) {
    if (e.ids.size() < 2 || e.weight.size() != e.ids.size() - 1) fail(ErrorCode::ARG, "each example needs ≥ 2 ids and one loss weight per predicted token");
    for (int id : e.ids)
      if (id < 0 || id >= m.cfg.vocab_size) fail(ErrorCode::ARG, "example token id outside the vocabulary");
  }
  if (!cfg.full) {
    lay_.build(m.cfg, cfg.lora);
    p_.assign(size_t(lay_.size), 0.f);
    lora_init(lay_, p_.data(), cfg.seed);
  }
  const size_t n = params().size();
  try {
    g_.assign(n, 0.f);
    am_.assign(n, 0.f);
    av_.assign(n, 0.f);
  } catch (const std::bad_alloc&) {
    fail(ErrorCode::OOM, "not enough memory for gradients and AdamW moments of " + std::to_string(n) + " parameters");
  }
  if (cfg.full && !be.host_memory())
    fail(ErrorCode::UNSUPPORTED, "full fine-tuning runs on the CPU backend (" + be.name() + " trains LoRA adapters only)");
  if (be.host_memory()) {
    P_ = params().data(), G_ = g_.data(), M_ = am_.data(), V_ = av_.data();
  } else {
    const size_t bytes = sizeof(float) * n;
    dp_.reserve(be, bytes), dg_.reserve(be, bytes), dm_.reserve(be, bytes), dv_.reserve(be, bytes);
    P_ = dp_.f(), G_ = dg_.f(), M_ = dm_.f(), V_ = dv_.f();
    state_to_device();
  }
  if (cfg.full) {
    auto map = [&](const float* p) { return p ? g_.data() + (p - m.arena.data()) : nullptr; };
    full_grads_.tok_emb = map(m.tok_emb);
    full_grads_.out_norm = map(m.out_norm);
    full_grads_.lm_head = m.cfg.tied ? nullptr : map(m.lm_head);
    for (auto& L : m.layers)
      full_grads_.layers.push_back({map(L.attn_norm), map(L.wq), map(L.wk), map(L.wv), map(L.wo), map(L.ffn_norm), map(L.w_gate), map(L.w_up), map(L.w_down)});
  }
  steps_per_epoch_ = (int64_t(data_.size()) + cfg.batch - 1) / cfg.batch;
  total_steps_ = steps_per_epoch_ * cfg.epochs;
}

void Trainer::state_to_host() {
  if (be_.host_memory()) return;
  const size_t bytes = sizeof(float) * p_.size();
  be_.download(p_.data(), P_, bytes);
  be_.download(am_.data(), M_, bytes);
  be_.download(av_.data(), V_, bytes);
}

void Trainer::state_to_device() {
  if (be_.host_memory()) return;
  const size_t bytes = sizeof(float) * p_.size();
  be_.upload(P_, p_.data(), bytes);
  be_.upload(M_, am_.data(), bytes);
  be_.upload(V_, av_.data(), bytes);
}

static uint64_t mix(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

std::vector<int> Trainer::epoch_order(int64_t epoch) const {
  std::vector<int> order(data_.size());
  for (size_t i = 0; i < order.size(); i++) order[i] = int(i);
  uint64_t s = mix(cfg_.seed * 0x9E37ull + uint64_t(epoch) + 1);
  for (size_t i = order.size(); i > 1; i--) {  // Fisher–Yates with our own generator
    s = mix(s);
    std::swap(order[i - 1], order[s % i]);
  }
  return order;
}

TrainBatch Trainer::make_batch(const std::vector<const Example*>& ex) const {
  TrainBatch b;
  b.B = int(ex.size());
  for (auto* e : ex) b.Tn = std::max(b.Tn, int(std::min<size_t>(e->ids.size() - 1, size_t(cfg_.max_len))));
  const int n = b.B * b.Tn;
  b.ids.assign(size_t(n), 0);
  b.targets.assign(size_t(n), 0);
  b.weight.assign(size_t(n), 0.f);
  for (int s = 0; s < b.B; s++) {
    const Example& e = *ex[size_t(s)];
    int len = int(std::min<size_t>(e.ids.size() - 1, size_t(b.Tn)));
    for (int t = 0; t < len; t++) {
      b.ids[size_t(s * b.Tn + t)] = e.ids[size_t(t)];
      b.targets[size_t(s * b.Tn + t)] = e.ids[size_t(t + 1)];
      b.weight[size_t(s * b.Tn + t)] = e.weight[size_t(t)];
    }
    for (int t = len; t < b.Tn; t++) b.ids[size_t(s * b.Tn + t)] = e.ids[0];  // right padding, weight 0
  }
  return b;
}

double Trainer::lr_at(int64_t step) const {
  const OptimConfig& o = cfg_.optim;
  if (step < o.warmup_steps) return double(o.lr) * double(step + 1) / double(o.warmup_steps);
  if (!o.cosine) return o.lr;
  double span = double(std::max<int64_t>(1, total_steps_ - o.warmup_steps));
  double progress = std::min(1.0, double(step - o.warmup_steps) / span);
  return double(o.lr) * (o.min_lr_ratio + (1 - o.min_lr_ratio) * 0.5 * (1 + std::cos(M_PI * progress)));
}

StepStats Trainer::train_step(const CancelToken& cancel) {
  if (done()) fail(ErrorCode::ARG, "training is already complete");
  const int64_t epoch = step_ / steps_per_epoch_, k = step_ % steps_per_epoch_;
  std::vector<int> order = epoch_order(epoch);
  std::vector<const Example*> ex;
  for (int64_t i = k * cfg_.batch; i < std::min<int64_t>(int64_t(order.size()), (k + 1) * cfg_.batch); i++) ex.push_back(&data_[size_t(order[size_t(i)])]);
  double wtotal = 0;
  int64_t tokens = 0;
  for (auto* e : ex) {
    size_t len = std::min<size_t>(e->ids.size() - 1, size_t(cfg_.max_len));
    for (size_t t = 0; t < len; t++) wtotal += e->weight[t];
    tokens += int64_t(len);
  }
  const int64_t n = int64_t(params().size());
  be_.memset0(G_, sizeof(float) * size_t(n));
  double loss = 0;
  for (size_t i = 0; i < ex.size(); i += size_t(cfg_.micro_batch)) {
    std::vector<const Example*> mb(ex.begin() + long(i), ex.begin() + long(std::min(ex.size(), i + size_t(cfg_.micro_batch))));
    TrainBatch b = make_batch(mb);
    double wm = 0;
    for (float x : b.weight) wm += x;
    if (wm == 0 || wtotal == 0) continue;
    TrainOptions opt;
    opt.checkpoint = cfg_.checkpoint_activations;
    opt.dropout_seed = cfg_.seed;
    opt.step = uint64_t(step_);
    opt.loss_scale = wm / wtotal;
    opt.head_chunk_floats = cfg_.head_chunk_floats;
    opt.cancel = cancel;
    double l = cfg_.full ? train_forward_backward<float>(m_.cfg, w_, rope_, nullptr, nullptr, nullptr, &full_grads_, nullptr, b, opt, &be_)
                         : train_forward_backward<float>(m_.cfg, w_, rope_, &lay_, P_, G_, nullptr, nullptr, b, opt, &be_);
    loss += l * wm / wtotal;
  }
  cancel.check();
  // global-norm clipping, then AdamW (decoupled weight decay, bias-corrected moments)
  const double norm = std::sqrt(be_.sum_squares(G_, n));
  const OptimConfig& o = cfg_.optim;
  float clip = (o.clip > 0 && norm > o.clip) ? float(o.clip / (norm + 1e-6)) : 1.f;
  const double lr = lr_at(step_);
  const int64_t t = step_ + 1;
  const double bc1 = 1 - std::pow(double(o.beta1), double(t)), bc2 = 1 - std::pow(double(o.beta2), double(t));
  be_.adamw_step(P_, G_, M_, V_, n, clip, o.beta1, o.beta2, o.eps, o.weight_decay, lr, bc1, bc2);
  step_++;
  return StepStats{step_, loss, lr, norm, tokens};
}

double Trainer::eval_loss(const std::vector<Example>& data, const CancelToken& cancel) {
  double num = 0, den = 0;
  for (size_t i = 0; i < data.size(); i += size_t(cfg_.micro_batch)) {
    std::vector<const Example*> mb;
    for (size_t k = i; k < std::min(data.size(), i + size_t(cfg_.micro_batch)); k++) mb.push_back(&data[k]);
    TrainBatch b = make_batch(mb);
    double wm = 0;
    for (float x : b.weight) wm += x;
    if (wm == 0) continue;
    TrainOptions opt;
    opt.training = false;
    opt.head_chunk_floats = cfg_.head_chunk_floats;
    opt.cancel = cancel;
    double l = train_forward_backward<float>(m_.cfg, w_, rope_, cfg_.full ? nullptr : &lay_, cfg_.full ? nullptr : P_, nullptr, nullptr, nullptr, b, opt, &be_);
    num += l * wm;
    den += wm;
  }
  if (den == 0) fail(ErrorCode::ARG, "no weighted tokens to evaluate");
  return num / den;
}

}  // namespace tailor
