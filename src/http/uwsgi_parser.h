// The head of a uwsgi request packet (--protocol uwsgi, what nginx's
// uwsgi_pass sends), decoded into the same `Request` the HTTP parser makes.
//
// A packet is a 4-byte header, modifier1 (0: a WSGI request), a 16-bit
// little-endian size of the vars block and modifier2, then that many bytes
// of vars, each a 16-bit little-endian key size, the key, a 16-bit value
// size and the value. The body follows, CONTENT_LENGTH bytes of it; the
// http::Parser reads it as it reads a Content-Length body.
//
// The rules are gunicorn 27's (gunicorn/uwsgi/message.py): modifier1 must
// be 0, modifier2 is not looked at, at most 1000 vars, a var that runs past
// the block is an error; limit_request_line, _fields and _field_size do not
// apply (the 64 KiB block bounds the head). One pass over each byte as it
// arrives: bytes of a key or value split across reads are appended, never
// gathered and parsed again.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "http/errors.h"
#include "http/request.h"

namespace cppgunicorn::http {

// gunicorn's MAX_UWSGI_VARS.
inline constexpr size_t kMaxUwsgiVars = 1000;

class UwsgiHeadDecoder {
 public:
  enum class Status {
    kNeedMore,  // every byte fed was used; the head is not complete
    kDone,      // the head is complete: `request` is filled, the body follows
    kError,     // reason() says why; the connection must be closed
  };
  struct Result {
    Status status;
    size_t consumed;  // bytes of this feed that belong to the head
  };

  // Decodes the head from `data`, filling `request` (method, target,
  // protocol, headers, cgi_vars, Content-Length framing).
  Result feed(const char* data, size_t length, Request& request);
  // True once a byte of the head was seen.
  bool started() const { return state_ != State::kHeader || header_got_ > 0; }
  const std::string& reason() const { return reason_; }
  void reset();

 private:
  enum class State { kHeader, kKeySize, kKey, kValueSize, kValue, kDone, kError };

  Result fail(std::string reason, size_t used);
  // The var just read is put where it belongs in `request`.
  void take_var(Request& request);
  // After the last var: the request line and the body's framing.
  bool finish_head(Request& request);
  // Ready for the next var, or the end of the block; false: refused (reason_).
  bool start_var(Request& request);
  // The key or value just read is complete.
  bool field_done(Request& request);

  State state_ = State::kHeader;
  unsigned char header_[4] = {};
  size_t header_got_ = 0;
  size_t block_left_ = 0;    // bytes of the vars block still to come
  size_t size_got_ = 0;      // bytes of a 16-bit size read so far
  size_t field_size_ = 0;    // the size being read, then the key's or value's
  std::string key_;
  std::string value_;
  size_t var_count_ = 0;
  // What the request line is made of, when the packet has them.
  std::string path_info_, query_string_, request_uri_;
  bool have_path_info_ = false, have_query_ = false, have_request_uri_ = false;
  bool have_method_ = false;
  std::string content_length_;  // the last CONTENT_LENGTH var
  bool have_content_length_ = false;
  std::string reason_;
};

// gunicorn's reading of CONTENT_LENGTH: int(value), negative as 0, and 0
// when it is not a number. Returns false when it is a number too large to
// be a length (more than 18 digits), which no front-end sends.
bool uwsgi_content_length(const std::string& value, uint64_t* length);

}  // namespace cppgunicorn::http
