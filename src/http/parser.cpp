#include "http/parser.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>

namespace cppgunicorn::http {

Parser::Parser(const ParserOptions& options) : options_(options) {
  // gunicorn reads no PROXY header before a uwsgi packet.
  if (options_.proxy_protocol != ProxyProtocol::kOff && !options_.uwsgi) {
    proxy_ = std::make_unique<ProxyHeaderDecoder>(options_.proxy_protocol, true);
  }
}

Parser::~Parser() = default;

void Parser::set_proxy_peer_allowed(bool allowed) {
  if (proxy_) proxy_ = std::make_unique<ProxyHeaderDecoder>(options_.proxy_protocol, allowed);
}

namespace {
// RFC 9110 section 5.6.2 token characters, as a table: every byte of every
// method and header name is looked up here.
constexpr std::array<bool, 256> kTchar = [] {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = t[c - 'a' + 'A'] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}();
}  // namespace

bool is_tchar(unsigned char c) { return kTchar[c]; }

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

std::string_view Parser::gather_line(const char* start, size_t take, bool ends_here) {
  // A line that arrived whole is read where it lies (the usual case: the
  // whole head in one read); only one split across reads is gathered.
  if (line_.empty() && ends_here) return std::string_view(start, take);
  line_.append(start, take);
  return line_;
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
    *used += take;
    in_message_ = true;
    std::string_view line = gather_line(start, take, nl != nullptr);
    size_t content = nl ? line.size() - 2 : line.size();
    if (options_.limits.request_line && content > options_.limits.request_line) {
      return fail(ParseError::kRequestLineTooLong, "request line is longer than limit_request_line");
    }
    if (!nl) break;
    if (line.size() < 2 || line[line.size() - 2] != '\r') {
      return fail(ParseError::kBadRequest, "request line not ended by CRLF");
    }
    if (line.find('\r') != line.size() - 2) {
      return fail(ParseError::kBadRequest, "bare CR in the request line");
    }
    ParseError e = parse_request_line(line.substr(0, line.size() - 2));
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
  // A finished request is taken with next() before more bytes are parsed.
  if (message_done_) return fail(ParseError::kBadRequest, "bytes fed before the request was taken");
  size_t used = 0;
  if (options_.uwsgi) {
    if (!head_done_) {
      Result r = feed_uwsgi_head(data, length, &used);
      if (r.status == Status::kError || !head_done_) return r;
      if (body_ == Body::kNone) return message_complete(used);
      if (used == length) return {Status::kNeedMore, used};
    }
    return feed_length_body(data, length, used);  // the only framing uwsgi has
  }
  if (reading_line_) {
    Result r = feed_request_line(data, length, &used);
    if (r.status == Status::kError || reading_line_ || used == length) return r;
  }
  if (reading_head_) {
    Result r = feed_header_lines(data, length, &used);
    if (r.status == Status::kError || reading_head_) return r;
    if (body_ == Body::kNone) return message_complete(used);
    if (used == length) return {Status::kNeedMore, used};
  }
  if (body_ == Body::kLength) return feed_length_body(data, length, used);
  return feed_chunked_body(data, length, used);
}

Parser::Result Parser::feed_uwsgi_head(const char* data, size_t length, size_t* used) {
  in_message_ = true;
  if (!uwsgi_peer_allowed_) {
    return fail(ParseError::kForbiddenUwsgiPeer, "uwsgi request from a peer not in uwsgi_allow_ips");
  }
  UwsgiHeadDecoder::Result r = uwsgi_.feed(data, length, request_);
  *used = r.consumed;
  if (r.status == UwsgiHeadDecoder::Status::kError) {
    return fail(ParseError::kInvalidUwsgiPacket, uwsgi_.reason());
  }
  if (r.status == UwsgiHeadDecoder::Status::kNeedMore) return {Status::kNeedMore, *used};
  // Ours, as for HTTP: a body that says it is too large is refused before
  // a byte of it is read.
  if (options_.limits.request_body && request_.content_length > options_.limits.request_body) {
    return fail(ParseError::kBodyTooLarge, "CONTENT_LENGTH larger than limit_request_body");
  }
  start_body();
  return {Status::kNeedMore, *used};
}

void Parser::start_body() {
  // Called when the head is accepted: the framing is decided.
  Request& r = request_;
  head_done_ = true;
  if (r.upgrade && r.method == "CONNECT") {
    body_ = Body::kNone;  // what follows is the tunnel's, never a body
  } else if (r.chunked) {
    body_ = Body::kChunked;
    chunked_.reset();
  } else if (r.has_content_length && r.content_length > 0) {
    body_ = Body::kLength;
    body_left_ = r.content_length;
  } else {
    body_ = Body::kNone;  // RFC 9112 section 6.3: no framing, no body
  }
}

Parser::Result Parser::feed_length_body(const char* data, size_t length, size_t used) {
  size_t take = static_cast<size_t>(std::min<uint64_t>(body_left_, length - used));
  size_t before = request_.body.size();
  request_.body.append(data + used, take);
  used += take;
  body_left_ -= take;
  if (!count_body(before)) return fail(pending_error_, error_reason_);
  if (body_left_ > 0) return {Status::kNeedMore, used};
  return message_complete(used);
}

Parser::Result Parser::feed_chunked_body(const char* data, size_t length, size_t used) {
  size_t before = request_.body.size();
  ChunkedDecoder::Result c = chunked_.feed(data + used, length - used, request_.body);
  used += c.consumed;
  if (!count_body(before)) return fail(pending_error_, error_reason_);
  if (c.status == ChunkedDecoder::Status::kError) return fail(chunked_.error(), chunked_.reason());
  if (c.status == ChunkedDecoder::Status::kNeedMore) return {Status::kNeedMore, used};
  return message_complete(used);
}

Parser::Result Parser::message_complete(size_t used) {
  // Stop right after this request: pipelined bytes wait for next().
  in_message_ = false;
  message_done_ = true;
  return {Status::kRequestReady, used};
}

Parser::Result Parser::finish() {
  if (error_ != ParseError::kNone) return {Status::kError, 0};
  if (proxy_ && !proxy_->held().empty()) return fail(ParseError::kIncomplete, "connection closed mid-PROXY header");
  if (in_message_ && options_.uwsgi && !head_done_) {
    return fail(ParseError::kInvalidUwsgiPacket, "connection closed mid-uwsgi packet");
  }
  if (in_message_) return fail(ParseError::kIncomplete, "connection closed mid-request");
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
  force_close_ = false;
  body_bytes_ = 0;
  body_ = Body::kNone;
  body_left_ = 0;
  uwsgi_.reset();
}

}  // namespace cppgunicorn::http
