#include "metrics/exposition.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <string_view>

namespace cppgunicorn::metrics {

namespace {

constexpr std::string_view kStatusClassLabels[kStatusClassCount] = {"1xx", "2xx", "3xx",
                                                                    "4xx", "5xx", "other"};

class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}

  // HELP and TYPE, once per family.
  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP cppgunicorn_";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE cppgunicorn_";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  // One sample; `labels` is already "a=\"b\",c=\"d\"" (or empty).
  void sample(std::string_view name, std::string_view labels, uint64_t value) {
    char text[24];
    std::snprintf(text, sizeof text, "%" PRIu64, value);
    line(name, labels, text);
  }
  void sample_signed(std::string_view name, std::string_view labels, int64_t value) {
    char text[24];
    std::snprintf(text, sizeof text, "%" PRId64, value);
    line(name, labels, text);
  }
  void sample_double(std::string_view name, std::string_view labels, double value) {
    line(name, labels, number(value));
  }
  // A counter or gauge with no labels: its family and its one sample.
  void single(std::string_view name, std::string_view type, std::string_view help, uint64_t value) {
    family(name, type, help);
    sample(name, {}, value);
  }

  static std::string number(double value) {
    char text[32];
    std::snprintf(text, sizeof text, "%.9g", value);
    return text;
  }

 private:
  void line(std::string_view name, std::string_view labels, std::string_view value) {
    out_ += "cppgunicorn_";
    out_ += name;
    if (!labels.empty()) {
      out_ += '{';
      out_ += labels;
      out_ += '}';
    }
    out_ += ' ';
    out_ += value;
    out_ += '\n';
  }

  std::string& out_;
};

std::string label(std::string_view name, std::string_view value) {
  return std::string(name) + "=\"" + escape_label(value) + "\"";
}

}  // namespace

std::string escape_label(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string render_prometheus(const Snapshot& s) {
  std::string out;
  out.reserve(8192);
  Writer w(out);
  const Totals& t = s.totals;

  w.family("requests_total", "counter",
           "Requests answered, by method and status class (one per access-log line).");
  for (size_t m = 0; m < kMethodCount; ++m) {
    std::string_view method = m < kMethodNames.size() ? kMethodNames[m] : "other";
    for (size_t c = 0; c < kStatusClassCount; ++c) {
      if (t.requests[m][c] == 0) continue;
      w.sample("requests_total", label("method", method) + "," + label("status", kStatusClassLabels[c]),
               t.requests[m][c]);
    }
  }

  w.family("static_requests_total", "counter",
           "Of requests_total, those a --static-map mount answered, by status class.");
  for (size_t c = 0; c < kStatusClassCount; ++c) {
    if (t.static_requests[c] == 0) continue;
    w.sample("static_requests_total", label("status", kStatusClassLabels[c]), t.static_requests[c]);
  }

  w.family("request_duration_seconds", "histogram",
           "Time from a request's complete head to the end of its response.");
  uint64_t cumulative = 0;
  for (size_t b = 0; b < s.bucket_bounds.size() && b < kMaxBuckets; ++b) {
    cumulative += t.duration_buckets[b];
    w.sample("request_duration_seconds_bucket", label("le", Writer::number(s.bucket_bounds[b])),
             cumulative);
  }
  cumulative += t.duration_buckets[std::min(s.bucket_bounds.size(), kMaxBuckets)];
  w.sample("request_duration_seconds_bucket", "le=\"+Inf\"", cumulative);
  w.sample_double("request_duration_seconds_sum", {}, static_cast<double>(t.duration_sum_us) / 1e6);
  w.sample("request_duration_seconds_count", {}, cumulative);

  w.family("requests_in_flight", "gauge",
           "Requests handed to the app (or a static mount) and not answered yet.");
  w.sample_signed("requests_in_flight", {}, s.in_flight);
  w.single("requests_abandoned_total", "counter",
           "Requests whose connection closed (or was refused) before they were answered.",
           t.requests_abandoned);

  w.family("connections_open", "gauge", "Client connections open in the workers.");
  w.sample_signed("connections_open", {}, s.open_connections);
  w.single("connections_accepted_total", "counter", "Client connections accepted.",
           t.connections_accepted);
  w.single("connections_rejected_total", "counter",
           "Times a worker at --worker-connections left a new connection in the listen queue.",
           t.connections_rejected);
  w.single("received_bytes_total", "counter", "Bytes read from client sockets.", t.bytes_in);
  w.single("sent_bytes_total", "counter", "Bytes written to client sockets.", t.bytes_out);

  w.family("parse_errors_total", "counter",
           "Requests refused by the HTTP parser or its limits, by reason (then the connection closes).");
  for (size_t e = 1; e < kParseErrorCount; ++e) {
    if (t.parse_errors[e] == 0) continue;
    w.sample("parse_errors_total", label("reason", parse_error_name(e)), t.parse_errors[e]);
  }
  w.single("app_errors_total", "counter",
           "Requests where the app raised or returned an invalid response (a 500, or a cut body).",
           t.app_exceptions);
  w.single("spooled_bytes_total", "counter", "Request body bytes spooled to temporary files.",
           t.spooled_bytes);

  w.single("worker_boots_total", "counter", "Workers forked.", s.worker_boots);
  w.family("worker_exits_total", "counter", "Workers that ended, by cause.");
  for (size_t c = 1; c < kExitCauseCount; ++c) {
    w.sample("worker_exits_total", label("cause", exit_cause_name(static_cast<ExitCause>(c))),
             s.worker_exits[c]);
  }
  w.single("worker_restarts_total", "counter",
           "Workers replaced after an exit the master did not ask for to have fewer workers "
           "(timeout, signal, max_requests, max_memory, crash).",
           s.worker_restarts);
  w.single("workers", "gauge", "Worker processes alive.", static_cast<uint64_t>(s.workers_alive));
  w.single("workers_serving", "gauge", "Workers that have booted and accept connections.",
           static_cast<uint64_t>(s.workers_serving));
  w.single("workers_target", "gauge", "Workers the master keeps (--workers, TTIN, TTOU).",
           static_cast<uint64_t>(s.workers_target));

  w.family("worker_cpu_seconds_total", "counter", "CPU time (user + system) of each live worker.");
  for (const WorkerSample& ws : s.workers) {
    w.sample_double("worker_cpu_seconds_total", label("pid", std::to_string(ws.pid)), ws.cpu_seconds);
  }
  w.family("worker_resident_memory_bytes", "gauge", "Resident memory of each live worker.");
  for (const WorkerSample& ws : s.workers) {
    w.sample("worker_resident_memory_bytes", label("pid", std::to_string(ws.pid)), ws.rss_bytes);
  }

  w.family("listen_queue", "gauge",
           "Connections waiting in a TCP listener's accept queue (TCP_INFO tcpi_unacked).");
  for (const ListenerSample& l : s.listeners) {
    w.sample("listen_queue", label("listener", l.name), l.queued);
  }
  w.family("listen_queue_max", "gauge", "The accept queue's limit (TCP_INFO tcpi_sacked).");
  for (const ListenerSample& l : s.listeners) {
    w.sample("listen_queue_max", label("listener", l.name), l.max);
  }
  return out;
}

}  // namespace cppgunicorn::metrics
