// The master's side of /metrics, /healthz and --max-worker-memory: what it
// adds to a worker's life (a counter block mapped before the fork, its
// counts folded into the retired totals when it is reaped, the cause of
// its exit) and what a scrape reads. The HTTP side is MetricsServer.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <algorithm>

#include "log/logger.h"
#include "master/arbiter.h"
#include "master/process_usage.h"
#include "metrics/exposition.h"

namespace cppgunicorn::master {

namespace {

// The listen queue of a TCP listener, as the kernel reports it for a
// socket in LISTEN state: tcpi_unacked is the accept queue's length and
// tcpi_sacked its limit (net/ipv4/tcp.c, tcp_get_info). Unix sockets have
// no such report; they are left out.
bool listen_queue(int fd, metrics::ListenerSample* out) {
  tcp_info info{};
  socklen_t len = sizeof info;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return false;
  out->queued = info.tcpi_unacked;
  out->max = info.tcpi_sacked;
  return true;
}

}  // namespace

void Arbiter::start_metrics_server() {
  if (config_.metrics_bind.empty()) return;
  metrics_server_ = std::make_unique<MetricsServer>(
      config_.metrics_bind, [this](std::string_view path) { return serve_metrics(path); });
  log::error_log().info("Metrics at: http://" + metrics_server_->address() + "/metrics");
}

bool Arbiter::any_worker_serving() const {
  if (stopping_ || halt_code_ >= 0) return false;
  for (const auto& [pid, slot] : workers_) {
    if (!slot.retiring && slot.heartbeat->ready()) return true;
  }
  return false;
}

MetricsResponse Arbiter::serve_metrics(std::string_view path) {
  MetricsResponse r;
  if (path == "/metrics") {
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = metrics::render_prometheus(metrics_snapshot());
  } else if (path == "/healthz") {
    // Answered by the master from what it knows: the app is not asked.
    if (any_worker_serving()) {
      r.body = "ok\n";
    } else {
      r.status = 503;
      r.body = stopping_ ? "stopping\n" : "no worker is serving\n";
    }
  } else {
    r.status = 404;
    r.body = "not found: try /metrics or /healthz\n";
  }
  return r;
}

metrics::Snapshot Arbiter::metrics_snapshot() const {
  metrics::Snapshot s;
  s.totals = retired_;
  s.bucket_bounds = config_.metrics_buckets;
  s.worker_boots = worker_boots_;
  std::copy(std::begin(worker_exits_), std::end(worker_exits_), std::begin(s.worker_exits));
  s.worker_restarts = worker_restarts_;
  s.workers_target = target_workers_;
  for (const auto& [pid, slot] : workers_) {
    ++s.workers_alive;
    if (!slot.retiring && slot.heartbeat->ready()) ++s.workers_serving;
    metrics::Totals live;
    live.add(slot.counters->get());
    s.totals.add(live);
    // Answered before started were read (Totals::add's order), so this is
    // never below the truth; a request abandoned since may make it so.
    s.in_flight += std::max<int64_t>(
        0, static_cast<int64_t>(live.requests_started) -
               static_cast<int64_t>(live.request_count() + live.requests_abandoned));
    s.open_connections += std::max<int64_t>(
        0, static_cast<int64_t>(live.connections_accepted) -
               static_cast<int64_t>(live.connections_closed));
    if (std::optional<ProcessUsage> usage = read_process_usage(pid)) {
      s.workers.push_back({pid, slot.age, usage->cpu_seconds, usage->rss_bytes});
    }
  }
  std::sort(s.workers.begin(), s.workers.end(),
            [](const metrics::WorkerSample& a, const metrics::WorkerSample& b) { return a.age < b.age; });
  for (const net::ListenSocket& l : listeners_) {
    if (l.is_unix) continue;
    metrics::ListenerSample sample;
    sample.name = l.display.rfind("http://", 0) == 0 ? l.display.substr(7) : l.display;
    if (listen_queue(l.fd, &sample)) s.listeners.push_back(std::move(sample));
  }
  return s;
}

metrics::ExitCause Arbiter::exit_cause(const WorkerSlot& slot, int status) const {
  using metrics::ExitCause;
  if (slot.retire_cause != ExitCause::kNone) return slot.retire_cause;  // max-memory
  if (slot.aborted_at_ms != 0) return ExitCause::kTimeout;
  if (WIFSIGNALED(status)) {
    // SIGTERM (or SIGQUIT, SIGKILL while stopping) from the master ends a
    // worker it retired; any other is someone else's.
    return slot.retiring || stopping_ ? ExitCause::kStopped : ExitCause::kSignal;
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) != 0) return ExitCause::kCrash;
  auto own = static_cast<ExitCause>(slot.counters->get().exit_cause.load(std::memory_order_relaxed));
  return own == ExitCause::kMaxRequests ? own : ExitCause::kStopped;
}

void Arbiter::record_worker_exit(const WorkerSlot& slot, int status) {
  // Its counts go to the retired totals before its block is unmapped: what
  // a killed worker counted is not lost.
  retired_.add(slot.counters->get());
  metrics::ExitCause cause = exit_cause(slot, status);
  ++worker_exits_[static_cast<size_t>(cause)];
  if (cause != metrics::ExitCause::kStopped && !stopping_) ++worker_restarts_;
}

void Arbiter::check_worker_memory() {
  // The master checks, at its tick (twice a second): a worker pays
  // nothing for it on its request path, and one stuck in a long request
  // or in C code is seen all the same. Retired as TTOU and HUP retire: a
  // successor is forked at once (it no longer counts towards the target)
  // while this one finishes its requests in flight on SIGTERM.
  if (config_.max_worker_memory <= 0 || stopping_) return;
  uint64_t limit = static_cast<uint64_t>(config_.max_worker_memory) << 20;
  for (auto& [pid, slot] : workers_) {
    if (slot.retiring) continue;
    std::optional<uint64_t> rss = read_resident_bytes(pid);
    if (!rss || *rss <= limit) continue;
    log::error_log().warning("Worker (pid:" + std::to_string(pid) + ") uses " +
                             std::to_string(*rss >> 20) + " MiB, past max_worker_memory " +
                             std::to_string(config_.max_worker_memory) +
                             " MiB: restarting it after its current requests");
    slot.retiring = true;
    slot.outgoing = false;
    slot.retire_cause = metrics::ExitCause::kMaxMemory;
    ::kill(pid, SIGTERM);
  }
}

}  // namespace cppgunicorn::master
