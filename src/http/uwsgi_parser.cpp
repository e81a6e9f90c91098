#include "http/uwsgi_parser.h"

#include <algorithm>
#include <string_view>

namespace cppgunicorn::http {

namespace {

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

}  // namespace

bool uwsgi_content_length(const std::string& value, uint64_t* length) {
  // Python's int() on a str: surrounding whitespace, one sign, digits
  // (single underscores between them too, which no front-end sends).
  *length = 0;
  std::string_view v = value;
  while (!v.empty() && is_space(v.front())) v.remove_prefix(1);
  while (!v.empty() && is_space(v.back())) v.remove_suffix(1);
  bool negative = false;
  if (!v.empty() && (v.front() == '+' || v.front() == '-')) {
    negative = v.front() == '-';
    v.remove_prefix(1);
  }
  if (v.empty()) return true;  // not a number: 0, as gunicorn
  uint64_t n = 0;
  size_t digits = 0;
  bool after_digit = false;
  for (char c : v) {
    if (c == '_' && after_digit) {
      after_digit = false;
      continue;
    }
    if (c < '0' || c > '9') return true;  // not a number: 0
    if (++digits > 18) {
      if (negative) return true;  // max(int(...), 0)
      return false;
    }
    n = n * 10 + static_cast<uint64_t>(c - '0');
    after_digit = true;
  }
  if (!after_digit) return true;  // a trailing '_': not a number
  *length = negative ? 0 : n;
  return true;
}

void UwsgiHeadDecoder::reset() {
  state_ = State::kHeader;
  header_got_ = 0;
  block_left_ = 0;
  size_got_ = 0;
  field_size_ = 0;
  key_.clear();
  value_.clear();
  var_count_ = 0;
  path_info_.clear();
  query_string_.clear();
  request_uri_.clear();
  have_path_info_ = have_query_ = have_request_uri_ = have_method_ = false;
  content_length_.clear();
  have_content_length_ = false;
  reason_.clear();
}

UwsgiHeadDecoder::Result UwsgiHeadDecoder::fail(std::string reason, size_t used) {
  state_ = State::kError;
  reason_ = std::move(reason);
  return {Status::kError, used};
}

// Each refusal is made as soon as the bytes seen decide it, not when the
// rest of the packet has arrived: the outcome is the same, sooner.
bool UwsgiHeadDecoder::start_var(Request& request) {
  key_.clear();
  value_.clear();
  size_got_ = 0;
  field_size_ = 0;
  if (block_left_ == 0) {
    // The block ends between two vars: the head is complete.
    if (!finish_head(request)) return false;
    state_ = State::kDone;
    return true;
  }
  // gunicorn refuses the 1001st var.
  if (var_count_ >= kMaxUwsgiVars) {
    reason_ = "more than 1000 uwsgi vars";
    return false;
  }
  if (block_left_ < 2) {
    reason_ = "truncated uwsgi key size";
    return false;
  }
  state_ = State::kKeySize;
  return true;
}

bool UwsgiHeadDecoder::field_done(Request& request) {
  if (state_ == State::kKey) {
    if (block_left_ < 2) {
      reason_ = "truncated uwsgi value size";
      return false;
    }
    state_ = State::kValueSize;
    size_got_ = 0;
    field_size_ = 0;
    return true;
  }
  take_var(request);
  ++var_count_;
  return start_var(request);
}

UwsgiHeadDecoder::Result UwsgiHeadDecoder::feed(const char* data, size_t length, Request& request) {
  if (state_ == State::kError) return {Status::kError, 0};
  if (state_ == State::kDone) return {Status::kDone, 0};
  size_t used = 0;
  while (used < length) {
    switch (state_) {
      case State::kHeader: {
        header_[header_got_++] = static_cast<unsigned char>(data[used++]);
        // gunicorn serves modifier1 0 (a WSGI request) only.
        if (header_got_ == 1 && header_[0] != 0) {
          return fail("unsupported uwsgi modifier1 " + std::to_string(header_[0]), used);
        }
        if (header_got_ < 4) break;
        block_left_ = static_cast<size_t>(header_[1]) | (static_cast<size_t>(header_[2]) << 8);
        request.clear();
        request.uwsgi = true;
        if (!start_var(request)) return fail(reason_, used);
        if (state_ == State::kDone) return {Status::kDone, used};
        break;
      }
      case State::kKeySize:
      case State::kValueSize: {
        field_size_ |= static_cast<size_t>(static_cast<unsigned char>(data[used++])) << (8 * size_got_);
        --block_left_;
        if (++size_got_ < 2) break;
        // A key or value that runs past the block is refused as soon as its
        // size says so.
        if (field_size_ > block_left_) {
          return fail(state_ == State::kKeySize ? "uwsgi key runs past the packet"
                                                : "uwsgi value runs past the packet",
                      used);
        }
        state_ = state_ == State::kKeySize ? State::kKey : State::kValue;
        if (field_size_ > 0) break;
        if (!field_done(request)) return fail(reason_, used);
        if (state_ == State::kDone) return {Status::kDone, used};
        break;
      }
      case State::kKey:
      case State::kValue: {
        std::string& into = state_ == State::kKey ? key_ : value_;
        size_t take = std::min(field_size_ - into.size(), length - used);
        into.append(data + used, take);
        used += take;
        block_left_ -= take;
        if (into.size() < field_size_) break;
        if (!field_done(request)) return fail(reason_, used);
        if (state_ == State::kDone) return {Status::kDone, used};
        break;
      }
      case State::kDone:
      case State::kError:
        return {Status::kError, used};
    }
  }
  return {Status::kNeedMore, used};
}

void UwsgiHeadDecoder::take_var(Request& request) {
  // A dict in gunicorn: the last of two equal keys wins. Header fields
  // are repeated as any, and joined by the environ.
  std::string_view key = key_;
  if (starts_with(key, "HTTP_")) {
    // gunicorn's mapping back to a field name: HTTP_X_FORWARDED_FOR is
    // X-FORWARDED-FOR (the environ turns it into HTTP_X_FORWARDED_FOR again).
    std::string name(key.substr(5));
    std::replace(name.begin(), name.end(), '_', '-');
    request.headers.emplace_back(std::move(name), std::move(value_));
    return;
  }
  if (key == "CONTENT_TYPE") {
    request.headers.emplace_back("CONTENT-TYPE", std::move(value_));
    return;
  }
  if (key == "CONTENT_LENGTH") {
    content_length_ = value_;
    have_content_length_ = true;
    request.headers.emplace_back("CONTENT-LENGTH", std::move(value_));
    return;
  }
  if (key == "REQUEST_METHOD") {
    request.method = value_;
    have_method_ = true;
  } else if (key == "PATH_INFO") {
    path_info_ = value_;
    have_path_info_ = true;
  } else if (key == "QUERY_STRING") {
    query_string_ = value_;
    have_query_ = true;
  } else if (key == "REQUEST_URI") {
    request_uri_ = value_;
    have_request_uri_ = true;
  } else if (key == "SERVER_PROTOCOL") {
    request.protocol = value_;
  } else if (starts_with(key, "wsgi.")) {
    // The server's own entries (wsgi.input...) are not the front-end's to
    // replace; gunicorn honours only wsgi.url_scheme.
    if (key == "wsgi.url_scheme") request.cgi_vars.emplace_back(key_, std::move(value_));
    return;
  }
  request.cgi_vars.emplace_back(key_, std::move(value_));
}

bool UwsgiHeadDecoder::finish_head(Request& request) {
  if (!have_method_) request.method = "GET";
  // RAW_URI: the target as the client sent it, when the front-end passes
  // it (nginx's REQUEST_URI); else the path and query it does pass.
  if (have_request_uri_ && !request_uri_.empty()) {
    request.target = request_uri_;
  } else {
    request.target = have_path_info_ ? path_info_ : "/";
    if (have_query_ && !query_string_.empty()) {
      request.target += '?';
      request.target += query_string_;
    }
  }
  if (request.protocol.empty()) request.protocol = "HTTP/1.1";
  // The response goes back as HTTP/1.1 (as gunicorn's) whatever the client
  // spoke to the front-end, and the close ends it.
  request.http_major = 1;
  request.http_minor = 1;
  request.keep_alive = false;
  // Nothing follows a packet and its body: the front-end waits for the
  // close (RFC 9112 section 9.6's "close" in effect).
  request.close_requested = true;
  // gunicorn: HTTPS on/1/true makes the scheme https, else a
  // wsgi.url_scheme var names it. Set last, so it wins.
  for (auto it = request.cgi_vars.rbegin(); it != request.cgi_vars.rend(); ++it) {
    if (it->first != "HTTPS") continue;  // the last one, as in a dict
    std::string lower;
    for (char c : it->second) lower += static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
    if (lower == "on" || lower == "1" || lower == "true") {
      request.cgi_vars.emplace_back("wsgi.url_scheme", "https");
    }
    break;
  }
  if (have_content_length_) {
    uint64_t n = 0;
    if (!uwsgi_content_length(content_length_, &n)) {
      reason_ = "uwsgi CONTENT_LENGTH out of range";
      return false;
    }
    // nginx sends an empty CONTENT_LENGTH for a request without a body.
    request.has_content_length = !content_length_.empty();
    request.content_length = n;
  }
  return true;
}

}  // namespace cppgunicorn::http
