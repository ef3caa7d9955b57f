// errors.h — the engine's one error type. Every failure the engine can report is an EngineError with a
// code; the addon maps it 1:1 onto the TypeScript EngineError. Pure C++, no Node.
#pragma once
#include <stdexcept>
#include <string>

namespace tailor {

enum class ErrorCode {
  IO,           // a file could not be opened/read/written
  FORMAT,       // a file is malformed: bad magic, truncated, out-of-bounds offsets, bad JSON, bad UTF-8
  UNSUPPORTED,  // well-formed but not something we handle: version, dtype, architecture
  SHAPE,        // tensors disagree with the configuration or with each other
  ARG,          // the caller passed bad arguments
  CANCELLED,    // the caller cancelled the job
  OOM,          // an allocation failed
  INTERNAL,     // a bug
};

inline const char* error_code_name(ErrorCode c) {
  switch (c) {
    case ErrorCode::IO: return "E_IO";
    case ErrorCode::FORMAT: return "E_FORMAT";
    case ErrorCode::UNSUPPORTED: return "E_UNSUPPORTED";
    case ErrorCode::SHAPE: return "E_SHAPE";
    case ErrorCode::ARG: return "E_ARG";
    case ErrorCode::CANCELLED: return "E_CANCELLED";
    case ErrorCode::OOM: return "E_OOM";
    case ErrorCode::INTERNAL: return "E_INTERNAL";
  }
  return "E_INTERNAL";
}

class EngineError : public std::runtime_error {
 public:
  EngineError(ErrorCode code, const std::string& msg) : std::runtime_error(msg), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

[[noreturn]] inline void fail(ErrorCode code, const std::string& msg) { throw EngineError(code, msg); }

}  // namespace tailor
