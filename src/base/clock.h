// Wall-clock text that every response and log line needs, cached per second.
#pragma once

#include <ctime>
#include <string>
#include <string_view>

namespace cppgunicorn::base {

// The IMF-fixdate of RFC 9110 section 5.6.7 for the `Date` response header,
// rebuilt at most once a second: formatting a date per request is measurable.
class HttpDate {
 public:
  std::string_view now();

 private:
  std::time_t second_ = 0;
  std::string text_;
};

// "[25/Nov/2026:04:11:26 +0000]"-style local time, as gunicorn's access log
// atom %(t)s prints it.
std::string access_log_time(std::time_t when);

// "2026-11-25 04:11:26 +0000", the error log's time stamp.
std::string error_log_time(std::time_t when);

}  // namespace cppgunicorn::base
