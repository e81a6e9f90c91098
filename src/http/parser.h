// The HTTP/1.x request parser: bytes in, `Request`s out, in one pass over
// each byte. It reads the head with gunicorn's and RFC 9112's rules, decides
// the framing and reads a Content-Length body itself; a chunked body goes
// to the ChunkedDecoder. It never sees a socket or a Python object, so unit
// tests and fuzzers can feed it byte arrays. (llhttp is not on this path:
// its 8.1 request line refuses what gunicorn accepts, so it was only ever
// given a canonical copy of a head this parser had already judged; the
// fuzzer now runs it over that copy instead, as a second opinion on the
// framing, see tests/fuzz.)
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "http/chunked_decoder.h"
#include "http/errors.h"
#include "http/limits.h"
#include "http/proxy_protocol.h"
#include "http/request.h"
#include "http/uwsgi_parser.h"

namespace cppgunicorn::http {

class Parser {
 public:
  enum class Status {
    kNeedMore,      // all bytes consumed, the request is not complete yet
    kRequestReady,  // request() is complete; `consumed` bytes were used
    kError,         // error() says why; the connection must be closed
  };
  struct Result {
    Status status;
    size_t consumed;
  };

  explicit Parser(const ParserOptions& options = {});
  // The connection's peer may send a PROXY header (it is in proxy_allow_ips);
  // call before the first feed() when options.proxy_protocol is not off.
  void set_proxy_peer_allowed(bool allowed);
  // The peer is in forwarded_allow_ips: its forwarder_headers are kept.
  void set_forwarder_trusted(bool trusted) { forwarder_trusted_ = trusted; }
  // options.uwsgi: the peer is not in uwsgi_allow_ips, so its first packet
  // is refused (kForbiddenUwsgiPeer).
  void set_uwsgi_peer_allowed(bool allowed) { uwsgi_peer_allowed_ = allowed; }
  ~Parser();
  Parser(const Parser&) = delete;
  Parser& operator=(const Parser&) = delete;

  // Parses as much of `data` as makes up the current request and stops right
  // after it, so pipelined requests are taken one at a time.
  Result feed(const char* data, size_t length);
  // The peer closed its side: completes a request whose end is the close
  // (never, for requests) or reports kIncomplete if one was under way.
  Result finish();

  // True once any byte of the current request has been seen.
  bool in_request() const { return in_message_; }
  // True once the current request's head is parsed and its body is not
  // complete yet (a client waiting for "100 Continue" is here).
  bool awaiting_body() const { return head_done_ && !message_done_; }
  // True while the head of a request is being read (slowloris deadline).
  bool reading_head() const { return in_message_ && !head_done_; }
  // What a PROXY header before the first request said (seen=false: none).
  const ProxyInfo& proxy_info() const { return proxy_info_; }
  Request& request() { return request_; }
  ParseError error() const { return error_; }
  const std::string& error_reason() const { return error_reason_; }

  // Forget the finished request and get ready for the next one.
  void next();

 private:
  // How the body of the current request is framed, once its head is read.
  enum class Body { kNone, kLength, kChunked };

  Result fail(ParseError error, std::string reason);
  Result feed_message(const char* data, size_t length);
  // --protocol uwsgi: the packet's head instead of the request line and
  // header lines; the body is read as a Content-Length body.
  Result feed_uwsgi_head(const char* data, size_t length, size_t* used);
  // The request line is ours: gunicorn's rules (any token method, raw
  // non-ASCII bytes in the target, exact limit_request_line), stricter than
  // llhttp 8.1's.
  Result feed_request_line(const char* data, size_t length, size_t* used);
  // The line (CRLF included) of which `take` bytes at `start` are the end
  // (ends_here) or a part: read in place, or gathered in line_.
  std::string_view gather_line(const char* start, size_t take, bool ends_here);
  ParseError parse_request_line(std::string_view line);
  // So are the header lines (field_rules.cpp): CRLF only, no whitespace
  // before the colon, token names, no controls in values, obs-fold, the
  // limits and header_map; then the framing (RFC 9112 section 6) and the
  // connection's fate (Connection, Upgrade, CONNECT).
  Result feed_header_lines(const char* data, size_t length, size_t* used);
  bool take_header_line(std::string_view line);
  bool finish_field();
  bool is_forwarder_field(const std::string& name) const;
  bool decide_framing();
  void start_body();
  Result feed_length_body(const char* data, size_t length, size_t used);
  Result feed_chunked_body(const char* data, size_t length, size_t used);
  Result message_complete(size_t used);
  bool head_error(ParseError error, std::string reason);
  bool count_body(size_t before);

  ParserOptions options_;
  std::unique_ptr<ProxyHeaderDecoder> proxy_;  // until the PROXY header is decided
  UwsgiHeadDecoder uwsgi_;        // options_.uwsgi only
  ProxyInfo proxy_info_;
  Request request_;
  std::string line_;              // the request line or header line read so far
  bool reading_line_ = true;      // before the request line's CRLF
  bool reading_head_ = false;     // between the request line and the blank line
  std::string field_name_;        // the field being read (obs-fold may extend it)
  std::string field_value_;
  size_t field_bytes_ = 0;        // its size on the wire, CRLFs included
  bool have_field_ = false;
  size_t field_count_ = 0;
  bool force_close_ = false;      // a transfer coding before chunked
  uint64_t body_bytes_ = 0;       // body bytes decoded so far (limit_request_body)
  Body body_ = Body::kNone;       // set when the head is done
  uint64_t body_left_ = 0;        // Content-Length bytes still to come
  bool head_done_ = false;        // the head of the current request is parsed
  ChunkedDecoder chunked_;
  bool in_message_ = false;
  bool message_done_ = false;
  ParseError error_ = ParseError::kNone;
  std::string error_reason_;
  ParseError pending_error_ = ParseError::kNone;
  bool forwarder_trusted_ = false;
  bool uwsgi_peer_allowed_ = true;
};

bool is_tchar(unsigned char c);

}  // namespace cppgunicorn::http
