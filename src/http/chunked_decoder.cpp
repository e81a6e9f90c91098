#include "http/chunked_decoder.h"

#include <cstring>
#include <string_view>

#include "http/request.h"

namespace cppgunicorn::http {

namespace {
constexpr size_t kMaxLine = 4096;          // a chunk-size line or a trailer line
constexpr size_t kMaxTrailerBytes = 65536;

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_tchar(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  if (std::isalnum(u)) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool forbidden_in_trailer(std::string_view name) {
  // RFC 9110 section 6.5.1: framing, routing and the trailer's own fields.
  static constexpr std::string_view kNames[] = {"content-length", "transfer-encoding", "host",
                                                "trailer", "te"};
  for (std::string_view n : kNames) {
    if (iequals(name, n)) return true;
  }
  return false;
}
}  // namespace

void ChunkedDecoder::reset() {
  state_ = State::kSizeLine;
  line_.clear();
  remaining_ = 0;
  trailer_bytes_ = 0;
  error_ = ParseError::kNone;
  reason_.clear();
}

ChunkedDecoder::Result ChunkedDecoder::fail(ParseError e, const char* why, size_t consumed) {
  error_ = e;
  reason_ = why;
  return {Status::kError, consumed};
}

bool ChunkedDecoder::parse_size_line(std::string_view line) {
  // chunk-size [ BWS ";" chunk-ext ]: whitespace is allowed only before ";".
  size_t semi = line.find(';');
  std::string_view size = line.substr(0, semi);
  if (semi != std::string_view::npos) {
    while (!size.empty() && (size.back() == ' ' || size.back() == '\t')) size.remove_suffix(1);
    for (char c : line.substr(semi)) {
      unsigned char u = static_cast<unsigned char>(c);
      if ((u < 0x20 && c != '\t') || u == 0x7F) {
        error_ = ParseError::kInvalidChunk;
        reason_ = "invalid character in a chunk extension";
        return false;
      }
    }
  }
  if (size.empty() || size.size() > 16) {
    error_ = ParseError::kInvalidChunk;
    reason_ = "invalid chunk size";
    return false;
  }
  uint64_t n = 0;
  for (char c : size) {
    int d = hex_digit(c);
    if (d < 0) {
      error_ = ParseError::kInvalidChunk;
      reason_ = "invalid chunk size";
      return false;
    }
    n = n * 16 + static_cast<uint64_t>(d);
  }
  remaining_ = n;
  return true;
}

bool ChunkedDecoder::check_trailer_line(std::string_view line) {
  size_t colon = line.find(':');
  if (colon == 0 || colon == std::string_view::npos) {
    error_ = ParseError::kInvalidHeader;
    reason_ = "malformed trailer field";
    return false;
  }
  std::string_view name = line.substr(0, colon);
  for (char c : name) {
    if (!is_tchar(c)) {
      error_ = ParseError::kInvalidHeader;
      reason_ = "invalid trailer field name";
      return false;
    }
  }
  for (char c : line.substr(colon + 1)) {
    unsigned char u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7F) {
      error_ = ParseError::kInvalidHeader;
      reason_ = "control character in a trailer field";
      return false;
    }
  }
  if (forbidden_in_trailer(name)) {
    error_ = ParseError::kInvalidHeader;
    reason_ = "field not allowed in a trailer section";
    return false;
  }
  return true;
}

ChunkedDecoder::Result ChunkedDecoder::feed(const char* data, size_t length, std::string& body) {
  size_t pos = 0;
  while (pos < length) {
    switch (state_) {
      case State::kData: {
        size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, length - pos));
        body.append(data + pos, take);
        pos += take;
        remaining_ -= take;
        if (remaining_ == 0) state_ = State::kDataEnd;
        break;
      }
      case State::kDataEnd: {
        // Exactly CRLF after chunk-data.
        line_.push_back(data[pos++]);
        if (line_.size() == 1 && line_[0] != '\r') return fail(ParseError::kInvalidChunk, "expected CRLF after chunk data", pos);
        if (line_.size() == 2) {
          if (line_[1] != '\n') return fail(ParseError::kInvalidChunk, "expected CRLF after chunk data", pos);
          line_.clear();
          state_ = State::kSizeLine;
        }
        break;
      }
      case State::kSizeLine:
      case State::kTrailerLine: {
        const void* nl = std::memchr(data + pos, '\n', length - pos);
        size_t take = nl ? static_cast<size_t>(static_cast<const char*>(nl) - (data + pos)) + 1 : length - pos;
        line_.append(data + pos, take);
        pos += take;
        if (line_.size() > kMaxLine) return fail(ParseError::kInvalidChunk, "chunk line too long", pos);
        if (!nl) break;
        if (line_.size() < 2 || line_[line_.size() - 2] != '\r' || line_.find('\r') != line_.size() - 2) {
          return fail(state_ == State::kSizeLine ? ParseError::kInvalidChunk : ParseError::kInvalidHeader,
                      "bare CR or LF in chunked framing", pos);
        }
        std::string_view line(line_.data(), line_.size() - 2);
        if (state_ == State::kSizeLine) {
          if (!parse_size_line(line)) return {Status::kError, pos};
          state_ = remaining_ == 0 ? State::kTrailerLine : State::kData;
        } else if (line.empty()) {
          state_ = State::kDone;
          line_.clear();
          return {Status::kDone, pos};
        } else {
          trailer_bytes_ += line_.size();
          if (trailer_bytes_ > kMaxTrailerBytes) return fail(ParseError::kHeaderTooLarge, "trailer section too large", pos);
          if (!check_trailer_line(line)) return {Status::kError, pos};
        }
        line_.clear();
        break;
      }
      case State::kDone:
        return {Status::kDone, pos};
    }
  }
  return {Status::kNeedMore, pos};
}

}  // namespace cppgunicorn::http
