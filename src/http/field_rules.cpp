// The request head after the request line: header lines read with
// gunicorn's rules (message.py parse_headers / set_body_reader) and RFC 9112,
// then the framing and whether the connection stays open. Part of Parser
// (parser.h).
#include <cctype>
#include <cstring>

#include "http/parser.h"

namespace cppgunicorn::http {

namespace {

// RFC 9110 section 5.5: a field value is VCHAR, obs-text, SP and HTAB only.
bool is_ctl(unsigned char c) { return (c < 0x20 && c != '\t') || c == 0x7F; }

bool is_ows(char c) { return c == ' ' || c == '\t'; }

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

// Calls f with each element of a comma-separated list, OWS trimmed.
template <typename F>
void for_each_token(std::string_view list, F f) {
  while (true) {
    size_t comma = list.find(',');
    f(trim_ows(list.substr(0, comma)));
    if (comma == std::string_view::npos) return;
    list.remove_prefix(comma + 1);
  }
}

// Fields that may appear only once (RFC 9110 section 5.3; RFC 9112 section
// 3.2 for Host): two copies are a smuggling or cache-poisoning vector.
bool is_singleton(std::string_view name) {
  return iequals(name, "host") || iequals(name, "content-type") || iequals(name, "content-length");
}

// RFC 9112 section 3.2 / RFC 3986 section 3.2.2: Host = uri-host [ ":" port ],
// uri-host = IP-literal / IPv4address / reg-name. Empty is allowed (a
// target without an authority).
bool valid_host(std::string_view host) {
  auto is_hex = [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; };
  auto reg_name_char = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
           std::string_view("-._~!$&'()*+,;=").find(c) != std::string_view::npos;
  };
  std::string_view port;
  if (!host.empty() && host.front() == '[') {
    size_t close = host.find(']');
    if (close == std::string_view::npos || close < 2) return false;
    for (char c : host.substr(1, close - 1)) {
      // IPv6address, or IPvFuture ("v" HEXDIG "." ...): hex digits, ':' and
      // '.', and what an IPvFuture may add.
      if (!is_hex(c) && !reg_name_char(c) && c != ':') return false;
    }
    std::string_view rest = host.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return false;
    port = rest.empty() ? rest : rest.substr(1);
  } else {
    size_t colon = host.rfind(':');
    std::string_view name = host.substr(0, colon);
    if (colon != std::string_view::npos) port = host.substr(colon + 1);
    for (size_t i = 0; i < name.size(); ++i) {
      char c = name[i];
      if (c == '%') {  // pct-encoded
        if (i + 2 >= name.size() || !is_hex(name[i + 1]) || !is_hex(name[i + 2])) return false;
        i += 2;
      } else if (!reg_name_char(c)) {
        return false;
      }
    }
  }
  for (char c : port) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace

bool Parser::head_error(ParseError error, std::string reason) {
  pending_error_ = error;
  if (error_reason_.empty()) error_reason_ = std::move(reason);
  return false;
}

Parser::Result Parser::feed_header_lines(const char* data, size_t length, size_t* used) {
  const Limits& limits = options_.limits;
  while (*used < length && reading_head_) {
    const char* start = data + *used;
    const void* nl = std::memchr(start, '\n', length - *used);
    size_t take = nl ? static_cast<size_t>(static_cast<const char*>(nl) - start) + 1 : length - *used;
    *used += take;
    std::string_view line = gather_line(start, take, nl != nullptr);
    // gunicorn counts a field's line(s) with their CRLFs against
    // limit_request_field_size; an unfinished line is refused as soon as it
    // cannot fit, so a head never grows without bound.
    size_t folded = line[0] == ' ' || line[0] == '\t' ? field_bytes_ : 0;
    if (limits.request_field_size && folded + line.size() > limits.request_field_size) {
      return fail(ParseError::kHeaderTooLarge, "header field is larger than limit_request_field_size");
    }
    if (!nl) break;
    // RFC 9112 section 2.2: every line of the head ends with CRLF; a bare
    // LF or a bare CR elsewhere is a framing difference between parsers.
    if (line.size() < 2 || line[line.size() - 2] != '\r') {
      return fail(ParseError::kBadRequest, "header line not ended by CRLF (bare LF)");
    }
    if (line.find('\r') != line.size() - 2) return fail(ParseError::kInvalidHeader, "bare CR in a header line");
    bool ok = take_header_line(line.substr(0, line.size() - 2));
    line_.clear();
    if (!ok) return fail(pending_error_, error_reason_);
    if (!reading_head_) {
      start_body();
      return {Status::kNeedMore, *used};
    }
  }
  return {Status::kNeedMore, *used};
}

bool Parser::take_header_line(std::string_view line) {
  const Limits& limits = options_.limits;
  if (line.empty()) {
    if (have_field_ && !finish_field()) return false;
    reading_head_ = false;
    return decide_framing();
  }
  if (is_ows(line[0])) {
    // obs-fold (RFC 9112 section 5.2): refused unless
    // permit_obsolete_folding, then replaced by one space.
    if (!options_.permit_obsolete_folding) return head_error(ParseError::kInvalidHeader, "obsolete line folding");
    if (!have_field_) return head_error(ParseError::kInvalidHeader, "continuation line before any header");
    field_bytes_ += line.size() + 2;
    field_value_ += ' ';
    field_value_.append(trim_ows(line));
    return true;
  }
  if (have_field_ && !finish_field()) return false;
  if (limits.request_fields && field_count_ >= limits.request_fields) {
    return head_error(ParseError::kTooManyHeaders, "more header fields than limit_request_fields");
  }
  size_t colon = line.find(':');
  if (colon == 0 || colon == std::string_view::npos) return head_error(ParseError::kInvalidHeader, "header line without a name and colon");
  std::string_view name = line.substr(0, colon);
  // RFC 9112 section 5.1: no whitespace between name and colon; gunicorn's
  // strip_header_spaces forgives it.
  if (options_.strip_header_spaces) {
    while (!name.empty() && is_ows(name.back())) name.remove_suffix(1);
  }
  if (name.empty()) return head_error(ParseError::kInvalidHeader, "empty header name");
  for (char c : name) {
    if (!is_tchar(static_cast<unsigned char>(c))) return head_error(ParseError::kInvalidHeader, "invalid character in a header name");
  }
  ++field_count_;
  field_name_.assign(name);
  field_value_.assign(trim_ows(line.substr(colon + 1)));
  field_bytes_ = line.size() + 2;
  have_field_ = true;
  return true;
}

bool Parser::is_forwarder_field(const std::string& name) const {
  if (!forwarder_trusted_) return false;
  for (const std::string& allowed : options_.forwarder_headers) {
    if (allowed == "*" || iequals(allowed, name)) return true;
  }
  return false;
}

bool Parser::finish_field() {
  have_field_ = false;
  const std::string& name = field_name_;
  const std::string& value = field_value_;
  for (char c : value) {
    if (is_ctl(static_cast<unsigned char>(c))) return head_error(ParseError::kInvalidHeader, "control character in a header value");
  }
  if (is_singleton(name)) {
    for (const auto& [k, v] : request_.headers) {
      if (iequals(k, name)) return head_error(ParseError::kInvalidHeader, "duplicate " + name + " header");
    }
  }
  if (iequals(name, "expect")) {
    // RFC 9110 section 10.1.1: 100-continue is the only expectation; a
    // server MUST ignore it in an HTTP/1.0 request. Others get 417.
    if (!iequals(value, "100-continue")) return head_error(ParseError::kExpectationFailed, "unsupported expectation");
    if (request_.http_minor >= 1) request_.expect_continue = true;
  }
  if (name.find('_') != std::string::npos && is_forwarder_field(name)) {
    // gunicorn: a trusted front-end's forwarder_headers go through whatever
    // header_map says; SCRIPT_NAME then sets the environ's SCRIPT_NAME.
    if (iequals(name, "script_name")) {
      request_.has_script_name = true;
      request_.script_name = value;
    }
  } else if (name.find('_') != std::string::npos) {
    // gunicorn's header_map: "X_Forwarded_For" would become the same
    // environ key as "X-Forwarded-For".
    switch (options_.header_map) {
      case HeaderMap::kDrop:
        return true;
      case HeaderMap::kRefuse:
        return head_error(ParseError::kInvalidHeader, "header name with an underscore (header_map=refuse)");
      case HeaderMap::kDangerous:
        break;
    }
  }
  request_.headers.emplace_back(name, value);
  return true;
}

bool Parser::decide_framing() {
  // RFC 9112 section 6 with gunicorn's set_body_reader rules.
  Request& r = request_;
  bool has_te = false;
  bool chunked = false;
  bool has_length = false;
  std::string_view content_length;
  bool close = false, keep_alive = false, upgrade_token = false, has_upgrade = false;
  int hosts = 0;
  for (const auto& [name, value] : r.headers) {
    if (iequals(name, "host")) {
      // RFC 9112 section 3.2: one Host, with a valid value (stricter than
      // gunicorn, as nginx and h2o are: see docs/http.md).
      if (++hosts > 1) return head_error(ParseError::kInvalidHeader, "more than one Host header");
      if (!valid_host(value)) return head_error(ParseError::kInvalidHeader, "invalid Host header");
    } else if (iequals(name, "connection") || iequals(name, "proxy-connection")) {
      // A comma-separated list of options (RFC 9110 section 7.6.1).
      for_each_token(value, [&](std::string_view option) {
        close |= iequals(option, "close");
        keep_alive |= iequals(option, "keep-alive");
        upgrade_token |= iequals(option, "upgrade");
      });
    } else if (iequals(name, "upgrade")) {
      has_upgrade = true;
    } else if (iequals(name, "content-length")) {
      has_length = true;
      content_length = value;
    } else if (iequals(name, "transfer-encoding")) {
      has_te = true;
      std::string_view list = value;
      while (true) {
        size_t comma = list.find(',');
        std::string_view coding = trim_ows(list.substr(0, comma));
        if (coding.empty()) {
          // RFC 9110 section 5.6.1: empty list elements do not count.
        } else if (iequals(coding, "chunked")) {
          // Stacked chunked codings are never meant: refuse them.
          if (chunked) return head_error(ParseError::kBodyFraming, "chunked applied twice");
          chunked = true;
        } else {
          // RFC 9112 sections 6.1 and 7: a coding we do not decode (gzip,
          // deflate, ...) gets 501 and never reaches the app.
          return head_error(ParseError::kUnsupportedEncoding, "unsupported transfer coding");
        }
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
      }
    }
  }
  // RFC 9112 section 9.3: HTTP/1.1 stays open unless "close"; HTTP/1.0
  // closes unless "keep-alive". A protocol switch (Upgrade named in
  // Connection, RFC 9110 section 7.8) or CONNECT ends the HTTP exchange.
  r.close_requested = r.http_minor >= 1 ? close : !keep_alive;
  r.keep_alive = !r.close_requested && !force_close_;
  r.upgrade = (has_upgrade && upgrade_token) || r.method == "CONNECT";
  if (hosts == 0 && r.http_minor >= 1) {
    return head_error(ParseError::kInvalidHeader, "HTTP/1.1 request without a Host header");
  }
  // RFC 9112 section 6.3: a request whose Transfer-Encoding does not end in
  // chunked has no knowable length: 400.
  if (has_te && !chunked) return head_error(ParseError::kBodyFraming, "Transfer-Encoding not ending in chunked");
  if (chunked) {
    // RFC 9112 section 6.1: HTTP/1.0 has no chunked coding, and
    // Content-Length beside Transfer-Encoding is a smuggling attempt.
    if (r.http_minor == 0) return head_error(ParseError::kBodyFraming, "chunked Transfer-Encoding in an HTTP/1.0 request");
    if (has_length) return head_error(ParseError::kBodyFraming, "both Content-Length and Transfer-Encoding");
    r.chunked = true;
  } else if (has_length) {
    // 1*DIGIT only: no sign, no list ("5, 5"), no whitespace inside.
    if (content_length.empty() || content_length.size() > 18) return head_error(ParseError::kBodyFraming, "invalid Content-Length");
    uint64_t n = 0;
    for (char c : content_length) {
      if (c < '0' || c > '9') return head_error(ParseError::kBodyFraming, "invalid Content-Length");
      n = n * 10 + static_cast<uint64_t>(c - '0');
    }
    r.has_content_length = true;
    r.content_length = n;
    if (options_.limits.request_body && n > options_.limits.request_body) {
      return head_error(ParseError::kBodyTooLarge, "Content-Length larger than limit_request_body");
    }
  }
  return true;
}

}  // namespace cppgunicorn::http
