// json.h — a small, strict JSON reader for untrusted headers (safetensors) and config files.
// Depth- and size-limited; strings must be valid UTF-8; every error is E_FORMAT with a position.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace tailor {

struct Json {
  enum Type { Null, Bool, Number, String, Array, Object } type = Null;
  bool b = false;
  double num = 0;
  std::string str;
  std::vector<Json> arr;
  std::vector<std::pair<std::string, Json>> obj;  // insertion order kept

  const Json* get(const std::string& key) const;  // nullptr if absent or not an object
  bool is_int() const;                            // a Number holding an exact integer within ±2^53
};

// Parse `text` (`what` names the source in error messages). Throws EngineError(E_FORMAT).
Json parse_json(const char* text, size_t n, const std::string& what, int max_depth = 64);

// Typed accessors for config files: throw E_FORMAT naming the key when the type is wrong.
int64_t json_int(const Json& o, const std::string& key, const std::string& what);
int64_t json_int_or(const Json& o, const std::string& key, int64_t dflt, const std::string& what);
double json_num_or(const Json& o, const std::string& key, double dflt, const std::string& what);
bool json_bool_or(const Json& o, const std::string& key, bool dflt, const std::string& what);

}  // namespace tailor
