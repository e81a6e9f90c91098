#include "metrics/worker_counters.h"

#include <sys/mman.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

namespace cppgunicorn::metrics {

size_t method_index(std::string_view method) {
  for (size_t i = 0; i < kMethodNames.size(); ++i) {
    if (kMethodNames[i] == method) return i;
  }
  return kMethodNames.size();
}

size_t status_class_index(int status) {
  if (status < 100 || status > 599) return kStatusClassCount - 1;
  return static_cast<size_t>(status / 100 - 1);
}

std::string_view parse_error_name(size_t index) {
  using E = http::ParseError;
  switch (static_cast<E>(index)) {
    case E::kNone: return "none";
    case E::kBadRequest: return "bad_request";
    case E::kInvalidMethod: return "invalid_method";
    case E::kInvalidVersion: return "invalid_version";
    case E::kVersionNotSupported: return "version_not_supported";
    case E::kInvalidHeader: return "invalid_header";
    case E::kInvalidChunk: return "invalid_chunk";
    case E::kBodyFraming: return "body_framing";
    case E::kUnsupportedEncoding: return "unsupported_encoding";
    case E::kRequestLineTooLong: return "request_line_too_long";
    case E::kTooManyHeaders: return "too_many_headers";
    case E::kHeaderTooLarge: return "header_too_large";
    case E::kIncomplete: return "incomplete";
    case E::kInvalidProxy: return "invalid_proxy";
    case E::kForbiddenProxy: return "forbidden_proxy";
    case E::kBodyTooLarge: return "body_too_large";
    case E::kExpectationFailed: return "expectation_failed";
    case E::kRequestTimeout: return "request_timeout";
    case E::kPlainHttpToTls: return "plain_http_to_tls";
    case E::kInsufficientStorage: return "insufficient_storage";
    case E::kSpoolBudgetExceeded: return "spool_budget_exceeded";
    case E::kSpoolFailed: return "spool_failed";
    case E::kInvalidUwsgiPacket: return "invalid_uwsgi_packet";
    case E::kForbiddenUwsgiPeer: return "forbidden_uwsgi_peer";
  }
  return "unknown";
}

std::string_view exit_cause_name(ExitCause cause) {
  switch (cause) {
    case ExitCause::kNone: return "none";
    case ExitCause::kTimeout: return "timeout";
    case ExitCause::kSignal: return "signal";
    case ExitCause::kMaxRequests: return "max_requests";
    case ExitCause::kMaxMemory: return "max_memory";
    case ExitCause::kCrash: return "crash";
    case ExitCause::kStopped: return "stopped";
  }
  return "unknown";
}

SharedCounters::SharedCounters() {
  void* mem = ::mmap(nullptr, sizeof(WorkerCounters), PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    throw std::runtime_error(std::string("metrics counters mmap: ") + std::strerror(errno));
  }
  block_ = new (mem) WorkerCounters{};
}

SharedCounters::~SharedCounters() {
  if (block_ != nullptr) {
    block_->~WorkerCounters();
    ::munmap(block_, sizeof(WorkerCounters));
  }
}

DurationBuckets::DurationBuckets(const std::vector<double>& bounds_s) {
  count_ = std::min(bounds_s.size(), kMaxBuckets);
  for (size_t i = 0; i < count_; ++i) {
    bounds_us_[i] = static_cast<uint64_t>(std::llround(bounds_s[i] * 1e6));
  }
}

void Totals::add(const WorkerCounters& c) {
  for (size_t m = 0; m < kMethodCount; ++m) {
    for (size_t s = 0; s < kStatusClassCount; ++s) requests[m][s] += c.requests[m][s].get();
  }
  for (size_t s = 0; s < kStatusClassCount; ++s) static_requests[s] += c.static_requests[s].get();
  for (size_t b = 0; b <= kMaxBuckets; ++b) duration_buckets[b] += c.duration_buckets[b].get();
  duration_sum_us += c.duration_sum_us.get();
  requests_started += c.requests_started.get();
  requests_abandoned += c.requests_abandoned.get();
  connections_accepted += c.connections_accepted.get();
  connections_closed += c.connections_closed.get();
  connections_rejected += c.connections_rejected.get();
  bytes_in += c.bytes_in.get();
  bytes_out += c.bytes_out.get();
  for (size_t e = 0; e < kParseErrorCount; ++e) parse_errors[e] += c.parse_errors[e].get();
  app_exceptions += c.app_exceptions.get();
  spooled_bytes += c.spooled_bytes.get();
}

void Totals::add(const Totals& t) {
  for (size_t m = 0; m < kMethodCount; ++m) {
    for (size_t s = 0; s < kStatusClassCount; ++s) requests[m][s] += t.requests[m][s];
  }
  for (size_t s = 0; s < kStatusClassCount; ++s) static_requests[s] += t.static_requests[s];
  for (size_t b = 0; b <= kMaxBuckets; ++b) duration_buckets[b] += t.duration_buckets[b];
  duration_sum_us += t.duration_sum_us;
  requests_started += t.requests_started;
  requests_abandoned += t.requests_abandoned;
  connections_accepted += t.connections_accepted;
  connections_closed += t.connections_closed;
  connections_rejected += t.connections_rejected;
  bytes_in += t.bytes_in;
  bytes_out += t.bytes_out;
  for (size_t e = 0; e < kParseErrorCount; ++e) parse_errors[e] += t.parse_errors[e];
  app_exceptions += t.app_exceptions;
  spooled_bytes += t.spooled_bytes;
}

uint64_t Totals::request_count() const {
  uint64_t n = 0;
  for (const auto& row : requests) {
    for (uint64_t v : row) n += v;
  }
  return n;
}

}  // namespace cppgunicorn::metrics
