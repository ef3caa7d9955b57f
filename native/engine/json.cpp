// json.cpp — recursive-descent JSON parser with explicit depth limit (see json.h).
#include "json.h"

#include <cmath>
#include <cstdlib>
#include <cstring>

#include "bytes.h"
#include "errors.h"

namespace tailor {

const Json* Json::get(const std::string& key) const {
  if (type != Object) return nullptr;
  for (auto& kv : obj)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

bool Json::is_int() const {
  return type == Number && std::isfinite(num) && std::floor(num) == num && std::fabs(num) <= 9007199254740992.0;
}

namespace {

struct Parser {
  const char* s;
  size_t n;
  size_t i = 0;
  std::string what;
  int max_depth;

  [[noreturn]] void err(const std::string& m) {
    fail(ErrorCode::FORMAT, what + ": invalid JSON at byte " + std::to_string(i) + ": " + m);
  }
  void ws() {
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
  }
  bool lit(const char* w) {
    size_t k = std::strlen(w);
    if (n - i >= k && std::memcmp(s + i, w, k) == 0) { i += k; return true; }
    return false;
  }
  static void put_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) out += char(cp);
    else if (cp < 0x800) { out += char(0xC0 | (cp >> 6)); out += char(0x80 | (cp & 0x3F)); }
    else if (cp < 0x10000) { out += char(0xE0 | (cp >> 12)); out += char(0x80 | ((cp >> 6) & 0x3F)); out += char(0x80 | (cp & 0x3F)); }
    else { out += char(0xF0 | (cp >> 18)); out += char(0x80 | ((cp >> 12) & 0x3F)); out += char(0x80 | ((cp >> 6) & 0x3F)); out += char(0x80 | (cp & 0x3F)); }
  }
  uint32_t hex4() {
    if (n - i < 4) err("truncated \\u escape");
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
      char c = s[i++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= c - '0';
      else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
      else err("bad \\u escape");
    }
    return v;
  }
  std::string string() {
    if (i >= n || s[i] != '"') err("expected string");
    i++;
    std::string out;
    size_t start = i;
    while (true) {
      if (i >= n) err("unterminated string");
      unsigned char c = s[i];
      if (c == '"') { i++; break; }
      if (c < 0x20) err("control character in string");
      if (c == '\\') {
        i++;
        if (i >= n) err("truncated escape");
        char e = s[i++];
        switch (e) {
          case '"': out += '"'; break;
          case '\\': out += '\\'; break;
          case '/': out += '/'; break;
          case 'b': out += '\b'; break;
          case 'f': out += '\f'; break;
          case 'n': out += '\n'; break;
          case 'r': out += '\r'; break;
          case 't': out += '\t'; break;
          case 'u': {
            uint32_t cp = hex4();
            if (cp >= 0xD800 && cp <= 0xDBFF) {
              if (!(n - i >= 2 && s[i] == '\\' && s[i + 1] == 'u')) err("lone surrogate");
              i += 2;
              uint32_t lo = hex4();
              if (lo < 0xDC00 || lo > 0xDFFF) err("bad surrogate pair");
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
              err("lone surrogate");
            }
            put_utf8(out, cp);
            break;
          }
          default: err("bad escape");
        }
      } else {
        out += char(c);
        i++;
      }
    }
    (void)start;
    if (!utf8_valid(reinterpret_cast<const uint8_t*>(out.data()), out.size())) err("string is not valid UTF-8");
    return out;
  }
  double number() {
    size_t st = i;
    if (i < n && s[i] == '-') i++;
    if (i >= n || !(s[i] >= '0' && s[i] <= '9')) err("bad number");
    while (i < n && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == 'e' || s[i] == 'E' || s[i] == '+' || s[i] == '-')) i++;
    std::string tok(s + st, i - st);
    char* end = nullptr;
    double v = std::strtod(tok.c_str(), &end);
    if (end != tok.c_str() + tok.size()) err("bad number '" + tok + "'");
    return v;
  }
  Json value(int depth) {
    if (depth > max_depth) err("nested deeper than " + std::to_string(max_depth));
    ws();
    if (i >= n) err("unexpected end");
    Json j;
    char c = s[i];
    if (c == '{') {
      j.type = Json::Object;
      i++;
      ws();
      if (i < n && s[i] == '}') { i++; return j; }
      while (true) {
        ws();
        std::string k = string();
        ws();
        if (i >= n || s[i] != ':') err("expected ':'");
        i++;
        j.obj.emplace_back(std::move(k), value(depth + 1));
        ws();
        if (i < n && s[i] == ',') { i++; continue; }
        if (i < n && s[i] == '}') { i++; break; }
        err("expected ',' or '}'");
      }
    } else if (c == '[') {
      j.type = Json::Array;
      i++;
      ws();
      if (i < n && s[i] == ']') { i++; return j; }
      while (true) {
        j.arr.push_back(value(depth + 1));
        ws();
        if (i < n && s[i] == ',') { i++; continue; }
        if (i < n && s[i] == ']') { i++; break; }
        err("expected ',' or ']'");
      }
    } else if (c == '"') {
      j.type = Json::String;
      j.str = string();
    } else if (lit("true")) { j.type = Json::Bool; j.b = true; }
    else if (lit("false")) { j.type = Json::Bool; j.b = false; }
    else if (lit("null")) { j.type = Json::Null; }
    else { j.type = Json::Number; j.num = number(); }
    return j;
  }
};

}  // namespace

Json parse_json(const char* text, size_t n, const std::string& what, int max_depth) {
  Parser p{text, n, 0, what, max_depth};
  Json j = p.value(0);
  p.ws();
  // safetensors pads its header with spaces; anything else after the value is an error
  if (p.i != n) p.err("trailing characters");
  return j;
}

int64_t json_int(const Json& o, const std::string& key, const std::string& what) {
  const Json* v = o.get(key);
  if (!v) fail(ErrorCode::FORMAT, what + ": missing \"" + key + "\"");
  if (!v->is_int()) fail(ErrorCode::FORMAT, what + ": \"" + key + "\" must be an integer");
  return static_cast<int64_t>(v->num);
}

int64_t json_int_or(const Json& o, const std::string& key, int64_t dflt, const std::string& what) {
  const Json* v = o.get(key);
  if (!v || v->type == Json::Null) return dflt;
  return json_int(o, key, what);
}

double json_num_or(const Json& o, const std::string& key, double dflt, const std::string& what) {
  const Json* v = o.get(key);
  if (!v || v->type == Json::Null) return dflt;
  if (v->type != Json::Number || !std::isfinite(v->num)) fail(ErrorCode::FORMAT, what + ": \"" + key + "\" must be a number");
  return v->num;
}

bool json_bool_or(const Json& o, const std::string& key, bool dflt, const std::string& what) {
  const Json* v = o.get(key);
  if (!v || v->type == Json::Null) return dflt;
  if (v->type != Json::Bool) fail(ErrorCode::FORMAT, what + ": \"" + key + "\" must be true or false");
  return v->b;
}

}  // namespace tailor
