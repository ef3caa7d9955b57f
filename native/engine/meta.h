// meta.h — typed key/value metadata as GGUF carries it (also used for other formats' notes), handed to
// TypeScript unchanged so the tokenizer embedded in a GGUF can be built there.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace tailor {

struct MetaValue {
  enum Type { Int, UInt, Float, Bool, String, Array } type = Int;
  int64_t i = 0;
  uint64_t u = 0;
  double f = 0;
  bool b = false;
  std::string s;
  std::vector<MetaValue> arr;
};

using Metadata = std::vector<std::pair<std::string, MetaValue>>;

inline const MetaValue* meta_find(const Metadata& m, const std::string& key) {
  for (auto& kv : m)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

}  // namespace tailor
