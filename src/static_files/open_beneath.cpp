#include "static_files/open_beneath.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

namespace cppgunicorn::static_files {

namespace {

constexpr int kFileFlags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;

// 1: available, 0: not, -1: not probed yet.
std::atomic<int> g_openat2{-1};

OpenedFile failed(int err) {
  OpenedFile out;
  out.error = err;
  switch (err) {
    case ENOENT:
    case ENOTDIR:      // a component is a file: "a.css/x"
    case EXDEV:        // RESOLVE_BENEATH: the name would leave the directory
    case ELOOP:        // a symlink where none may be (walk), or a loop
    case ENAMETOOLONG:
      out.status = OpenStatus::kNotFound;
      break;
    case EMFILE:
    case ENFILE:
      out.status = OpenStatus::kOutOfFiles;
      break;
    default:
      out.status = OpenStatus::kError;
      break;
  }
  return out;
}

OpenedFile finish(int fd) {
  OpenedFile out;
  out.fd.reset(fd);
  if (::fstat(fd, &out.info) != 0) return failed(errno);
  out.status = S_ISREG(out.info.st_mode) ? OpenStatus::kOpened : OpenStatus::kNotRegular;
  if (out.status != OpenStatus::kOpened) out.fd.reset();
  return out;
}

long raw_openat2(int dir_fd, const char* name) {
  open_how how{};
  how.flags = kFileFlags;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  return ::syscall(SYS_openat2, dir_fd, name, &how, sizeof how);
}

}  // namespace

bool kernel_has_openat2() {
  int known = g_openat2.load(std::memory_order_relaxed);
  if (known >= 0) return known == 1;
  // "." beneath the root directory exists everywhere.
  long fd = raw_openat2(AT_FDCWD, ".");
  bool has = fd >= 0 || (errno != ENOSYS && errno != EPERM);
  if (fd >= 0) ::close(static_cast<int>(fd));
  g_openat2.store(has ? 1 : 0, std::memory_order_relaxed);
  return has;
}

OpenedFile open_beneath(int dir_fd, const std::string& name) {
  if (!kernel_has_openat2()) return open_by_walk(dir_fd, name);
  long fd;
  do {
    fd = raw_openat2(dir_fd, name.c_str());
    // EAGAIN: a rename raced the lookup (RESOLVE_BENEATH's own retry signal).
  } while (fd < 0 && (errno == EINTR || errno == EAGAIN));
  if (fd < 0) return failed(errno);
  return finish(static_cast<int>(fd));
}

OpenedFile open_by_walk(int dir_fd, const std::string& name) {
  base::UniqueFd dir;  // the directory reached so far; dir_fd at first
  int at = dir_fd;
  size_t start = 0;
  while (true) {
    size_t slash = name.find('/', start);
    std::string part = name.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (part.empty() || part == "." || part == "..") return failed(ENOENT);
    if (slash == std::string::npos) {
      int fd = ::openat(at, part.c_str(), kFileFlags | O_NOFOLLOW);
      if (fd < 0) return failed(errno);
      return finish(fd);
    }
    int next = ::openat(at, part.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0) return failed(errno);
    dir.reset(next);
    at = next;
    start = slash + 1;
  }
}

}  // namespace cppgunicorn::static_files
