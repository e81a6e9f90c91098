// The master's view of the server at one scrape, and its rendering in the
// Prometheus text exposition format 0.0.4 (every name prefixed
// "cppgunicorn_"; docs/operations.md lists them).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "metrics/worker_counters.h"

namespace cppgunicorn::metrics {

struct WorkerSample {
  pid_t pid = 0;
  int age = 0;
  double cpu_seconds = 0;   // user + system, from /proc/PID/stat
  uint64_t rss_bytes = 0;   // from /proc/PID/statm
};

struct ListenerSample {
  std::string name;        // "127.0.0.1:8000"
  uint64_t queued = 0;     // connections waiting in the accept queue
  uint64_t max = 0;        // the queue's limit (the backlog the kernel took)
};

struct Snapshot {
  Totals totals;             // retired workers' counts plus the live ones'
  int64_t in_flight = 0;     // live workers only
  int64_t open_connections = 0;
  std::vector<double> bucket_bounds;  // seconds
  uint64_t worker_boots = 0;
  uint64_t worker_exits[kExitCauseCount] = {};
  uint64_t worker_restarts = 0;
  int workers_alive = 0;
  int workers_serving = 0;
  int workers_target = 0;
  std::vector<WorkerSample> workers;
  std::vector<ListenerSample> listeners;
};

std::string render_prometheus(const Snapshot& s);

// A label value with \, " and newline escaped, as the format requires.
std::string escape_label(std::string_view value);

}  // namespace cppgunicorn::metrics
