// libFuzzer entry point for http::Parser: arbitrary bytes, cut into
// arbitrary pieces, under arbitrary parser options. Besides crashes and
// sanitizer reports it checks what the parser promises its callers, and
// that llhttp agrees on the framing of every request it accepts.
//
// Input layout: byte 0 picks the options (bit 0 obs-fold, 1 strip spaces,
// 2 unconventional methods, 3 casefold, 4-5 header_map, 6-7 PROXY mode),
// byte 1 the piece size (0: all at once), byte 2 small limits (bit 0) and a
// 64-byte body limit (bit 1); the rest is the stream.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "http/parser.h"
#include "llhttp_oracle.h"

using cppgunicorn::http::HeaderMap;
using cppgunicorn::http::Parser;
using cppgunicorn::http::ParserOptions;
using cppgunicorn::http::ProxyProtocol;

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

ParserOptions options_from(const uint8_t* p) {
  ParserOptions o;
  o.permit_obsolete_folding = p[0] & 0x01;
  o.strip_header_spaces = p[0] & 0x02;
  o.permit_unconventional_http_method = p[0] & 0x04;
  o.casefold_http_method = p[0] & 0x08;
  static constexpr HeaderMap kMaps[] = {HeaderMap::kDrop, HeaderMap::kRefuse, HeaderMap::kDangerous,
                                        HeaderMap::kDrop};
  o.header_map = kMaps[(p[0] >> 4) & 3];
  static constexpr ProxyProtocol kModes[] = {ProxyProtocol::kOff, ProxyProtocol::kV1,
                                             ProxyProtocol::kV2, ProxyProtocol::kAuto};
  o.proxy_protocol = kModes[p[0] >> 6];
  if (p[2] & 1) {
    o.limits.request_line = 64;
    o.limits.request_fields = 4;
    o.limits.request_field_size = 64;
  }
  if (p[2] & 2) o.limits.request_body = 64;
  return o;
}

// What every complete request must look like, whatever the input.
void check_request(Parser& parser, const ParserOptions& o) {
  const auto& r = parser.request();
  require(!r.method.empty() && !r.target.empty());
  require(r.protocol.size() == 8 && r.http_major == 1);
  require(!(r.chunked && r.has_content_length));
  require(!(r.chunked && r.http_minor == 0));
  // After CONNECT the bytes are a tunnel's, not a body: the head ends it.
  if (r.has_content_length && r.method != "CONNECT") require(r.body.size() == r.content_length);
  if (o.limits.request_body) require(r.body.size() <= o.limits.request_body);
  require(r.headers.size() <= o.limits.request_fields);
  for (const auto& [name, value] : r.headers) {
    require(!name.empty());
    for (char c : name) require(cppgunicorn::http::is_tchar(static_cast<unsigned char>(c)));
    if (o.header_map == HeaderMap::kDrop) require(name.find('_') == std::string::npos);
    for (char c : value) require(c != '\r' && c != '\n' && c != '\0');
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  ParserOptions options = options_from(data);
  size_t piece = data[1] ? data[1] : size;
  const char* stream = reinterpret_cast<const char*>(data + 3);
  size_t left = size - 3;
  Parser parser(options);
  parser.set_proxy_peer_allowed(data[1] & 1);
  std::string window;
  size_t pos = 0;
  int requests = 0;
  while (pos < left && requests < 64) {
    size_t take = std::min(piece, left - pos);
    window.append(stream + pos, take);
    pos += take;
    size_t used = 0;
    while (used < window.size()) {
      auto r = parser.feed(window.data() + used, window.size() - used);
      require(r.consumed <= window.size() - used);
      used += r.consumed;
      if (r.status == Parser::Status::kError) {
        require(parser.error() != cppgunicorn::http::ParseError::kNone);
        require(cppgunicorn::http::status_for(parser.error()) >= 400);
        return 0;
      }
      if (r.status == Parser::Status::kNeedMore) {
        require(used == window.size());
        break;
      }
      check_request(parser, options);
      cppgunicorn::fuzz::check_with_llhttp(parser.request());
      parser.next();
      ++requests;
    }
    window.erase(0, used);
  }
  parser.finish();
  return 0;
}
