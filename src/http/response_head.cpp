#include "http/response_head.h"

#include <charconv>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace cppgunicorn::http {

namespace {

// The response fields the server treats specially, found with one length
// switch and at most two comparisons per header.
enum class Field { kOther, kHopByHop, kConnection, kContentLength, kDate, kServer };

// `name` equals `lower` (same size; lowercase letters and '-') whatever
// the case of its letters, 8 bytes at a time: bit 0x40 marks the letters
// of `lower`, whose 0x20 bit is the one case changes.
bool is(std::string_view name, std::string_view lower) {
  size_t i = 0;
  for (; i + 8 <= lower.size(); i += 8) {
    uint64_t a, b;
    std::memcpy(&a, name.data() + i, 8);
    std::memcpy(&b, lower.data() + i, 8);
    if ((a | ((b & 0x4040404040404040ULL) >> 1)) != b) return false;
  }
  for (; i < lower.size(); ++i) {
    unsigned char a = static_cast<unsigned char>(name[i]);
    unsigned char b = static_cast<unsigned char>(lower[i]);
    if ((a | ((b & 0x40) >> 1)) != b) return false;
  }
  return true;
}

Field classify(std::string_view name) {
  // RFC 9110 section 7.6.1: hop-by-hop fields are the server's to write.
  switch (name.size()) {
    case 2: return is(name, "te") ? Field::kHopByHop : Field::kOther;
    case 4: return is(name, "date") ? Field::kDate : Field::kOther;
    case 6: return is(name, "server") ? Field::kServer : Field::kOther;
    case 7: return is(name, "upgrade") ? Field::kHopByHop : Field::kOther;
    case 8: return is(name, "trailers") ? Field::kHopByHop : Field::kOther;
    case 10:
      if (is(name, "connection")) return Field::kConnection;
      return is(name, "keep-alive") ? Field::kHopByHop : Field::kOther;
    case 14: return is(name, "content-length") ? Field::kContentLength : Field::kOther;
    case 17: return is(name, "transfer-encoding") ? Field::kHopByHop : Field::kOther;
    case 18: return is(name, "proxy-authenticate") ? Field::kHopByHop : Field::kOther;
    case 19: return is(name, "proxy-authorization") ? Field::kHopByHop : Field::kOther;
    default: return Field::kOther;
  }
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

std::string_view standard_reason(int code) {
  switch (code) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 507: return "Insufficient Storage";
    case 511: return "Network Authentication Required";
    default: return "";
  }
}

ResponsePlan plan_response(const Request& request, std::string_view status,
                           const HeaderList& app_headers, bool request_is_head,
                           const uint64_t* known_length, bool want_close) {
  ResponsePlan plan;
  plan.status_code = parse_status_code(status);
  plan.keep_alive = request.keep_alive && !request.upgrade && !want_close;
  for (const auto& [name, value] : app_headers) {
    Field field = classify(name);
    if (field == Field::kContentLength) {
      // One valid Content-Length decides the framing: a second one (equal
      // or not) or one past 2^64 would leave the client to guess.
      uint64_t n = 0;
      if (value.empty()) throw std::invalid_argument("empty Content-Length header");
      if (plan.has_length) throw std::invalid_argument("more than one Content-Length header");
      for (char c : value) {
        if (c < '0' || c > '9') throw std::invalid_argument("bad Content-Length header: " + value);
        if (n > (UINT64_MAX - 9) / 10) {
          throw std::invalid_argument("Content-Length header out of range: " + value);
        }
        n = n * 10 + static_cast<uint64_t>(c - '0');
      }
      plan.has_length = true;
      plan.length = n;
    } else if (field == Field::kConnection && token_list_has(value, "close")) {
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
  } else if (request.http_minor >= 1 && !request.uwsgi) {
    // uwsgi has no response framing: the front-end passes the body's bytes
    // on as they are, so chunk markers would end up in it (gunicorn's
    // is_chunked says the same); the close ends the body.
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
  // One pass classifies the app's fields and bounds the size, one copies:
  // the buffer grows once and is filled with memcpy, not ~20 appends.
  constexpr size_t kRemembered = 32;
  Field fields[kRemembered];
  bool has_date = false;
  bool has_server = false;
  bool app_gave_length = false;
  size_t bound = 64 + status.size() + kServerName.size() + date.size() + 96;
  for (size_t i = 0; i < app_headers.size(); ++i) {
    const auto& [name, value] = app_headers[i];
    Field field = classify(name);
    if (i < kRemembered) fields[i] = field;
    app_gave_length = app_gave_length || field == Field::kContentLength;
    has_date = has_date || field == Field::kDate;
    has_server = has_server || field == Field::kServer;
    bound += name.size() + value.size() + 4;
  }
  size_t start = out.size();
  out.resize(start + bound);
  char* p = out.data() + start;
  auto put = [&p](std::string_view s) {
    std::memcpy(p, s.data(), s.size());
    p += s.size();
  };
  // We answer in the version we speak (RFC 9112 section 2.3).
  put(request.http_minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ");
  put(status);
  put("\r\n");
  for (size_t i = 0; i < app_headers.size(); ++i) {
    const auto& [name, value] = app_headers[i];
    Field field = i < kRemembered ? fields[i] : classify(name);
    if (field == Field::kHopByHop || field == Field::kConnection) continue;
    if (field == Field::kContentLength && !plan.has_length) continue;
    put(name);
    put(": ");
    put(value);
    put("\r\n");
  }
  if (!has_server) {
    put("Server: ");
    put(kServerName);
    put("\r\n");
  }
  if (!has_date) {
    put("Date: ");
    put(date);
    put("\r\n");
  }
  if (plan.has_length && !app_gave_length) {
    put("Content-Length: ");
    p = std::to_chars(p, p + 20, plan.length).ptr;
    put("\r\n");
  }
  if (plan.framing == Framing::kChunked) put("Transfer-Encoding: chunked\r\n");
  if (!plan.keep_alive) {
    put("Connection: close\r\n");
  } else if (request.http_minor == 0) {
    put("Connection: keep-alive\r\n");
  }
  put("\r\n");
  out.resize(static_cast<size_t>(p - out.data()));
}

size_t format_chunk_header(uint64_t size, char* out) {
  int n = std::snprintf(out, 20, "%llx\r\n", static_cast<unsigned long long>(size));
  return static_cast<size_t>(n);
}

}  // namespace cppgunicorn::http
