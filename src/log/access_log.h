// The access log: gunicorn's access_log_format (Python %-style with atoms
// such as %(h)s), compiled once and rendered per finished request.
#pragma once

#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "log/logger.h"
#include "log/statsd.h"
#include "log/syslog.h"

namespace cppgunicorn::log {

inline constexpr std::string_view kDefaultAccessLogFormat =
    R"(%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s")";

// What one finished request tells the access log. Views point into the
// connection's request and response state and live only during `log()`.
struct AccessRecord {
  std::string_view remote_addr;
  std::string_view method;
  std::string_view raw_uri;      // request target as sent
  std::string_view path;         // PATH_INFO-like, undecoded, without query
  std::string_view query;
  std::string_view protocol;     // "HTTP/1.1"
  int status = 0;
  std::string_view status_line;  // "200 OK"
  uint64_t response_bytes = 0;   // body bytes sent
  std::time_t started = 0;
  double duration_s = 0;
  const std::vector<std::pair<std::string, std::string>>* request_headers = nullptr;
  const std::vector<std::pair<std::string, std::string>>* response_headers = nullptr;
  // The environ values the format needs (environ_keys()), as text; absent
  // ones are left out. PATH_INFO, when present, is what %(U)s shows.
  const std::vector<std::pair<std::string, std::string>>* environ_values = nullptr;
  // Answered from a static mount (--static-map), without the app: the
  // %(x)s atom says "static" (else "app").
  bool static_file = false;
};

// Where access lines go instead of the file when Python logging is
// configured (logconfig*): the gunicorn.access logger.
using AccessSink = void (*)(std::string_view line);
void set_access_sink(AccessSink sink);
AccessSink access_sink();

class AccessLog {
 public:
  // Throws std::invalid_argument naming the bad atom.
  void set_format(std::string_view format);
  LogFile& file() { return file_; }
  // A request is recorded when there is a log file or StatsD metrics.
  bool enabled() const {
    return file_.enabled() || statsd().enabled() || syslog_sink().access_enabled() ||
           access_sink() != nullptr;
  }
  void log(const AccessRecord& record);
  // The environ keys the format reads ({name}e atoms, PATH_INFO for U): the
  // worker looks them up only when this is not empty.
  const std::vector<std::string>& environ_keys() const { return environ_keys_; }
  std::string render(const AccessRecord& record) const;

 private:
  struct Segment {
    std::string literal;  // emitted as is when `atom` is empty
    std::string atom;     // "h", "{user-agent}i", ...
  };
  std::vector<Segment> segments_;
  std::vector<std::string> environ_keys_;
  LogFile file_;
};

}  // namespace cppgunicorn::log
