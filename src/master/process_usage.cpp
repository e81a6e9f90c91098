#include "master/process_usage.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace cppgunicorn::master {

namespace {

// A whole small /proc file into `buf`; its length, or -1.
ssize_t read_small_file(const std::string& path, char* buf, size_t size) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = ::read(fd, buf, size - 1);
  ::close(fd);
  if (n >= 0) buf[n] = '\0';
  return n;
}

}  // namespace

std::optional<uint64_t> read_resident_bytes(pid_t pid) {
  char buf[256];
  if (read_small_file("/proc/" + std::to_string(pid) + "/statm", buf, sizeof buf) <= 0) {
    return std::nullopt;
  }
  unsigned long long size = 0, resident = 0;
  if (std::sscanf(buf, "%llu %llu", &size, &resident) != 2) return std::nullopt;
  static const long page = ::sysconf(_SC_PAGESIZE);
  return static_cast<uint64_t>(resident) * static_cast<uint64_t>(page);
}

std::optional<ProcessUsage> read_process_usage(pid_t pid) {
  char buf[1024];
  if (read_small_file("/proc/" + std::to_string(pid) + "/stat", buf, sizeof buf) <= 0) {
    return std::nullopt;
  }
  // The command name, field 2, is in parentheses and may hold spaces: the
  // fields are counted from the last ')'. utime and stime are fields 14, 15.
  const char* p = std::strrchr(buf, ')');
  if (p == nullptr) return std::nullopt;
  unsigned long long utime = 0, stime = 0;
  if (std::sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
                  &stime) != 2) {
    return std::nullopt;
  }
  static const long ticks = ::sysconf(_SC_CLK_TCK);
  ProcessUsage usage;
  usage.cpu_seconds = static_cast<double>(utime + stime) / static_cast<double>(ticks);
  std::optional<uint64_t> rss = read_resident_bytes(pid);
  if (!rss) return std::nullopt;
  usage.rss_bytes = *rss;
  return usage;
}

}  // namespace cppgunicorn::master
