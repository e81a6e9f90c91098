// libFuzzer entry point for http::Parser in uwsgi mode (--protocol uwsgi):
// arbitrary bytes as a stream of packets. Besides crashes and sanitizer
// reports it checks that
//  * no byte outside a piece is read: every piece is copied into a heap
//    block of exactly its size, so ASan sees a read past it;
//  * a request comes only from a well-formed packet: a plain decoder of the
//    whole buffer (gunicorn's algorithm, written separately) must find a
//    complete packet of the same size, vars and body at that offset, and
//    the parser must refuse exactly where that decoder does;
//  * feeding the stream in random pieces gives what one feed gives.
//
// Input layout: byte 0 seeds the piece sizes, byte 1 picks the options
// (bit 0: a 64-byte limit_request_body; bits 1-7: the largest piece, 0 for
// 1..255 bytes); the rest is the stream.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "http/parser.h"
#include "http/uwsgi_parser.h"

using cppgunicorn::http::ParseError;
using cppgunicorn::http::Parser;
using cppgunicorn::http::ParserOptions;
using cppgunicorn::http::Request;

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

using Vars = std::vector<std::pair<std::string, std::string>>;

// What the whole buffer says from `at` on, decoded the plain way.
struct Reference {
  enum Verdict { kNeedMore, kComplete, kInvalid } verdict = kNeedMore;
  size_t size = 0;  // the whole packet with its body, when complete
  Vars vars;
  std::string body;
};

size_t le16(const uint8_t* p) { return static_cast<size_t>(p[0]) | (static_cast<size_t>(p[1]) << 8); }

Reference invalid() {
  Reference ref;
  ref.verdict = Reference::kInvalid;
  return ref;
}

Reference decode(const uint8_t* p, size_t n, uint64_t body_limit) {
  Reference ref;
  if (n >= 1 && p[0] != 0) return invalid();
  if (n < 4) return ref;
  size_t block = le16(p + 1);
  size_t have = std::min(block, n - 4);  // the block's bytes that arrived
  const uint8_t* b = p + 4;
  size_t pos = 0;
  std::string content_length;
  bool has_length = false;
  while (pos < block) {
    if (ref.vars.size() >= cppgunicorn::http::kMaxUwsgiVars) return invalid();
    // Each size: past the block is invalid whatever else arrives.
    if (pos + 2 > block) return invalid();
    if (pos + 2 > have) return ref;
    size_t key_size = le16(b + pos);
    pos += 2;
    if (pos + key_size > block) return invalid();
    if (pos + key_size > have) return ref;
    std::string key(reinterpret_cast<const char*>(b + pos), key_size);
    pos += key_size;
    if (pos + 2 > block) return invalid();
    if (pos + 2 > have) return ref;
    size_t value_size = le16(b + pos);
    pos += 2;
    if (pos + value_size > block) return invalid();
    if (pos + value_size > have) return ref;
    std::string value(reinterpret_cast<const char*>(b + pos), value_size);
    pos += value_size;
    if (key == "CONTENT_LENGTH") {
      content_length = value;
      has_length = true;
    }
    ref.vars.emplace_back(std::move(key), std::move(value));
  }
  uint64_t length = 0;
  if (has_length && !cppgunicorn::http::uwsgi_content_length(content_length, &length)) {
    return invalid();
  }
  if (body_limit && length > body_limit) return invalid();
  if (n - 4 - block < length) return ref;
  ref.verdict = Reference::kComplete;
  ref.size = 4 + block + static_cast<size_t>(length);
  ref.body.assign(reinterpret_cast<const char*>(p + 4 + block), static_cast<size_t>(length));
  return ref;
}

// The request must hold the packet's vars, each where the parser files it.
void check_against(const Request& r, const Reference& ref) {
  require(r.uwsgi && !r.keep_alive && r.close_requested);
  require(r.body == ref.body);
  size_t header = 0, cgi = 0;
  // As gunicorn: the last REQUEST_METHOD however empty, else GET.
  std::string request_uri, method = "GET";
  bool has_request_uri = false;
  for (const auto& [key, value] : ref.vars) {
    if (key.compare(0, 5, "HTTP_") == 0 || key == "CONTENT_TYPE" || key == "CONTENT_LENGTH") {
      require(header < r.headers.size() && r.headers[header].second == value);
      require(r.headers[header].first.size() == (key.compare(0, 5, "HTTP_") == 0 ? key.size() - 5 : key.size()));
      ++header;
      continue;
    }
    if (key.compare(0, 5, "wsgi.") == 0 && key != "wsgi.url_scheme") continue;
    require(cgi < r.cgi_vars.size() && r.cgi_vars[cgi].first == key && r.cgi_vars[cgi].second == value);
    ++cgi;
    if (key == "REQUEST_URI") {
      request_uri = value;
      has_request_uri = true;
    }
    if (key == "REQUEST_METHOD") method = value;
  }
  require(r.method == method);
  require(header == r.headers.size());
  // At most the scheme HTTPS on adds.
  require(cgi == r.cgi_vars.size() || (cgi + 1 == r.cgi_vars.size() &&
                                       r.cgi_vars.back().first == "wsgi.url_scheme" &&
                                       r.cgi_vars.back().second == "https"));
  if (has_request_uri && !request_uri.empty()) require(r.target == request_uri);
}

struct Outcome {
  std::vector<Request> requests;
  bool error = false;
  bool finish_error = false;
};

// Feeds `stream` in pieces from `next_piece`, each in a heap block of
// exactly its size; checks each request against the plain decoder.
template <typename NextPiece>
Outcome run(const uint8_t* stream, size_t size, const ParserOptions& options, NextPiece next_piece) {
  Parser parser(options);
  Outcome out;
  size_t request_start = 0;  // where the packet being read began
  size_t fed = 0;            // bytes of the stream handed to the parser
  std::string pending;       // what the parser has not taken yet
  while (fed < size || !pending.empty()) {
    size_t piece = std::min(next_piece(), size - fed);
    pending.append(reinterpret_cast<const char*>(stream + fed), piece);
    fed += piece;
    bool progressed = piece > 0;
    while (!pending.empty()) {
      auto block = std::make_unique<char[]>(pending.size());
      std::memcpy(block.get(), pending.data(), pending.size());
      auto r = parser.feed(block.get(), pending.size());
      require(r.consumed <= pending.size());
      if (r.status == Parser::Status::kError) {
        require(r.consumed == 0);
        require(parser.error() == ParseError::kInvalidUwsgiPacket ||
                parser.error() == ParseError::kBodyTooLarge);
        // The plain decoder, with the bytes the parser had, refuses too.
        Reference ref = decode(stream + request_start, fed - request_start, options.limits.request_body);
        require(ref.verdict == Reference::kInvalid);
        out.error = true;
        return out;
      }
      pending.erase(0, r.consumed);
      if (r.status == Parser::Status::kNeedMore) {
        require(pending.empty());  // a parser that needs more took everything
        break;
      }
      size_t end = fed - pending.size();
      Reference ref = decode(stream + request_start, end - request_start, options.limits.request_body);
      require(ref.verdict == Reference::kComplete && ref.size == end - request_start);
      check_against(parser.request(), ref);
      out.requests.push_back(parser.request());
      parser.next();
      request_start = end;
    }
    if (!progressed && fed >= size) break;
  }
  // Everything fed and nothing refused: the decoder agrees there is no
  // complete or invalid packet left, and the close ends it cleanly only
  // between packets.
  Reference ref = decode(stream + request_start, size - request_start, options.limits.request_body);
  require(ref.verdict == Reference::kNeedMore);
  out.finish_error = parser.finish().status == Parser::Status::kError;
  require(out.finish_error == (size > request_start));
  return out;
}

bool same_request(const Request& a, const Request& b) {
  return a.method == b.method && a.target == b.target && a.protocol == b.protocol &&
         a.headers == b.headers && a.cgi_vars == b.cgi_vars && a.body == b.body &&
         a.content_length == b.content_length && a.has_content_length == b.has_content_length;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  ParserOptions options;
  options.uwsgi = true;
  if (data[1] & 1) options.limits.request_body = 64;
  size_t max_piece = (data[1] >> 1) ? (data[1] >> 1) : 255;
  const uint8_t* stream = data + 2;
  size_t length = size - 2;

  Outcome whole = run(stream, length, options, [&] { return length; });
  uint32_t state = 0x9E3779B9u ^ data[0];
  Outcome split = run(stream, length, options, [&] {
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    return 1 + state % max_piece;
  });
  require(whole.error == split.error && whole.finish_error == split.finish_error);
  require(whole.requests.size() == split.requests.size());
  for (size_t i = 0; i < whole.requests.size(); ++i) {
    require(same_request(whole.requests[i], split.requests[i]));
  }
  return 0;
}
