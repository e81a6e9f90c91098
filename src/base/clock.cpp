#include "base/clock.h"

namespace cppgunicorn::base {

namespace {
std::string format_time(std::time_t when, const char* fmt, bool utc) {
  std::tm parts{};
  if (utc) {
    gmtime_r(&when, &parts);
  } else {
    localtime_r(&when, &parts);
  }
  char out[64];
  size_t n = std::strftime(out, sizeof out, fmt, &parts);
  return std::string(out, n);
}
}  // namespace

std::string_view HttpDate::now() {
  std::time_t t = std::time(nullptr);
  if (t != second_ || text_.empty()) {
    second_ = t;
    // strftime's %a/%b follow the C locale, which is what HTTP wants; the
    // embedded interpreter never calls setlocale(LC_TIME) for us.
    text_ = format_time(t, "%a, %d %b %Y %H:%M:%S GMT", true);
  }
  return text_;
}

std::string access_log_time(std::time_t when) {
  return format_time(when, "[%d/%b/%Y:%H:%M:%S %z]", false);
}

std::string error_log_time(std::time_t when) {
  return format_time(when, "%Y-%m-%d %H:%M:%S %z", false);
}

}  // namespace cppgunicorn::base
