#include "base/spool_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace cppgunicorn::base {

namespace {
std::string& chosen_directory() {
  static std::string dir;
  return dir;
}
// Spool files may be released on a pool thread (with the request's
// exchange) while the loop thread spools another body.
std::atomic<uint64_t> g_spooled{0};
uint64_t g_budget = 0;
}  // namespace

void SpoolFile::use_directory(std::string dir) { chosen_directory() = std::move(dir); }

void SpoolFile::set_budget(uint64_t bytes) { g_budget = bytes; }

std::string SpoolFile::directory() {
  const char* dir = std::getenv("TMPDIR");
  return !chosen_directory().empty() ? chosen_directory()
         : dir && *dir               ? std::string(dir)
                                     : std::string("/tmp");
}

void SpoolFile::check_directory(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) throw std::runtime_error(std::strerror(errno));
  if (!S_ISDIR(st.st_mode)) throw std::runtime_error("not a directory");
  if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    throw std::runtime_error(std::string("not writable: ") + std::strerror(errno));
  }
}

std::shared_ptr<SpoolFile> SpoolFile::create() {
  std::string path = directory() + "/cppgunicorn-body-XXXXXX";
  int fd = ::mkostemp(path.data(), O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot create a temporary file in " + path + ": " + std::strerror(errno));
  ::unlink(path.c_str());
  return std::shared_ptr<SpoolFile>(new SpoolFile(fd));
}

SpoolFile::~SpoolFile() {
  ::close(fd_);  // the file was unlinked at creation: its space is free now
  g_spooled -= size_;
}

int SpoolFile::append(std::string_view data) {
  if (g_budget != 0 && g_spooled.load() + data.size() > g_budget) return kOverBudget;
  while (!data.empty()) {
    ssize_t n = ::pwrite(fd_, data.data(), data.size(), static_cast<off_t>(size_));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n == 0 ? ENOSPC : errno;
    size_ += static_cast<uint64_t>(n);
    g_spooled += static_cast<uint64_t>(n);
    data.remove_prefix(static_cast<size_t>(n));
  }
  return 0;
}

size_t SpoolFile::read_at(uint64_t offset, char* out, size_t n) const {
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::pread(fd_, out + got, n - got, static_cast<off_t>(offset + got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  return got;
}

}  // namespace cppgunicorn::base
