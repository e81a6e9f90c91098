// Response heads and body framing: how a response is delimited (RFC 9112
// section 6), serialised into one buffer with the Date and Server headers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "http/request.h"

namespace cppgunicorn::http {

enum class Framing {
  kNoBody,          // HEAD, 1xx, 204, 304: no body bytes are sent
  kContentLength,   // Content-Length given by the app or known to us
  kChunked,         // HTTP/1.1, length unknown
  kCloseDelimited,  // HTTP/1.0 or uwsgi, length unknown: the close ends the body
};

struct ResponsePlan {
  int status_code = 200;
  Framing framing = Framing::kContentLength;
  bool keep_alive = true;
  bool has_length = false;   // Content-Length is sent
  uint64_t length = 0;
  bool body_allowed = true;  // false: body bytes from the app are dropped
};

// Reads the numeric code of a WSGI status line ("404 Not Found"); returns 0
// when it is not three digits followed by a space or the end.
int parse_status_code(std::string_view status);

// RFC 9110's reason phrase for a status code ("OK" for 200); "" if unknown.
std::string_view standard_reason(int code);

// Decides framing and persistence. `known_length` is set when the whole body
// is already in hand (a one-chunk body) and the app gave no Content-Length.
// Throws std::invalid_argument for a Content-Length header that is not a
// number.
ResponsePlan plan_response(const Request& request, std::string_view status,
                           const HeaderList& app_headers, bool request_is_head,
                           const uint64_t* known_length, bool want_close);

// Appends status line, the app's end-to-end headers, Date, Server, framing
// and Connection headers and the blank line.
void append_response_head(std::string& out, const Request& request, std::string_view status,
                          const HeaderList& app_headers, const ResponsePlan& plan,
                          std::string_view date);

// "1a2b\r\n" into `out` (at least 20 bytes); returns its length.
size_t format_chunk_header(uint64_t size, char* out);

inline constexpr std::string_view kLastChunk = "0\r\n\r\n";
inline constexpr std::string_view kServerName = "cppgunicorn";

}  // namespace cppgunicorn::http
