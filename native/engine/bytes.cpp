// bytes.cpp — file mapping, UTF-8 validation and overflow-checked size arithmetic for the loaders.
#include "bytes.h"

#ifdef _WIN32
#include "win32.h"
#else
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

#include <cerrno>
#include <limits>

namespace tailor {

#ifdef _WIN32
// what the system said of the last call, in words
static std::string last_error_text() {
  const DWORD e = GetLastError();
  char* msg = nullptr;
  const DWORD n = FormatMessageA(FORMAT_MESSAGE_ALLOCATE_BUFFER | FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, nullptr, e, 0,
                                 reinterpret_cast<char*>(&msg), 0, nullptr);
  std::string s = n ? std::string(msg, n) : "error " + std::to_string(e);
  if (msg) LocalFree(msg);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == '.')) s.pop_back();
  return s;
}

// a UTF-8 path as Windows' UTF-16 (E_IO when it is not UTF-8)
static std::wstring wide_path(const std::string& path) {
  if (path.empty()) return std::wstring();
  const int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path.data(), int(path.size()), nullptr, 0);
  if (n <= 0) fail(ErrorCode::IO, "cannot open " + path + ": the path is not valid UTF-8");
  std::wstring w(size_t(n), L'\0');
  MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path.data(), int(path.size()), w.data(), n);
  return w;
}

// size and last-write time (in ns since 1601) of an open file
static bool file_stamp(HANDLE h, uint64_t* size, int64_t* mtime_ns) {
  BY_HANDLE_FILE_INFORMATION info;
  if (!GetFileInformationByHandle(h, &info)) return false;
  *size = (uint64_t(info.nFileSizeHigh) << 32) | info.nFileSizeLow;
  *mtime_ns = int64_t((uint64_t(info.ftLastWriteTime.dwHighDateTime) << 32) | info.ftLastWriteTime.dwLowDateTime) * 100;
  return true;
}

MappedFile::MappedFile(const std::string& path) : path_(path) {
  const std::wstring w = wide_path(path);
  const DWORD attrs = GetFileAttributesW(w.c_str());
  if (attrs != INVALID_FILE_ATTRIBUTES && (attrs & FILE_ATTRIBUTE_DIRECTORY)) fail(ErrorCode::IO, path + " is a directory, expected a file");
  // others may read the file, not write, rename or delete it while it is mapped (a released model reads its
  // weights from it again): Windows refuses them with a sharing violation
  HANDLE h = CreateFileW(w.c_str(), GENERIC_READ, FILE_SHARE_READ, nullptr, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, nullptr);
  if (h == INVALID_HANDLE_VALUE) fail(ErrorCode::IO, "cannot open " + path + ": " + last_error_text());
  uint64_t size = 0;
  if (!file_stamp(h, &size, &mtime_ns_)) {
    const std::string e = last_error_text();
    CloseHandle(h);
    fail(ErrorCode::IO, "cannot stat " + path + ": " + e);
  }
  if (size > uint64_t(std::numeric_limits<size_t>::max())) {
    CloseHandle(h);
    fail(ErrorCode::IO, "cannot map " + path + ": too large for this process");
  }
  size_ = size_t(size);
  if (size_ > 0) {
    HANDLE m = CreateFileMappingW(h, nullptr, PAGE_READONLY, 0, 0, nullptr);
    const void* v = m ? MapViewOfFile(m, FILE_MAP_READ, 0, 0, 0) : nullptr;
    if (!v) {
      const std::string e = last_error_text();
      if (m) CloseHandle(m);
      CloseHandle(h);
      fail(ErrorCode::IO, "cannot map " + path + ": " + e);
    }
    mapping_ = m;
    data_ = static_cast<const uint8_t*>(v);
  }
  file_ = h;
}

MappedFile::~MappedFile() {
  if (data_) UnmapViewOfFile(data_);
  if (mapping_) CloseHandle(static_cast<HANDLE>(mapping_));
  if (file_) CloseHandle(static_cast<HANDLE>(file_));
}

void MappedFile::stamp(uint64_t* size, int64_t* mtime) const {
  if (!file_stamp(static_cast<HANDLE>(file_), size, mtime)) fail(ErrorCode::IO, "cannot stat " + path_ + ": " + last_error_text());
}

#else

static int64_t mtime_ns(const struct stat& st) {
#ifdef __APPLE__
  return int64_t(st.st_mtimespec.tv_sec) * 1000000000 + st.st_mtimespec.tv_nsec;
#else
  return int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
#endif
}

MappedFile::MappedFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(ErrorCode::IO, "cannot open " + path + ": " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    fail(ErrorCode::IO, "cannot stat " + path + ": " + std::strerror(e));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    fail(ErrorCode::IO, path + " is a directory, expected a file");
  }
  size_ = static_cast<size_t>(st.st_size);
  mtime_ns_ = mtime_ns(st);
  if (size_ > 0) {
    void* m = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      fail(ErrorCode::IO, "cannot map " + path + ": " + std::strerror(e));
    }
    data_ = static_cast<const uint8_t*>(m);
  }
  fd_ = fd;
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
  if (fd_ >= 0) ::close(fd_);
}

void MappedFile::stamp(uint64_t* size, int64_t* mtime) const {
  struct stat st;
  if (::fstat(fd_, &st) != 0) fail(ErrorCode::IO, "cannot stat " + path_ + ": " + std::strerror(errno));
  *size = uint64_t(st.st_size);
  *mtime = mtime_ns(st);
}

#endif

void MappedFile::check_unchanged() const {
  uint64_t size = 0;
  int64_t mtime = 0;
  stamp(&size, &mtime);
  if (size == size_ && mtime == mtime_ns_) return;
  fail(ErrorCode::IO, path_ + " was changed on disk after the model was loaded from it (" +
                          (size == size_ ? "written in place" : std::to_string(size_) + " bytes then, " + std::to_string(size) + " now") +
                          "), and the model reads its weights from it again: load the model again");
}

PathKind path_kind(const std::string& path) {
#ifdef _WIN32
  std::wstring w;
  try {
    w = wide_path(path);
  } catch (const EngineError&) {
    return PathKind::Missing;  // not UTF-8: no file has that name
  }
  const DWORD a = GetFileAttributesW(w.c_str());
  if (a == INVALID_FILE_ATTRIBUTES) return PathKind::Missing;
  if (a & FILE_ATTRIBUTE_DIRECTORY) return PathKind::Folder;
  return (a & FILE_ATTRIBUTE_DEVICE) ? PathKind::Other : PathKind::File;
#else
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return PathKind::Missing;
  return S_ISDIR(st.st_mode) ? PathKind::Folder : S_ISREG(st.st_mode) ? PathKind::File : PathKind::Other;
#endif
}

bool utf8_valid(const uint8_t* s, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = s[i];
    if (c < 0x80) { i++; continue; }
    size_t len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
    else return false;
    if (i + len > n) return false;
    for (size_t k = 1; k < len; k++) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return false;  // overlong
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

uint64_t checked_mul(uint64_t a, uint64_t b, const char* what) {
  if (a != 0 && b > std::numeric_limits<uint64_t>::max() / a) fail(ErrorCode::FORMAT, std::string(what) + ": size overflows 64 bits");
  return a * b;
}

uint64_t checked_add(uint64_t a, uint64_t b, const char* what) {
  if (b > std::numeric_limits<uint64_t>::max() - a) fail(ErrorCode::FORMAT, std::string(what) + ": size overflows 64 bits");
  return a + b;
}

}  // namespace tailor
