#include "llhttp_oracle.h"

#include <llhttp.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace cppgunicorn::fuzz {

namespace {

struct Seen {
  size_t body = 0;
  bool complete = false;
};

int on_body(llhttp_t* p, const char*, size_t n) {
  static_cast<Seen*>(p->data)->body += n;
  return 0;
}

int on_message_complete(llhttp_t* p) {
  static_cast<Seen*>(p->data)->complete = true;
  return HPE_PAUSED;  // one message, as the server takes them
}

void disagree(const char* what, const std::string& input) {
  std::fprintf(stderr, "llhttp disagrees (%s) on:\n%s\n", what, input.c_str());
  std::abort();
}

}  // namespace

void check_with_llhttp(const http::Request& r) {
  // A stand-in request line with the same version (CONNECT for CONNECT, the
  // one method that changes what follows the head), the fields without the
  // framing ones, then the framing the parser decided and the body it read.
  bool connect = r.method == "CONNECT";
  std::string in = connect ? "CONNECT a:1 " : "GET / ";
  in += r.http_minor == 0 ? "HTTP/1.0\r\n" : "HTTP/1.1\r\n";
  for (const auto& [name, value] : r.headers) {
    if (http::iequals(name, "content-length") || http::iequals(name, "transfer-encoding")) continue;
    in += name + ": " + value + "\r\n";
  }
  std::string body;
  if (r.chunked) {
    in += "Transfer-Encoding: chunked\r\n\r\n";
    if (!r.body.empty()) {
      char size[32];
      std::snprintf(size, sizeof size, "%zx\r\n", r.body.size());
      body = size + r.body + "\r\n";
    }
    body += "0\r\n\r\n";
  } else {
    if (r.has_content_length) in += "Content-Length: " + std::to_string(r.content_length) + "\r\n";
    in += "\r\n";
    if (!connect) body = r.body;
  }
  in += body;

  llhttp_settings_t settings;
  llhttp_settings_init(&settings);
  settings.on_body = on_body;
  settings.on_message_complete = on_message_complete;
  llhttp_t parser;
  llhttp_init(&parser, HTTP_REQUEST, &settings);
  Seen seen;
  parser.data = &seen;
  llhttp_errno_t err = llhttp_execute(&parser, in.data(), in.size());
  if (err != HPE_PAUSED && err != HPE_PAUSED_UPGRADE) disagree(llhttp_errno_name(err), in);
  if (!seen.complete) disagree("message not complete", in);
  bool upgrade = llhttp_get_upgrade(&parser) != 0 || connect;
  if (upgrade != r.upgrade) disagree("upgrade", in);
  if (!connect && seen.body != r.body.size()) disagree("body length", in);
  // What the client asked for; our own reasons to close (a transfer coding
  // other than chunked) are not llhttp's to judge.
  if ((llhttp_should_keep_alive(&parser) != 0) == r.close_requested) disagree("keep-alive", in);
}

}  // namespace cppgunicorn::fuzz
