#include "static_files/http_date.h"

#include <cstdio>

namespace cppgunicorn::static_files {

namespace {

constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

int month_of(std::string_view name) {
  for (int i = 0; i < 12; ++i) {
    if (name == kMonths[i]) return i;
  }
  return -1;
}

bool digits(std::string_view s, size_t at, size_t n, int* out) {
  if (at + n > s.size()) return false;
  int v = 0;
  for (size_t i = at; i < at + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

// "HH:MM:SS" at `at`.
bool clock_at(std::string_view s, size_t at, std::tm* tm) {
  return digits(s, at, 2, &tm->tm_hour) && s.size() > at + 2 && s[at + 2] == ':' &&
         digits(s, at + 3, 2, &tm->tm_min) && s.size() > at + 5 && s[at + 5] == ':' &&
         digits(s, at + 6, 2, &tm->tm_sec);
}

std::optional<std::time_t> to_time(std::tm& tm) {
  if (tm.tm_mon < 0 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
      tm.tm_sec > 60) {
    return std::nullopt;
  }
  return ::timegm(&tm);
}

}  // namespace

std::string format_http_date(std::time_t t) {
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[40];
  int n = std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[tm.tm_wday],
                        tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                        tm.tm_sec);
  return std::string(buf, static_cast<size_t>(n));
}

std::optional<std::time_t> parse_http_date(std::string_view s) {
  std::tm tm{};
  size_t comma = s.find(',');
  if (comma == 3) {
    // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
    if (s.size() != 29 || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
        s.substr(25) != " GMT") {
      return std::nullopt;
    }
    tm.tm_mon = month_of(s.substr(8, 3));
    if (!digits(s, 5, 2, &tm.tm_mday) || !digits(s, 12, 4, &tm.tm_year) || !clock_at(s, 17, &tm)) {
      return std::nullopt;
    }
    tm.tm_year -= 1900;
    return to_time(tm);
  }
  if (comma != std::string_view::npos) {
    // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"; a two-digit year is in
    // the past 50 years (RFC 9110 section 5.6.7), taken here as 1970-2069.
    std::string_view rest = s.substr(comma + 1);
    if (rest.size() != 23 || rest[0] != ' ' || rest[3] != '-' || rest[7] != '-' || rest[10] != ' ' ||
        rest.substr(19) != " GMT") {
      return std::nullopt;
    }
    tm.tm_mon = month_of(rest.substr(4, 3));
    int yy = 0;
    if (!digits(rest, 1, 2, &tm.tm_mday) || !digits(rest, 8, 2, &yy) || !clock_at(rest, 11, &tm)) {
      return std::nullopt;
    }
    tm.tm_year = yy < 70 ? yy + 100 : yy;
    return to_time(tm);
  }
  // asctime: "Sun Nov  6 08:49:37 1994"
  if (s.size() != 24 || s[3] != ' ' || s[7] != ' ' || s[10] != ' ' || s[19] != ' ') return std::nullopt;
  tm.tm_mon = month_of(s.substr(4, 3));
  std::string day(s.substr(8, 2));
  if (day[0] == ' ') day[0] = '0';
  if (!digits(day, 0, 2, &tm.tm_mday) || !clock_at(s, 11, &tm) || !digits(s, 20, 4, &tm.tm_year)) {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  return to_time(tm);
}

}  // namespace cppgunicorn::static_files
