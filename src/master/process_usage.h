// A process's CPU time and resident memory, read from /proc at the moment
// they are needed (a scrape, the master's memory check): nothing is
// sampled in between, and the workers do nothing for it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>

namespace cppgunicorn::master {

struct ProcessUsage {
  double cpu_seconds = 0;  // user + system
  uint64_t rss_bytes = 0;
};

// /proc/PID/stat (utime, stime) and /proc/PID/statm (resident pages);
// nullopt when the process is gone.
std::optional<ProcessUsage> read_process_usage(pid_t pid);
// /proc/PID/statm only: the master's memory check reads nothing else.
std::optional<uint64_t> read_resident_bytes(pid_t pid);

}  // namespace cppgunicorn::master
