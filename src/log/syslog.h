// --log-syslog: error (and, unless --disable-redirect-access-to-syslog,
// access) lines sent as gunicorn's logging.handlers.SysLogHandler does:
// "<PRI>gunicorn.PREFIX.error: [PID] message\0" over udp://, tcp:// or a
// unix:// socket.
#pragma once

#include <string>
#include <string_view>

#include "log/logger.h"

namespace cppgunicorn::log {

class Syslog {
 public:
  Syslog() = default;
  ~Syslog();
  Syslog(const Syslog&) = delete;
  Syslog& operator=(const Syslog&) = delete;

  // `address` as gunicorn's syslog_addr; `prefix` the program name part.
  // Throws std::runtime_error naming what is wrong.
  void open(const std::string& address, const std::string& facility, const std::string& prefix,
            bool access_too);
  bool enabled() const { return fd_ >= 0; }
  bool access_enabled() const { return fd_ >= 0 && access_too_; }

  void error_line(Level level, std::string_view message);
  void access_line(std::string_view line);

 private:
  void send(int priority, std::string_view channel, std::string_view message);
  int fd_ = -1;
  int facility_ = 1;
  bool stream_ = false;
  bool access_too_ = true;
  std::string prefix_;
};

Syslog& syslog_sink();

// gunicorn's facility names (user, daemon, local0...); -1 for others.
int syslog_facility_code(std::string_view name);
// udp://HOST:PORT, tcp://HOST:PORT, unix://PATH[#dgram|#stream].
bool valid_syslog_address(const std::string& address);

}  // namespace cppgunicorn::log
