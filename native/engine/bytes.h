// bytes.h — read-only file mapping and a bounds-checked little-endian cursor over untrusted bytes.
// Every read from a model file goes through ByteReader, which throws E_FORMAT instead of reading past the end.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "errors.h"

namespace tailor {

// A whole file mapped read-only (mmap; on Windows CreateFileMapping, the path taken as UTF-8). Empty files map
// to size 0 with data == nullptr.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // E_IO when the file was written or truncated in place since it was mapped (its size or modification time
  // differ): a mapping reads the file as it is now, so bytes read after that are not the ones loaded, and past
  // a truncation they fault. A file replaced by a rename is still the old one here, and passes.
  void check_unchanged() const;

 private:
  void stamp(uint64_t* size, int64_t* mtime_ns) const;  // the open file's size and modification time now (E_IO: unknown)
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
#ifdef _WIN32
  void* file_ = nullptr;     // HANDLE, kept open: check_unchanged() asks the mapped file, not whatever has the path now
  void* mapping_ = nullptr;  // HANDLE of the file-mapping object behind data_
#else
  int fd_ = -1;              // kept open: check_unchanged() asks the mapped file, not whatever has the path now
#endif
  int64_t mtime_ns_ = 0;     // the modification time when mapped
};

// what a path (UTF-8) names: nothing, a regular file, a folder, or something else (stat; Windows: the
// attributes of its UTF-16 form)
enum class PathKind { Missing, File, Folder, Other };
PathKind path_kind(const std::string& path);

bool utf8_valid(const uint8_t* s, size_t n);

// checked arithmetic on sizes: throws E_FORMAT on overflow
uint64_t checked_mul(uint64_t a, uint64_t b, const char* what);
uint64_t checked_add(uint64_t a, uint64_t b, const char* what);

class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t size, std::string what) : p_(data), n_(size), what_(std::move(what)) {}
  size_t pos() const { return pos_; }
  size_t remaining() const { return n_ - pos_; }
  void need(uint64_t k, const char* field) const {
    if (k > n_ - pos_) {
      fail(ErrorCode::FORMAT, what_ + ": truncated while reading " + field + " at byte " + std::to_string(pos_) +
                                  " (needs " + std::to_string(k) + " bytes, " + std::to_string(n_ - pos_) + " left)");
    }
  }
  template <typename T>
  T read(const char* field) {
    need(sizeof(T), field);
    T v;
    std::memcpy(&v, p_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  const uint8_t* bytes(uint64_t k, const char* field) {
    need(k, field);
    const uint8_t* r = p_ + pos_;
    pos_ += k;
    return r;
  }
  // a string of k bytes that must be valid UTF-8
  std::string utf8(uint64_t k, const char* field) {
    const uint8_t* b = bytes(k, field);
    if (!utf8_valid(b, k)) fail(ErrorCode::FORMAT, what_ + ": " + field + " is not valid UTF-8");
    return std::string(reinterpret_cast<const char*>(b), k);
  }
  const std::string& what() const { return what_; }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
  std::string what_;
};

}  // namespace tailor
