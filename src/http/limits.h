// Request size limits and parsing rules, with gunicorn's setting names and
// defaults. Filled from the settings by the worker; the parser only reads.
#pragma once

#include <string>
#include <vector>

#include <cstddef>
#include <cstdint>

namespace cppgunicorn::http {

struct Limits {
  size_t request_line = 4094;       // limit_request_line (0: unlimited, up to 1 MiB)
  size_t request_fields = 100;      // limit_request_fields
  size_t request_field_size = 8190; // limit_request_field_size
  uint64_t request_body = 0;        // limit_request_body (0: unlimited); ours, not gunicorn's
};

// What to do with a header name containing '_' (gunicorn's header_map):
// once names become HTTP_* environ keys, "X_Forwarded_For" would pose as
// "X-Forwarded-For".
enum class HeaderMap { kDrop, kRefuse, kDangerous };

// Which PROXY protocol headers a connection may start with.
enum class ProxyProtocol { kOff, kV1, kV2, kAuto };

struct ParserOptions {
  Limits limits;
  HeaderMap header_map = HeaderMap::kDrop;
  bool permit_obsolete_folding = false;            // unfold obs-fold instead of 400
  bool permit_unconventional_http_method = false;  // any token method
  bool casefold_http_method = false;               // "get" becomes "GET"
  bool strip_header_spaces = false;                // "Name : v" is "Name: v"
  ProxyProtocol proxy_protocol = ProxyProtocol::kOff;
  // gunicorn's forwarder_headers: names with '_' ("SCRIPT_NAME", or "*")
  // that a trusted front-end may send whatever header_map says.
  std::vector<std::string> forwarder_headers = {"SCRIPT_NAME", "PATH_INFO"};
  // Requests come as uwsgi packets (--protocol uwsgi), not HTTP/1.x: read
  // by UwsgiHeadDecoder; no PROXY header is looked for.
  bool uwsgi = false;
};

// The largest limit_request_line gunicorn honours, and what "unlimited" means.
inline constexpr size_t kMaxRequestLine = 8190;
inline constexpr size_t kUnlimitedRequestLine = 1024 * 1024;
// limit_request_fields above this (or 0) means this (gunicorn's MAX_HEADERS).
inline constexpr size_t kMaxHeaderFields = 32768;
inline constexpr size_t kDefaultFieldSize = 8190;

// The limits gunicorn actually applies for configured values: a request
// line limit of 0 is unlimited (bounded here at 1 MiB) and above 8190 is
// 8190; 0 fields or 0 field size mean the defaults.
Limits effective_limits(long long request_line, long long request_fields,
                        long long request_field_size, long long request_body);

}  // namespace cppgunicorn::http
