#include "http/response_head.h"

#include <cstdio>
#include <stdexcept>

namespace cppgunicorn::http {

namespace {

// RFC 9110 section 7.6.1: hop-by-hop fields are the server's to write.
bool is_hop_by_hop(std::string_view name) {
  static constexpr std::string_view kNames[] = {
      "connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
      "te",         "trailers",   "transfer-encoding",  "upgrade"};
  for (std::string_view n : kNames) {
    if (iequals(name, n)) return true;
  }
  return false;
}

bool token_list_has(std::string_view value, std::string_view token) {
  size_t start = 0;
  while (start <= value.size()) {
    size_t comma = value.find(',', start);
    if (comma == std::string_view::npos) comma = value.size();
    std::string_view item = value.substr(start, comma - start);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (iequals(item, token)) return true;
    start = comma + 1;
  }
  return false;
}

}  // namespace

int parse_status_code(std::string_view status) {
  if (status.size() < 3) return 0;
  int code = 0;
  for (int i = 0; i < 3; ++i) {
    char c = status[i];
    if (c < '0' || c > '9') return 0;
    code = code * 10 + (c - '0');
  }
  if (status.size() > 3 && status[3] != ' ') return 0;
  return code < 100 ? 0 : code;
}

ResponsePlan plan_response(const Request& request, std::string_view status,
                           const HeaderList& app_headers, bool request_is_head,
                           const uint64_t* known_length, bool want_close) {
  ResponsePlan plan;
  plan.status_code = parse_status_code(status);
  plan.keep_alive = request.keep_alive && !request.upgrade && !want_close;
  for (const auto& [name, value] : app_headers) {
    if (iequals(name, "content-length")) {
      uint64_t n = 0;
      if (value.empty()) throw std::invalid_argument("empty Content-Length header");
      for (char c : value) {
        if (c < '0' || c > '9') throw std::invalid_argument("bad Content-Length header: " + value);
        n = n * 10 + static_cast<uint64_t>(c - '0');
      }
      plan.has_length = true;
      plan.length = n;
    } else if (iequals(name, "connection") && token_list_has(value, "close")) {
      plan.keep_alive = false;
    }
  }
  int code = plan.status_code;
  bool no_body_status = (code >= 100 && code < 200) || code == 204 || code == 304;
  if (no_body_status) {
    plan.framing = Framing::kNoBody;
    plan.body_allowed = false;
    plan.has_length = plan.has_length && code == 304;
    return plan;
  }
  if (!plan.has_length && known_length != nullptr) {
    plan.has_length = true;
    plan.length = *known_length;
  }
  if (request_is_head) {
    plan.framing = Framing::kNoBody;
    plan.body_allowed = false;
    return plan;
  }
  if (plan.has_length) {
    plan.framing = Framing::kContentLength;
  } else if (request.http_minor >= 1) {
    plan.framing = Framing::kChunked;
  } else {
    plan.framing = Framing::kCloseDelimited;
    plan.keep_alive = false;
  }
  return plan;
}

void append_response_head(std::string& out, const Request& request, std::string_view status,
                          const HeaderList& app_headers, const ResponsePlan& plan,
                          std::string_view date) {
  // We answer in the version we speak (RFC 9112 section 2.3).
  out += request.http_minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ";
  out += status;
  out += "\r\n";
  bool has_date = false;
  bool has_server = false;
  for (const auto& [name, value] : app_headers) {
    if (is_hop_by_hop(name)) continue;
    if (iequals(name, "content-length") && !plan.has_length) continue;
    if (iequals(name, "date")) has_date = true;
    if (iequals(name, "server")) has_server = true;
    out += name;
    out += ": ";
    out += value;
    out += "\r\n";
  }
  if (!has_server) {
    out += "Server: ";
    out += kServerName;
    out += "\r\n";
  }
  if (!has_date) {
    out += "Date: ";
    out += date;
    out += "\r\n";
  }
  bool app_gave_length = false;
  for (const auto& [name, value] : app_headers) {
    if (iequals(name, "content-length")) app_gave_length = true;
  }
  if (plan.has_length && !app_gave_length) {
    out += "Content-Length: ";
    out += std::to_string(plan.length);
    out += "\r\n";
  }
  if (plan.framing == Framing::kChunked) out += "Transfer-Encoding: chunked\r\n";
  if (!plan.keep_alive) {
    out += "Connection: close\r\n";
  } else if (request.http_minor == 0) {
    out += "Connection: keep-alive\r\n";
  }
  out += "\r\n";
}

size_t format_chunk_header(uint64_t size, char* out) {
  int n = std::snprintf(out, 20, "%llx\r\n", static_cast<unsigned long long>(size));
  return static_cast<size_t>(n);
}

}  // namespace cppgunicorn::http
