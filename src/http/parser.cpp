#include "http/parser.h"

#include <llhttp.h>

#include <algorithm>
#include <cctype>
#include <cstring>

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
    self(p)->in_message_ = true;
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
    s->in_message_ = s->in_body_;
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
  // gunicorn counts the whole field line with its CRLF; ": " is assumed.
  if (limits_.request_field_size &&
      field_.size() + value_.size() + 4 > limits_.request_field_size) {
    pending_error_ = ParseError::kHeaderTooLarge;
    error_reason_ = "header field is larger than limit_request_field_size";
    return HPE_USER;
  }
  return 0;
}

namespace {

bool is_tchar(unsigned char c) {
  // RFC 9110 section 5.6.2 token characters.
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

// Fields that may appear only once; two differing copies are a smuggling
// or cache-poisoning vector (RFC 9112 section 3.2 for Host).
bool is_singleton(std::string_view name) {
  return iequals(name, "host") || iequals(name, "content-type") || iequals(name, "content-length");
}

}  // namespace

ParseError Parser::parse_request_line(std::string_view line) {
  // request-line = method SP request-target SP HTTP-version (RFC 9112 s3),
  // split as gunicorn does: on the first two single spaces.
  size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return ParseError::kBadRequest;
  size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return ParseError::kBadRequest;
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);

  if (method.empty()) return ParseError::kBadRequest;
  for (char c : method) {
    if (!is_tchar(static_cast<unsigned char>(c))) return ParseError::kInvalidMethod;
    // gunicorn's conventional methods: no lower case, no '#', 3 to 20 long.
    if ((c >= 'a' && c <= 'z') || c == '#') return ParseError::kInvalidMethod;
  }
  if (method.size() < 3 || method.size() > 20) return ParseError::kInvalidMethod;

  if (target.empty()) return ParseError::kBadRequest;
  for (char c : target) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7F) return ParseError::kBadRequest;
  }
  bool is_connect = method == "CONNECT";
  if (target[0] == '/') {
    if (is_connect) return ParseError::kBadRequest;
  } else if (target == "*") {
    // asterisk-form (RFC 9112 section 3.2.4)
  } else if (size_t colon = target.find("://"); colon != std::string_view::npos && !is_connect) {
    // absolute-form: scheme "://" authority [path]
    std::string_view scheme = target.substr(0, colon);
    if (scheme.empty() || !std::isalpha(static_cast<unsigned char>(scheme[0]))) return ParseError::kBadRequest;
    for (char c : scheme) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.')
        return ParseError::kBadRequest;
    }
    std::string_view rest = target.substr(colon + 3);
    std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
    size_t open = authority.find('[');
    size_t close = authority.find(']');
    if ((open == std::string_view::npos) != (close == std::string_view::npos)) return ParseError::kBadRequest;
    if (open != std::string_view::npos && (open != 0 || close < open)) return ParseError::kBadRequest;
  } else if (is_connect) {
    // authority-form (RFC 9112 section 3.2.3): host ":" port
    size_t colon = target.rfind(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == target.size()) return ParseError::kBadRequest;
  } else {
    return ParseError::kBadRequest;  // a relative reference is no request-target
  }

  // HTTP-version = "HTTP/" DIGIT "." DIGIT
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || !std::isdigit(static_cast<unsigned char>(version[5])) ||
      version[6] != '.' || !std::isdigit(static_cast<unsigned char>(version[7]))) {
    return ParseError::kInvalidVersion;
  }
  int major = version[5] - '0';
  int minor = version[7] - '0';
  if (major == 0) return ParseError::kInvalidVersion;
  if (major > 1) return ParseError::kVersionNotSupported;  // RFC 9112 section 2.3

  request_.method.assign(method);
  request_.target.assign(target);
  request_.protocol.assign(version);
  request_.http_major = major;
  request_.http_minor = minor;
  return ParseError::kNone;
}

Parser::Result Parser::feed_request_line(const char* data, size_t length, size_t* used) {
  while (*used < length && reading_line_) {
    const char* start = data + *used;
    const void* nl = std::memchr(start, '\n', length - *used);
    size_t take = nl ? static_cast<size_t>(static_cast<const char*>(nl) - start) + 1 : length - *used;
    // RFC 9112 section 2.2: ignore empty lines before a request line.
    if (line_.empty() && take <= 2 && nl && (take == 1 || start[0] == '\r')) {
      if (take == 1) return fail(ParseError::kBadRequest, "bare LF before the request line");
      *used += take;
      continue;
    }
    line_.append(start, take);
    *used += take;
    in_message_ = true;
    size_t content = nl ? line_.size() - 2 : line_.size();
    if (limits_.request_line && content > limits_.request_line) {
      return fail(ParseError::kRequestLineTooLong, "request line is longer than limit_request_line");
    }
    if (!nl) break;
    if (line_.size() < 2 || line_[line_.size() - 2] != '\r') {
      return fail(ParseError::kBadRequest, "request line not ended by CRLF");
    }
    if (line_.find('\r') != line_.size() - 2) {
      return fail(ParseError::kBadRequest, "bare CR in the request line");
    }
    ParseError e = parse_request_line(std::string_view(line_).substr(0, line_.size() - 2));
    if (e != ParseError::kNone) return fail(e, "invalid request line");
    reading_line_ = false;
    // llhttp parses the rest after a stand-in request line with the same
    // version; only CONNECT changes how it treats what follows.
    std::string stand_in = request_.method == "CONNECT" ? "CONNECT a:1 " : "GET / ";
    stand_in += request_.http_minor == 0 ? "HTTP/1.0\r\n" : "HTTP/1.1\r\n";
    llhttp_errno_t err = llhttp_execute(&state_->parser, stand_in.data(), stand_in.size());
    if (err != HPE_OK) return fail(ParseError::kBadRequest, "request line rejected");
  }
  return {Status::kNeedMore, *used};
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
  if (is_singleton(name)) {
    for (const auto& [k, v] : request_.headers) {
      if (iequals(k, name)) {
        pending_error_ = ParseError::kInvalidHeader;
        error_reason_ = "duplicate " + name + " header";
        return HPE_USER;
      }
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
  r.chunked = (p->flags & F_CHUNKED) != 0;
  r.has_content_length = (p->flags & F_CONTENT_LENGTH) != 0;
  if (r.chunked) {
    // RFC 9112 section 6.1: Content-Length beside Transfer-Encoding is a
    // smuggling attempt, and HTTP/1.0 has no chunked coding.
    if (!r.header("content-length").empty() || r.has_content_length) {
      pending_error_ = ParseError::kBodyFraming;
      error_reason_ = "both Content-Length and Transfer-Encoding";
      return -1;
    }
    if (r.http_minor == 0) {
      pending_error_ = ParseError::kBodyFraming;
      error_reason_ = "chunked Transfer-Encoding in an HTTP/1.0 request";
      return -1;
    }
  }
  if (r.has_content_length) r.content_length = p->content_length;
  r.upgrade = llhttp_get_upgrade(p) != 0 || p->method == HTTP_CONNECT;
  std::string_view expect = r.header("expect");
  r.expect_continue = iequals(expect, "100-continue");
  head_done_ = true;
  // A chunked body is ours to decode: tell llhttp the message has no body;
  // feed() hands the bytes after the head to the ChunkedDecoder.
  if (r.chunked) {
    in_body_ = true;
    chunked_.reset();
    return 1;
  }
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
  size_t used = 0;
  if (reading_line_) {
    Result r = feed_request_line(data, length, &used);
    if (r.status == Status::kError || reading_line_ || used == length) return r;
  }
  data += used;
  length -= used;
  if (!in_body_) {
    llhttp_errno_t err = llhttp_execute(&state_->parser, data, length);
    if (err == HPE_OK) return {Status::kNeedMore, used + length};
    if (!((err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) && message_done_)) {
      return llhttp_failure(err);
    }
    state_->paused = err == HPE_PAUSED;
    const char* stop = llhttp_get_error_pos(&state_->parser);
    size_t consumed = stop ? static_cast<size_t>(stop - data) : length;
    used += consumed;
    if (!in_body_) return {Status::kRequestReady, used};
    data += consumed;
    length -= consumed;
    message_done_ = false;
  }
  ChunkedDecoder::Result c = chunked_.feed(data, length, request_.body);
  used += c.consumed;
  if (c.status == ChunkedDecoder::Status::kError) return fail(chunked_.error(), chunked_.reason());
  if (c.status == ChunkedDecoder::Status::kNeedMore) return {Status::kNeedMore, used};
  in_body_ = false;
  in_message_ = false;
  message_done_ = true;
  return {Status::kRequestReady, used};
}

Parser::Result Parser::llhttp_failure(int code) {
  llhttp_errno_t err = static_cast<llhttp_errno_t>(code);
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
  if (in_message_ || in_body_) return fail(ParseError::kIncomplete, "connection closed mid-request");
  return {Status::kNeedMore, 0};
}

void Parser::next() {
  request_.clear();
  field_.clear();
  value_.clear();
  message_done_ = false;
  head_done_ = false;
  line_.clear();
  reading_line_ = true;
  in_body_ = false;
  if (state_->paused) {
    llhttp_resume(&state_->parser);
    state_->paused = false;
  }
}

}  // namespace cppgunicorn::http
