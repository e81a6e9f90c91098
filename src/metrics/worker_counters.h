// What one worker counts for the master's /metrics: a block of shared
// memory the master maps before it forks the worker (as the heartbeat
// page), which the worker's loop thread writes with relaxed atomics (no
// lock, no syscall on the request path) and the master reads when it is
// scraped. When the worker dies the master folds its block into the
// "retired" totals (metrics::Totals) before unmapping it, so a worker
// killed with SIGKILL loses nothing it had counted.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "http/errors.h"

namespace cppgunicorn::metrics {

// Methods with a label of their own; anything else is "other".
inline constexpr std::array<std::string_view, 7> kMethodNames = {
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"};
inline constexpr size_t kMethodCount = kMethodNames.size() + 1;
// 1xx..5xx, then "other" (a status outside 100-599).
inline constexpr size_t kStatusClassCount = 6;
// Histogram bounds at most; one more bucket counts what passed the last.
inline constexpr size_t kMaxBuckets = 30;
inline constexpr size_t kParseErrorCount =
    static_cast<size_t>(http::ParseError::kForbiddenUwsgiPeer) + 1;

size_t method_index(std::string_view method);
size_t status_class_index(int status);
// "bad_request" for http::ParseError::kBadRequest, and so on.
std::string_view parse_error_name(size_t index);

// Why a worker ended, as the master tells it from the exit status, what
// it asked of the worker, and what the worker wrote here before exiting.
enum class ExitCause : uint32_t {
  kNone = 0,       // still running
  kTimeout,        // killed by the master past --timeout
  kSignal,         // killed by a signal nobody in the server sent (kill -9, OOM killer)
  kMaxRequests,    // retired itself after --max-requests
  kMaxMemory,      // retired by the master past --max-worker-memory
  kCrash,          // exited with a non-zero status
  kStopped,        // told to stop: shutdown, HUP, TTOU
};
inline constexpr size_t kExitCauseCount = 7;
std::string_view exit_cause_name(ExitCause cause);

// One counter written by one thread only (the worker's loop thread): a
// relaxed load and store, which compile to plain moves, and never tear for
// the master reading it from another process.
class Counter {
 public:
  void add(uint64_t n) { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  void inc() { add(1); }
  uint64_t get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};
static_assert(std::atomic<uint64_t>::is_always_lock_free);

struct WorkerCounters {
  // Requests answered: counted where the access-log line is written, so
  // that the two agree exactly.
  Counter requests[kMethodCount][kStatusClassCount];
  // Of those, the ones --static-map answered (by status class): a subset
  // of `requests`, counted at the same place.
  Counter static_requests[kStatusClassCount];
  // Their durations (non-cumulative buckets: [i] counts those at or below
  // bound i and above bound i-1; [bounds] those above every bound).
  Counter duration_buckets[kMaxBuckets + 1];
  Counter duration_sum_us;
  Counter requests_started;    // a complete head was handed to the app or a static mount
  Counter requests_abandoned;  // started, then the connection closed unanswered
  Counter connections_accepted;
  Counter connections_closed;
  Counter connections_rejected;  // left in the backlog at --worker-connections
  Counter bytes_in;              // read from client sockets
  Counter bytes_out;             // written to client sockets (sendfile included)
  Counter parse_errors[kParseErrorCount];
  Counter app_exceptions;
  Counter spooled_bytes;
  // Written by the worker as it decides to exit on its own (max-requests).
  std::atomic<uint32_t> exit_cause{0};
};

// The master's mapping of one worker's counters, made before the fork.
class SharedCounters {
 public:
  SharedCounters();  // throws std::runtime_error when mmap fails
  ~SharedCounters();
  SharedCounters(const SharedCounters&) = delete;
  SharedCounters& operator=(const SharedCounters&) = delete;

  WorkerCounters& get() { return *block_; }
  const WorkerCounters& get() const { return *block_; }

 private:
  WorkerCounters* block_ = nullptr;
};

// The histogram's upper bounds as the worker compares them: microseconds.
class DurationBuckets {
 public:
  explicit DurationBuckets(const std::vector<double>& bounds_s);
  // The bucket a duration falls in (bounds().size() past the last bound).
  size_t index(uint64_t us) const {
    size_t i = 0;
    while (i < count_ && us > bounds_us_[i]) ++i;
    return i;
  }

 private:
  std::array<uint64_t, kMaxBuckets> bounds_us_{};
  size_t count_ = 0;
};

// Everything a worker counts, summed: over the live workers' blocks at
// scrape time, and over the dead ones' as they are reaped (retired).
struct Totals {
  uint64_t requests[kMethodCount][kStatusClassCount] = {};
  uint64_t static_requests[kStatusClassCount] = {};
  uint64_t duration_buckets[kMaxBuckets + 1] = {};
  uint64_t duration_sum_us = 0;
  uint64_t requests_started = 0;
  uint64_t requests_abandoned = 0;
  uint64_t connections_accepted = 0;
  uint64_t connections_closed = 0;
  uint64_t connections_rejected = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  uint64_t parse_errors[kParseErrorCount] = {};
  uint64_t app_exceptions = 0;
  uint64_t spooled_bytes = 0;

  void add(const WorkerCounters& c);
  void add(const Totals& t);
  uint64_t request_count() const;
};

}  // namespace cppgunicorn::metrics
