// One parsed HTTP/1.x request: what the parser produced, before any Python
// object exists. Reused across keep-alive requests (clear() keeps capacity).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/body_channel.h"
#include "base/spool_file.h"

namespace cppgunicorn::http {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct Request {
  std::string method;
  std::string target;  // the request-target exactly as sent (RAW_URI)
  int http_major = 1;
  int http_minor = 1;
  HeaderList headers;  // names as sent, values with surrounding OWS removed
  std::string body;    // de-chunked body bytes (after those in body_file)
  // A large body's first bytes, moved out of memory by the connection.
  std::shared_ptr<base::SpoolFile> body_file;
  // Set instead when the body is streamed to the app as it arrives
  // (--no-request-buffering): body and body_file then stay empty.
  std::shared_ptr<base::BodyChannel> body_stream;
  bool has_content_length = false;
  uint64_t content_length = 0;
  bool chunked = false;     // body arrived with Transfer-Encoding: chunked
  bool keep_alive = true;   // another request may follow this one on the connection
  bool close_requested = false;  // the client said so (Connection: close, HTTP/1.0 default)
  bool upgrade = false;     // Upgrade/CONNECT: no further requests follow
  bool expect_continue = false;
  // A SCRIPT_NAME header from a trusted front-end (forwarder_headers).
  bool has_script_name = false;
  std::string script_name;
  // The request came in a uwsgi packet (--protocol uwsgi): its response is
  // delimited by the close, as the protocol has no response framing.
  bool uwsgi = false;
  // The packet's CGI variables (REMOTE_ADDR, SERVER_NAME, PATH_INFO,
  // DOCUMENT_ROOT, uwsgi_param ones...), set in the environ as they are,
  // over what the server would derive. Its HTTP_* variables are `headers`.
  HeaderList cgi_vars;

  std::string protocol;  // "HTTP/1.1", as sent (SERVER_PROTOCOL)
  // The path part of the target (before '?'), still percent-encoded.
  std::string_view path() const;
  // The query (after the first '?', before any '#'), raw; empty if none.
  std::string_view query() const;
  // First header of that name, compared case-insensitively; empty if none.
  std::string_view header(std::string_view name) const;

  void clear();
};

// Percent-decodes `in` byte by byte: "%2F" becomes '/', a malformed escape is
// kept as is (as gunicorn and werkzeug do).
std::string percent_decode(std::string_view in);

// ASCII case-insensitive equality. Inline: it is called for every header
// name against a few fixed names, and most calls end at the size check.
inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x | 0x20);
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y | 0x20);
    if (x != y) return false;
  }
  return true;
}

}  // namespace cppgunicorn::http
