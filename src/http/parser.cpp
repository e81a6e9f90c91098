#include "http/parser.h"

#include <llhttp.h>

#include <algorithm>

namespace cppgunicorn::http {

struct Parser::LlhttpState {
  llhttp_t parser;
  bool paused = false;
};

namespace {
Parser* self(llhttp_t* p) { return static_cast<Parser*>(p->data); }

bool is_ctl(unsigned char c) { return (c < 0x20 && c != '\t') || c == 0x7F; }

void trim_trailing_ows(std::string& s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.pop_back();
}
}  // namespace

// llhttp calls plain functions; each forwards to the Parser that owns the
// llhttp_t (its `data`). They are members so they can reach private state.
struct Parser::Callbacks {
  static int on_message_begin(llhttp_t* p) {
    Parser* s = self(p);
    s->in_message_ = true;
    s->request_line_size_ = 0;
    return 0;
  }
  static int add_request_line(Parser* s, size_t n) {
    s->request_line_size_ += n;
    if (s->limits_.request_line && s->request_line_size_ > s->limits_.request_line) {
      s->pending_error_ = ParseError::kRequestLineTooLong;
      s->error_reason_ = "request line is longer than limit_request_line";
      return HPE_USER;
    }
    return 0;
  }
  static int on_method(llhttp_t* p, const char* at, size_t n) {
    self(p)->request_.method.append(at, n);
    return add_request_line(self(p), n);
  }
  static int on_url(llhttp_t* p, const char* at, size_t n) {
    self(p)->request_.target.append(at, n);
    // Method, target and version are separated by two spaces.
    return add_request_line(self(p), n + 2);
  }
  static int on_version(llhttp_t* p, const char*, size_t n) {
    return add_request_line(self(p), n + 5);  // "HTTP/"
  }
  static int on_version_complete(llhttp_t* p) {
    Parser* s = self(p);
    Request& r = s->request_;
    r.http_major = llhttp_get_http_major(p);
    r.http_minor = llhttp_get_http_minor(p);
    // RFC 9112 section 2.3: a 1.x server answers any 1.x request; other
    // majors are refused with 505.
    if (r.http_major != 1) {
      s->pending_error_ = ParseError::kVersionNotSupported;
      s->error_reason_ = "unsupported HTTP version";
      return HPE_USER;
    }
    r.protocol = "HTTP/1." + std::to_string(r.http_minor);
    return 0;
  }
  static int on_header_field(llhttp_t* p, const char* at, size_t n) {
    Parser* s = self(p);
    s->field_.append(at, n);
    return s->check_field_size();
  }
  static int on_header_value(llhttp_t* p, const char* at, size_t n) {
    Parser* s = self(p);
    s->value_.append(at, n);
    return s->check_field_size();
  }
  static int on_header_value_complete(llhttp_t* p) {
    Parser* s = self(p);
    int rc = s->check_header(s->field_, s->value_);
    s->field_.clear();
    s->value_.clear();
    return rc;
  }
  static int on_headers_complete(llhttp_t* p) {
    Parser* s = self(p);
    // A header line with an empty value never reaches on_header_value_complete
    // in some llhttp versions: flush what is pending.
    if (!s->field_.empty()) {
      int rc = on_header_value_complete(p);
      if (rc != 0) return rc;
    }
    return s->on_headers_done();
  }
  static int on_body(llhttp_t* p, const char* at, size_t n) {
    self(p)->request_.body.append(at, n);
    return 0;
  }
  static int on_message_complete(llhttp_t* p) {
    Parser* s = self(p);
    s->request_.keep_alive = llhttp_should_keep_alive(p) != 0;
    s->in_message_ = false;
    s->message_done_ = true;
    // Stop right after this request: pipelined bytes wait for next().
    return HPE_PAUSED;
  }
};

namespace {
const llhttp_settings_t* request_settings() {
  static const llhttp_settings_t settings = [] {
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_message_begin = &Parser::Callbacks::on_message_begin;
    s.on_method = &Parser::Callbacks::on_method;
    s.on_url = &Parser::Callbacks::on_url;
    s.on_version = &Parser::Callbacks::on_version;
    s.on_version_complete = &Parser::Callbacks::on_version_complete;
    s.on_header_field = &Parser::Callbacks::on_header_field;
    s.on_header_value = &Parser::Callbacks::on_header_value;
    s.on_header_value_complete = &Parser::Callbacks::on_header_value_complete;
    s.on_headers_complete = &Parser::Callbacks::on_headers_complete;
    s.on_body = &Parser::Callbacks::on_body;
    s.on_message_complete = &Parser::Callbacks::on_message_complete;
    return s;
  }();
  return &settings;
}
}  // namespace

Parser::Parser(const Limits& limits) : state_(std::make_unique<LlhttpState>()), limits_(limits) {
  llhttp_init(&state_->parser, HTTP_REQUEST, request_settings());
  state_->parser.data = this;
}

Parser::~Parser() = default;

int Parser::check_field_size() {
  if (limits_.request_field_size &&
      field_.size() + value_.size() + 2 > limits_.request_field_size) {
    pending_error_ = ParseError::kHeaderTooLarge;
    error_reason_ = "header field is larger than limit_request_field_size";
    return HPE_USER;
  }
  return 0;
}

int Parser::check_header(const std::string& name, const std::string& value) {
  // llhttp 8.1 lets control characters through in values; RFC 9110 section
  // 5.5 allows only VCHAR, obs-text, SP and HTAB.
  for (char c : value) {
    if (is_ctl(static_cast<unsigned char>(c))) {
      pending_error_ = ParseError::kInvalidHeader;
      error_reason_ = "control character in header value";
      return HPE_USER;
    }
  }
  if (limits_.request_fields && request_.headers.size() + 1 > limits_.request_fields) {
    pending_error_ = ParseError::kTooManyHeaders;
    error_reason_ = "more header fields than limit_request_fields";
    return HPE_USER;
  }
  // gunicorn's default header_map ("drop"): a name with '_' could pose as
  // one with '-' once both become HTTP_* keys in the environ, so drop it.
  if (name.find('_') != std::string::npos) return 0;
  request_.headers.emplace_back(name, value);
  trim_trailing_ows(request_.headers.back().second);
  return 0;
}

int Parser::on_headers_done() {
  llhttp_t* p = &state_->parser;
  Request& r = request_;
  if (r.protocol.empty()) r.protocol = "HTTP/1." + std::to_string(r.http_minor);
  r.chunked = (p->flags & F_CHUNKED) != 0;
  r.has_content_length = (p->flags & F_CONTENT_LENGTH) != 0;
  if (r.has_content_length) r.content_length = p->content_length;
  r.upgrade = llhttp_get_upgrade(p) != 0 || p->method == HTTP_CONNECT;
  std::string_view expect = r.header("expect");
  r.expect_continue = iequals(expect, "100-continue");
  return 0;
}

Parser::Result Parser::fail(ParseError error, std::string reason) {
  error_ = error;
  if (error_reason_.empty()) error_reason_ = std::move(reason);
  return {Status::kError, 0};
}

Parser::Result Parser::feed(const char* data, size_t length) {
  if (error_ != ParseError::kNone) return {Status::kError, 0};
  if (length == 0) return {Status::kNeedMore, 0};
  message_done_ = false;
  llhttp_errno_t err = llhttp_execute(&state_->parser, data, length);
  if (err == HPE_OK) return {Status::kNeedMore, length};
  if ((err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) && message_done_) {
    state_->paused = err == HPE_PAUSED;
    const char* stop = llhttp_get_error_pos(&state_->parser);
    size_t consumed = stop ? static_cast<size_t>(stop - data) : length;
    return {Status::kRequestReady, consumed};
  }
  const char* reason = llhttp_get_error_reason(&state_->parser);
  std::string why = reason ? reason : llhttp_errno_name(err);
  // Our own checks record their reason; llhttp reports them as HPE_USER or,
  // from *_complete callbacks, as HPE_CB_*.
  if (pending_error_ != ParseError::kNone) return fail(pending_error_, why);
  switch (err) {
    case HPE_INVALID_METHOD:
      return fail(ParseError::kInvalidMethod, why);
    case HPE_INVALID_VERSION:
      return fail(ParseError::kInvalidVersion, why);
    case HPE_INVALID_CHUNK_SIZE:
      return fail(ParseError::kInvalidChunk, why);
    case HPE_UNEXPECTED_CONTENT_LENGTH:
    case HPE_INVALID_CONTENT_LENGTH:
      return fail(ParseError::kBodyFraming, why);
    case HPE_INVALID_TRANSFER_ENCODING:
      return fail(ParseError::kBodyFraming, why);
    case HPE_INVALID_HEADER_TOKEN:
      return fail(ParseError::kInvalidHeader, why);
    default:
      return fail(ParseError::kBadRequest, why);
  }
}

Parser::Result Parser::finish() {
  if (error_ != ParseError::kNone) return {Status::kError, 0};
  if (in_message_) return fail(ParseError::kIncomplete, "connection closed mid-request");
  return {Status::kNeedMore, 0};
}

void Parser::next() {
  request_.clear();
  field_.clear();
  value_.clear();
  message_done_ = false;
  if (state_->paused) {
    llhttp_resume(&state_->parser);
    state_->paused = false;
  }
}

}  // namespace cppgunicorn::http
