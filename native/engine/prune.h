// prune.h — LLM-Pruner's structural importance for LLaMA: per layer, one score per attention group (a
// KV head with every query head that shares it: its rows in q, k, v and its columns in o_proj) and one
// per MLP channel (its row in gate and up, its column in down). Each coupled tensor's share of a group
// is reduced, then the shares are aggregated (sum, mean or max).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "backend.h"
#include "model.h"
#include "trainer.h"

namespace tailor {

enum class ImportanceMethod { Taylor, TaylorVector, TaylorSecond, MagnitudeL1, MagnitudeL2, WandaSp, Random };
enum class GroupAgg { Sum, Mean, Max };

ImportanceMethod parse_importance_method(const std::string& s);  // "taylor", "taylor-vector", … (E_ARG otherwise)
GroupAgg parse_group_agg(const std::string& s);

struct GroupScores {
  std::vector<std::vector<double>> attn;  // [layer][kv group]
  std::vector<std::vector<double>> mlp;   // [layer][channel]
  double loss = 0;                        // calibration loss (gradient methods)
};

// All calibration examples as one right-padded batch (padding weighs 0): the importance passes take
// the gradient of the mean loss over every weighted token at once.
TrainBatch calibration_batch(const std::vector<Example>& ex);

// Calibration examples are scored as one batch (the gradient of the mean loss over all their weighted
// tokens); taylor-second adds one backward per example for the Fisher diagonal.
GroupScores group_importance(const Model& m, Backend& be, const std::vector<Example>& calib, ImportanceMethod method, GroupAgg agg,
                             uint64_t seed, const CancelToken& cancel);

}  // namespace tailor
