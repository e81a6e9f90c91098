// A StatsD client with gunicorn's metric names (gunicorn/instrument/
// statsd.py): gunicorn.requests, gunicorn.request.status.NNN,
// gunicorn.request.duration (ms), gunicorn.workers (gauge) and
// gunicorn.log.{warning,error,critical}. Datagrams are sent without
// blocking and never fail a request; DogStatsD tags are appended as |#tags.
#pragma once

#include <string>
#include <string_view>

namespace cppgunicorn::log {

class Statsd {
 public:
  Statsd() = default;
  ~Statsd();
  Statsd(const Statsd&) = delete;
  Statsd& operator=(const Statsd&) = delete;

  // `address`: "host:port" (port 8125 if omitted), "[v6]:port" or
  // "unix:/path". Throws std::runtime_error naming the address.
  void open(const std::string& address, const std::string& prefix, const std::string& tags);
  bool enabled() const { return fd_ >= 0; }

  void gauge(std::string_view name, long value);
  void increment(std::string_view name, long value);
  void timer(std::string_view name, double milliseconds);
  // One finished request; a static one (--static-map) also counts in
  // cppgunicorn.requests.static.
  void request(int status, double duration_s, bool static_file = false);

 private:
  void send(const std::string& metric);
  int fd_ = -1;
  std::string prefix_;
  std::string tags_;
};

// The process's client (disabled unless --statsd-host is given); workers
// inherit it across fork.
Statsd& statsd();

// gunicorn's statsd_host check: "host:port", "[v6]:port", "host" or
// "unix:PATH". Returns false for anything else.
bool valid_statsd_address(const std::string& address);

}  // namespace cppgunicorn::log
