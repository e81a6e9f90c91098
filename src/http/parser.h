// The HTTP/1.x request parser: bytes in, `Request`s out. It wraps llhttp
// (the only file that includes llhttp.h), adds the checks llhttp 8.1 leaves
// to its user, and never sees a socket or a Python object, so unit tests and
// fuzzers can feed it byte arrays.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "http/chunked_decoder.h"
#include "http/errors.h"
#include "http/limits.h"
#include "http/request.h"

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

  explicit Parser(const Limits& limits = {});
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
  Request& request() { return request_; }
  ParseError error() const { return error_; }
  const std::string& error_reason() const { return error_reason_; }

  // Forget the finished request and get ready for the next one.
  void next();

 // llhttp's callbacks, defined in parser.cpp.
  struct Callbacks;

 private:
  Result fail(ParseError error, std::string reason);
  Result llhttp_failure(int code);
  int check_header(const std::string& name, const std::string& value);
  int check_field_size();
  // The request line is ours: gunicorn's rules (any token method, raw
  // non-ASCII bytes in the target, exact limit_request_line), stricter than
  // llhttp 8.1's. llhttp then parses headers and body after a stand-in line.
  Result feed_request_line(const char* data, size_t length, size_t* used);
  ParseError parse_request_line(std::string_view line);
  int on_headers_done();

  struct LlhttpState;
  std::unique_ptr<LlhttpState> state_;
  Limits limits_;
  Request request_;
  std::string field_;
  std::string value_;
  std::string line_;              // the request line read so far
  bool reading_line_ = true;      // before the request line's CRLF
  bool in_body_ = false;          // the head is done; a chunked body follows
  bool head_done_ = false;        // the head of the current request is parsed
  ChunkedDecoder chunked_;
  bool in_message_ = false;
  bool message_done_ = false;
  ParseError error_ = ParseError::kNone;
  std::string error_reason_;
  ParseError pending_error_ = ParseError::kNone;
};

}  // namespace cppgunicorn::http
