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
}  // namespace

// llhttp calls plain functions; each forwards to the Parser that owns the
// llhttp_t (its `data`). They are members so they can reach private state.
// Header fields are not collected here: the parser read them already and
// gave llhttp a canonical copy.
struct Parser::Callbacks {
  static int on_headers_complete(llhttp_t* p) { return self(p)->on_headers_done(); }
  static int on_body(llhttp_t* p, const char* at, size_t n) {
    Parser* s = self(p);
    size_t before = s->request_.body.size();
    s->request_.body.append(at, n);
    return s->count_body(before) ? 0 : HPE_USER;
  }
  static int on_message_complete(llhttp_t* p) {
    Parser* s = self(p);
    s->request_.keep_alive = llhttp_should_keep_alive(p) != 0 && !s->force_close_;
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
    s.on_headers_complete = &Parser::Callbacks::on_headers_complete;
    s.on_body = &Parser::Callbacks::on_body;
    s.on_message_complete = &Parser::Callbacks::on_message_complete;
    return s;
  }();
  return &settings;
}
}  // namespace

Parser::Parser(const ParserOptions& options)
    : state_(std::make_unique<LlhttpState>()), options_(options) {
  llhttp_init(&state_->parser, HTTP_REQUEST, request_settings());
  state_->parser.data = this;
  if (options_.proxy_protocol != ProxyProtocol::kOff) {
    proxy_ = std::make_unique<ProxyHeaderDecoder>(options_.proxy_protocol, true);
  }
}

Parser::~Parser() = default;

void Parser::set_proxy_peer_allowed(bool allowed) {
  if (proxy_) proxy_ = std::make_unique<ProxyHeaderDecoder>(options_.proxy_protocol, allowed);
}

bool is_tchar(unsigned char c) {
  // RFC 9110 section 5.6.2 token characters.
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

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
    // gunicorn's conventional methods: no lower case, no '#', 3 to 20 long
    // (permit_unconventional_http_method lifts this).
    if (!options_.permit_unconventional_http_method && ((c >= 'a' && c <= 'z') || c == '#')) {
      return ParseError::kInvalidMethod;
    }
  }
  if (!options_.permit_unconventional_http_method && (method.size() < 3 || method.size() > 20)) {
    return ParseError::kInvalidMethod;
  }

  if (target.empty()) return ParseError::kBadRequest;
  for (char c : target) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7F) return ParseError::kBadRequest;
  }
  bool is_connect = method == "CONNECT";
  if (target[0] == '/') {
    if (is_connect) return ParseError::kBadRequest;
  } else if (target == "*") {
    // asterisk-form (RFC 9112 section 3.2.4): only for OPTIONS.
    if (method != "OPTIONS") return ParseError::kBadRequest;
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
  if (options_.casefold_http_method) {
    for (char& c : request_.method) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
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
    if (options_.limits.request_line && content > options_.limits.request_line) {
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
    line_.clear();
    reading_line_ = false;
    reading_head_ = true;
  }
  return {Status::kNeedMore, *used};
}

bool Parser::count_body(size_t before) {
  body_bytes_ += request_.body.size() - before;
  if (options_.limits.request_body && body_bytes_ > options_.limits.request_body) {
    pending_error_ = ParseError::kBodyTooLarge;
    error_reason_ = "request body larger than limit_request_body";
    return false;
  }
  return true;
}

int Parser::on_headers_done() {
  llhttp_t* p = &state_->parser;
  Request& r = request_;
  r.upgrade = llhttp_get_upgrade(p) != 0 || r.method == "CONNECT";
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

Parser::Result Parser::hand_head_to_llhttp() {
  // llhttp parses a canonical copy: a stand-in request line with the same
  // version (CONNECT for CONNECT, the only method that changes how it reads
  // what follows), the kept fields without framing ones, and our framing.
  Request& r = request_;
  canonical_head_ = r.method == "CONNECT" ? "CONNECT a:1 " : "GET / ";
  canonical_head_ += r.http_minor == 0 ? "HTTP/1.0\r\n" : "HTTP/1.1\r\n";
  for (const auto& [name, value] : r.headers) {
    if (iequals(name, "content-length") || iequals(name, "transfer-encoding")) continue;
    canonical_head_ += name;
    canonical_head_ += ": ";
    canonical_head_ += value;
    canonical_head_ += "\r\n";
  }
  if (r.has_content_length) canonical_head_ += "Content-Length: " + std::to_string(r.content_length) + "\r\n";
  canonical_head_ += "\r\n";
  message_done_ = false;
  llhttp_errno_t err = llhttp_execute(&state_->parser, canonical_head_.data(), canonical_head_.size());
  if (err == HPE_OK) return {Status::kNeedMore, 0};  // a Content-Length body follows
  if ((err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) && message_done_) {
    state_->paused = err == HPE_PAUSED;
    return {Status::kNeedMore, 0};
  }
  return llhttp_failure(err);
}

Parser::Result Parser::fail(ParseError error, std::string reason) {
  error_ = error;
  if (error_reason_.empty()) error_reason_ = std::move(reason);
  return {Status::kError, 0};
}

Parser::Result Parser::feed(const char* data, size_t length) {
  if (error_ != ParseError::kNone) return {Status::kError, 0};
  if (length == 0) return {Status::kNeedMore, 0};
  size_t used = 0;
  if (proxy_) {
    // Only a connection's first bytes may be a PROXY header.
    switch (proxy_->feed(data, length)) {
      case ProxyHeaderDecoder::Status::kNeedMore:
        return {Status::kNeedMore, length};
      case ProxyHeaderDecoder::Status::kError:
        return fail(proxy_->error(), proxy_->reason());
      case ProxyHeaderDecoder::Status::kDone:
        proxy_info_ = proxy_->info();
        used = proxy_->used_of_last_feed();
        proxy_.reset();
        break;
      case ProxyHeaderDecoder::Status::kAbsent: {
        // Bytes held while undecided are the start of the first request;
        // too few (under 16) to complete one.
        std::string held = proxy_->held();
        proxy_.reset();
        if (!held.empty()) {
          Result r = feed_message(held.data(), held.size());
          if (r.status == Status::kError) return r;
        }
        break;
      }
    }
    if (used == length) return {Status::kNeedMore, length};
  }
  Result r = feed_message(data + used, length - used);
  r.consumed += used;
  return r;
}

Parser::Result Parser::feed_message(const char* data, size_t length) {
  message_done_ = false;
  size_t used = 0;
  if (reading_line_) {
    Result r = feed_request_line(data, length, &used);
    if (r.status == Status::kError || reading_line_ || used == length) return r;
  }
  if (reading_head_) {
    Result r = feed_header_lines(data, length, &used);
    if (r.status == Status::kError || reading_head_) return r;
    if (message_done_ && !in_body_) return {Status::kRequestReady, used};
    message_done_ = false;
    if (used == length) return {Status::kNeedMore, used};
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
    return {Status::kRequestReady, used + consumed};
  }
  size_t before = request_.body.size();
  ChunkedDecoder::Result c = chunked_.feed(data, length, request_.body);
  used += c.consumed;
  if (!count_body(before)) return fail(pending_error_, error_reason_);
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
  if (proxy_ && !proxy_->held().empty()) return fail(ParseError::kIncomplete, "connection closed mid-PROXY header");
  if (in_message_ || in_body_) return fail(ParseError::kIncomplete, "connection closed mid-request");
  return {Status::kNeedMore, 0};
}

void Parser::next() {
  request_.clear();
  message_done_ = false;
  head_done_ = false;
  line_.clear();
  reading_line_ = true;
  reading_head_ = false;
  field_name_.clear();
  field_value_.clear();
  field_bytes_ = 0;
  have_field_ = false;
  field_count_ = 0;
  canonical_head_.clear();
  force_close_ = false;
  body_bytes_ = 0;
  in_body_ = false;
  if (state_->paused) {
    llhttp_resume(&state_->parser);
    state_->paused = false;
  }
}

}  // namespace cppgunicorn::http
