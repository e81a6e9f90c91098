// Decodes a `Transfer-Encoding: chunked` request body (RFC 9112 section 7.1)
// with gunicorn's strictness: hex sizes only, whitespace only before an
// extension, CRLF everywhere, no framing or routing fields in trailers.
// Our own rather than llhttp 8.1's, which rejects valid extensions
// ("5; name=value") and cannot tell why a size is bad.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "http/errors.h"

namespace cppgunicorn::http {

class ChunkedDecoder {
 public:
  enum class Status { kNeedMore, kDone, kError };
  struct Result {
    Status status;
    size_t consumed;
  };

  // Appends decoded body bytes to `body`; stops right after the final CRLF.
  Result feed(const char* data, size_t length, std::string& body);
  void reset();
  ParseError error() const { return error_; }
  const std::string& reason() const { return reason_; }

 private:
  enum class State { kSizeLine, kData, kDataEnd, kTrailerLine, kDone };
  Result fail(ParseError e, const char* why, size_t consumed);
  bool parse_size_line(std::string_view line);
  bool check_trailer_line(std::string_view line);

  State state_ = State::kSizeLine;
  std::string line_;
  uint64_t remaining_ = 0;
  size_t trailer_bytes_ = 0;
  ParseError error_ = ParseError::kNone;
  std::string reason_;
};

}  // namespace cppgunicorn::http
