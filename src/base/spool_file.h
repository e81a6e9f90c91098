// An anonymous temporary file that holds a large request body, so that a
// huge upload costs disk, not memory. Unlinked at creation: the descriptor
// is its only name, and closing it frees the space.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace cppgunicorn::base {

class SpoolFile {
 public:
  // In the directory set by use_directory, else $TMPDIR (or /tmp). Throws
  // std::runtime_error naming the directory.
  static std::shared_ptr<SpoolFile> create();
  // gunicorn's tmp_upload_dir, for this process ("": back to $TMPDIR).
  static void use_directory(std::string dir);
  // Throws std::runtime_error (saying why) unless `dir` is a directory this process can
  // create files in (checked at start-up, so a bad tmp_upload_dir is not
  // found on the first large upload).
  static void check_directory(const std::string& dir);
  ~SpoolFile();
  SpoolFile(const SpoolFile&) = delete;
  SpoolFile& operator=(const SpoolFile&) = delete;

  // What append() returns besides 0 (written) and an errno value: the
  // process's spool budget would be exceeded.
  static constexpr int kOverBudget = -1;
  // Bytes all live spool files of this process may hold together (0: no
  // limit); spool_budget, per worker.
  static void set_budget(uint64_t bytes);
  // The directory spool files are made in now (for messages).
  static std::string directory();

  // Appends at the end: 0, kOverBudget (nothing written), or the errno of
  // a write that failed (ENOSPC: the disk is full).
  int append(std::string_view data);
  // Copies up to `n` bytes from `offset`; returns how many.
  size_t read_at(uint64_t offset, char* out, size_t n) const;
  uint64_t size() const { return size_; }

 private:
  explicit SpoolFile(int fd) : fd_(fd) {}
  int fd_;
  uint64_t size_ = 0;
};

}  // namespace cppgunicorn::base
