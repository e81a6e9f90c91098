#include "log/access_log.h"

#include <unistd.h>

#include <cstdio>
#include <stdexcept>

#include "base/clock.h"

namespace cppgunicorn::log {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

std::string_view find_header(
    const std::vector<std::pair<std::string, std::string>>* headers, std::string_view name) {
  if (headers == nullptr) return {};
  for (const auto& [k, v] : *headers) {
    if (iequals(k, name)) return v;
  }
  return {};
}

// Base64 decoding for the basic-auth user of atom %(u)s.
std::string basic_auth_user(std::string_view authorization) {
  constexpr std::string_view kBasic = "Basic ";
  if (authorization.size() <= kBasic.size() || !iequals(authorization.substr(0, 6), kBasic))
    return {};
  std::string_view in = authorization.substr(kBasic.size());
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '+') v = 62;
    else if (c == '/') v = 63;
    else break;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  auto colon = out.find(':');
  return colon == std::string::npos ? std::string() : out.substr(0, colon);
}

// gunicorn's SafeAtoms: a double quote in a value is escaped, so a quoted
// field cannot be closed by what a client sent.
void append_escaped(std::string& out, std::string_view v) {
  for (char c : v) {
    if (c == '"') out += '\\';
    out += c;
  }
}

std::string or_dash(std::string_view v) {
  if (v.empty()) return "-";
  std::string out;
  append_escaped(out, v);
  return out;
}

std::string escaped(std::string_view v) {
  std::string out;
  append_escaped(out, v);
  return out;
}

// The last value wins, as gunicorn builds a dict from the header list.
std::string_view find_last_header(
    const std::vector<std::pair<std::string, std::string>>* headers, std::string_view name) {
  if (headers == nullptr) return {};
  std::string_view found;
  for (const auto& [k, v] : *headers) {
    if (iequals(k, name)) found = v;
  }
  return found;
}

const std::string* find_environ(const std::vector<std::pair<std::string, std::string>>* values,
                                std::string_view name) {
  if (values == nullptr) return nullptr;
  for (const auto& [k, v] : *values) {
    if (iequals(k, name)) return &v;
  }
  return nullptr;
}

}  // namespace

void AccessLog::set_format(std::string_view format) {
  segments_.clear();
  environ_keys_.clear();
  std::string literal;
  size_t i = 0;
  while (i < format.size()) {
    if (format[i] == '%' && i + 1 < format.size() && format[i + 1] == '%') {
      literal += '%';
      i += 2;
      continue;
    }
    if (format[i] == '%' && i + 1 < format.size() && format[i + 1] == '(') {
      size_t close = format.find(')', i + 2);
      if (close == std::string_view::npos || close + 1 >= format.size() ||
          format[close + 1] != 's') {
        throw std::invalid_argument("access_log_format: malformed atom at offset " +
                                    std::to_string(i));
      }
      if (!literal.empty()) segments_.push_back({std::move(literal), {}});
      literal.clear();
      segments_.push_back({{}, std::string(format.substr(i + 2, close - i - 2))});
      i = close + 2;
      continue;
    }
    literal += format[i++];
  }
  if (!literal.empty()) segments_.push_back({std::move(literal), {}});
  for (const Segment& s : segments_) {
    const std::string& a = s.atom;
    if (a == "U") environ_keys_.push_back("PATH_INFO");
    if (a.size() > 3 && a.front() == '{' && a[a.size() - 2] == '}' && a.back() == 'e') {
      environ_keys_.push_back(a.substr(1, a.size() - 3));
    }
  }
}

std::string AccessLog::render(const AccessRecord& r) const {
  std::string out;
  out.reserve(160);
  for (const Segment& s : segments_) {
    if (s.atom.empty()) {
      out += s.literal;
      continue;
    }
    const std::string& a = s.atom;
    if (a == "h") out += or_dash(r.remote_addr);
    else if (a == "l") out += '-';
    else if (a == "u") out += or_dash(basic_auth_user(find_header(r.request_headers, "authorization")));
    else if (a == "t") out += base::access_log_time(r.started);
    else if (a == "r") {
      out += r.method; out += ' '; append_escaped(out, r.raw_uri); out += ' '; out += r.protocol;
    }
    else if (a == "m") out += r.method;
    else if (a == "U") {
      const std::string* path_info = find_environ(r.environ_values, "PATH_INFO");
      out += escaped(path_info ? std::string_view(*path_info) : r.path);
    }
    else if (a == "q") out += escaped(r.query);
    else if (a == "H") out += r.protocol;
    else if (a == "s") out += std::to_string(r.status);
    else if (a == "B") out += std::to_string(r.response_bytes);
    // gunicorn prints the bytes sent, 0 included ("-" only when unknown).
    else if (a == "b") out += std::to_string(r.response_bytes);
    else if (a == "f") out += or_dash(find_header(r.request_headers, "referer"));
    else if (a == "a") out += or_dash(find_header(r.request_headers, "user-agent"));
    else if (a == "T") out += std::to_string(static_cast<long long>(r.duration_s));
    else if (a == "D") out += std::to_string(static_cast<long long>(r.duration_s * 1e6));
    else if (a == "M") out += std::to_string(static_cast<long long>(r.duration_s * 1e3));
    else if (a == "L") {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.6f", r.duration_s);
      out += buf;
    }
    else if (a == "x") out += r.static_file ? "static" : "app";
    else if (a == "p") { out += '<'; out += std::to_string(::getpid()); out += '>'; }
    else if (a.size() > 3 && a.front() == '{' && a[a.size() - 2] == '}') {
      std::string_view name(a.data() + 1, a.size() - 3);
      char kind = a.back();
      if (kind == 'i') out += or_dash(find_last_header(r.request_headers, name));
      else if (kind == 'o') out += or_dash(find_last_header(r.response_headers, name));
      else if (kind == 'e') {
        const std::string* v = find_environ(r.environ_values, name);
        out += v ? escaped(*v) : std::string("-");
      }
      else out += '-';
    } else {
      out += '-';
    }
  }
  out += '\n';
  return out;
}

void AccessLog::log(const AccessRecord& record) {
  statsd().request(record.status, record.duration_s, record.static_file);
  bool to_syslog = syslog_sink().access_enabled();
  AccessSink sink = access_sink();
  if (!file_.enabled() && !to_syslog && sink == nullptr) return;
  std::string line = render(record);
  if (to_syslog) syslog_sink().access_line(line);
  if (sink != nullptr) {
    sink(std::string_view(line).substr(0, line.size() - 1));  // without the newline
    return;
  }
  file_.write(line);
}

namespace {
AccessSink g_access_sink = nullptr;
}  // namespace

void set_access_sink(AccessSink sink) { g_access_sink = sink; }
AccessSink access_sink() { return g_access_sink; }

}  // namespace cppgunicorn::log
