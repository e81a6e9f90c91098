#include "base/spool_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

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
}  // namespace

void SpoolFile::use_directory(std::string dir) { chosen_directory() = std::move(dir); }

void SpoolFile::check_directory(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) throw std::runtime_error(std::strerror(errno));
  if (!S_ISDIR(st.st_mode)) throw std::runtime_error("not a directory");
  if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    throw std::runtime_error(std::string("not writable: ") + std::strerror(errno));
  }
}

std::shared_ptr<SpoolFile> SpoolFile::create() {
  const char* dir = std::getenv("TMPDIR");
  std::string base = !chosen_directory().empty() ? chosen_directory()
                     : dir && *dir               ? std::string(dir)
                                                 : std::string("/tmp");
  std::string path = base + "/cppgunicorn-body-XXXXXX";
  int fd = ::mkostemp(path.data(), O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot create a temporary file in " + path + ": " + std::strerror(errno));
  ::unlink(path.c_str());
  return std::shared_ptr<SpoolFile>(new SpoolFile(fd));
}

SpoolFile::~SpoolFile() { ::close(fd_); }

bool SpoolFile::append(std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::pwrite(fd_, data.data(), data.size(), static_cast<off_t>(size_));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    size_ += static_cast<uint64_t>(n);
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
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
