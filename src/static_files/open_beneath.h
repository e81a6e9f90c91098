// Opening a file by a relative name so that it cannot resolve outside its
// mount's directory, whatever the name or the symlinks in the tree say.
#pragma once

#include <sys/stat.h>

#include <string>

#include "base/unique_fd.h"

namespace cppgunicorn::static_files {

enum class OpenStatus {
  kOpened,       // a regular file; `fd` and `info` are set
  kNotFound,     // no such file, or a name that resolves outside the mount
  kNotRegular,   // a directory, FIFO, socket or device: never served
  kOutOfFiles,   // EMFILE/ENFILE: the open-files limit is reached
  kError,        // anything else (EACCES, EIO): `error` says which
};

struct OpenedFile {
  OpenStatus status = OpenStatus::kNotFound;
  base::UniqueFd fd;
  struct stat info {};
  int error = 0;  // errno of the failure
};

// Opens `name` (checked by check_file_name: relative, no "." or ".."
// components) beneath the directory `dir_fd`. With openat2(2) (Linux 5.6)
// the kernel resolves it with RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS:
// symlinks are followed as long as they stay beneath the directory. Where
// the kernel lacks it (ENOSYS, or a seccomp filter that refuses it with
// EPERM), open_by_walk() is used.
// The file is opened O_NONBLOCK so that a FIFO cannot block the loop in
// open(), and fstat() after the open decides what it is: only regular files
// are served.
OpenedFile open_beneath(int dir_fd, const std::string& name);

// The fallback: one openat(O_NOFOLLOW) per component, each relative to the
// previous one's descriptor. Symlinks are refused at every component (not
// followed, even when their target stays beneath): the walk cannot check a
// target without resolving it itself, and refusing is what cannot be wrong.
OpenedFile open_by_walk(int dir_fd, const std::string& name);

// Whether this kernel has openat2 (probed once per process).
bool kernel_has_openat2();

}  // namespace cppgunicorn::static_files
