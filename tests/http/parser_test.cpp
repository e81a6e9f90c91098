#include "http/parser.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using cppgunicorn::http::ParseError;
using cppgunicorn::http::Parser;
using cppgunicorn::http::Request;

namespace {

// Feeds `bytes` whole and collects every complete request, as a connection
// does: parse, take the request, next(), continue with the rest.
struct Fed {
  std::vector<Request> requests;
  ParseError error = ParseError::kNone;
};

Fed feed_with(const std::string& bytes, const cppgunicorn::http::ParserOptions& options,
              size_t piece = 0) {
  Parser parser(options);
  Fed out;
  size_t step = piece ? piece : bytes.size();
  std::string window;
  for (size_t pos = 0; pos < bytes.size(); pos += step) {
    window.append(bytes, pos, step);
    size_t used = 0;
    while (used < window.size()) {
      auto r = parser.feed(window.data() + used, window.size() - used);
      used += r.consumed;
      if (r.status == Parser::Status::kError) {
        out.error = parser.error();
        return out;
      }
      if (r.status == Parser::Status::kNeedMore) break;
      out.requests.push_back(parser.request());
      parser.next();
    }
    window.erase(0, used);
  }
  return out;
}

Fed feed_all(const std::string& bytes, size_t piece = 0, cppgunicorn::http::Limits limits = {}) {
  cppgunicorn::http::ParserOptions options;
  options.limits = limits;
  return feed_with(bytes, options, piece);
}

}  // namespace

TEST_CASE("a simple GET becomes one request with method, target, version and headers") {
  auto fed = feed_all("GET /a/b?x=1 HTTP/1.1\r\nHost: example.com\r\nX-Thing:  v  \r\n\r\n");
  REQUIRE(fed.error == ParseError::kNone);
  REQUIRE(fed.requests.size() == 1);
  const Request& r = fed.requests[0];
  CHECK(r.method == "GET");
  CHECK(r.target == "/a/b?x=1");
  CHECK(r.path() == "/a/b");
  CHECK(r.query() == "x=1");
  CHECK(r.protocol == "HTTP/1.1");
  REQUIRE(r.headers.size() == 2);
  CHECK(r.headers[0].first == "Host");
  CHECK(r.headers[1].second == "v");  // surrounding whitespace is not part of the value
  CHECK(r.keep_alive);
}

TEST_CASE("bytes arriving one at a time give the same request") {
  auto fed = feed_all("POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello", 1);
  REQUIRE(fed.requests.size() == 1);
  CHECK(fed.requests[0].body == "hello");
  CHECK(fed.requests[0].has_content_length);
  CHECK(fed.requests[0].content_length == 5);
}

TEST_CASE("pipelined requests are returned one at a time, in order") {
  auto fed = feed_all(
      "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n"
      "POST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
      "GET /3 HTTP/1.1\r\nHost: h\r\n\r\n");
  REQUIRE(fed.requests.size() == 3);
  CHECK(fed.requests[0].target == "/1");
  CHECK(fed.requests[1].target == "/2");
  CHECK(fed.requests[1].body == "abc");
  CHECK(fed.requests[2].target == "/3");
}

TEST_CASE("a chunked body is de-chunked, trailers and extensions included") {
  auto fed = feed_all(
      "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: x\r\n\r\n");
  REQUIRE(fed.error == ParseError::kNone);
  REQUIRE(fed.requests.size() == 1);
  CHECK(fed.requests[0].body == "hello world");
  CHECK(fed.requests[0].chunked);
}

TEST_CASE("HTTP/1.0 is close by default and keep-alive on request") {
  auto closing = feed_all("GET / HTTP/1.0\r\n\r\n");
  REQUIRE(closing.requests.size() == 1);
  CHECK(closing.requests[0].protocol == "HTTP/1.0");
  CHECK_FALSE(closing.requests[0].keep_alive);
  auto kept = feed_all("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  CHECK(kept.requests[0].keep_alive);
  auto close11 = feed_all("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
  CHECK_FALSE(close11.requests[0].keep_alive);
}

TEST_CASE("Connection is a list of options; Upgrade needs its option; CONNECT ends the exchange") {
  auto listed = feed_all("GET / HTTP/1.1\r\nHost: h\r\nConnection: TE, Close\r\n\r\n");
  CHECK_FALSE(listed.requests[0].keep_alive);
  auto kept10 = feed_all("GET / HTTP/1.0\r\nConnection: Upgrade ,keep-alive\r\n\r\n");
  CHECK(kept10.requests[0].keep_alive);
  CHECK_FALSE(kept10.requests[0].upgrade);  // no Upgrade field
  auto closed = feed_all("GET / HTTP/1.1\r\nHost: h\r\nConnection: closed\r\n\r\n");
  CHECK(closed.requests[0].keep_alive);  // "closed" is not "close"
  auto upgrade = feed_all("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n");
  CHECK(upgrade.requests[0].upgrade);
  auto announced = feed_all("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\n\r\n");
  CHECK_FALSE(announced.requests[0].upgrade);
  // CONNECT has no body whatever it says: what follows is the tunnel's.
  auto connect = feed_all("CONNECT h:443 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc");
  REQUIRE(connect.requests.size() == 1);
  CHECK(connect.requests[0].upgrade);
  CHECK(connect.requests[0].body.empty());
}

TEST_CASE("a Content-Length body is read to its length, in any pieces, and no further") {
  std::string two = "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\nHost: h\r\n\r\n";
  for (size_t piece : {0, 1, 3, 7}) {
    CAPTURE(piece);
    auto fed = feed_all(two, piece);
    REQUIRE(fed.requests.size() == 2);
    CHECK(fed.requests[0].body == "hello");
    CHECK(fed.requests[1].target == "/b");
    CHECK(fed.requests[1].body.empty());
  }
  Parser parser;
  std::string head = "PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nab";
  auto r = parser.feed(head.data(), head.size());
  CHECK(r.status == Parser::Status::kNeedMore);
  CHECK(parser.awaiting_body());
  CHECK(parser.finish().status == Parser::Status::kError);  // closed mid-body
  CHECK(parser.error() == ParseError::kIncomplete);
}

TEST_CASE("header names with an underscore are dropped (gunicorn's header_map=drop)") {
  auto fed = feed_all("GET / HTTP/1.1\r\nHost: h\r\nX_Forwarded_For: evil\r\nX-Real: ok\r\n\r\n");
  REQUIRE(fed.requests.size() == 1);
  REQUIRE(fed.requests[0].headers.size() == 2);
  CHECK(fed.requests[0].headers[1].first == "X-Real");
}

TEST_CASE("repeated headers are all kept in order") {
  auto fed = feed_all("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nA: 3\r\n\r\n");
  REQUIRE(fed.requests[0].headers.size() == 4);
  CHECK(fed.requests[0].header("a") == "1");
}

TEST_CASE("malformed input is rejected with a reason") {
  CHECK(feed_all("GET / HTTP/1.1\r\nHost: h\r\nBad Header: x\r\n\r\n").error == ParseError::kInvalidHeader);
  CHECK(feed_all("GET / HTTP/1.1\r\nHost: h\r\nX: a\x01z\r\n\r\n").error == ParseError::kInvalidHeader);
  CHECK(feed_all("G@T / HTTP/1.1\r\nHost: h\r\n\r\n").error != ParseError::kNone);
  CHECK(feed_all("GET / HTTP/2.0\r\n\r\n").error == ParseError::kVersionNotSupported);
  CHECK(feed_all("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n")
            .error != ParseError::kNone);
  CHECK(feed_all("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd").error !=
        ParseError::kNone);
  CHECK(feed_all("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").error ==
        ParseError::kInvalidChunk);
}

TEST_CASE("limits answer with their own errors") {
  cppgunicorn::http::Limits limits;
  limits.request_line = 20;
  CHECK(feed_all("GET /" + std::string(40, 'a') + " HTTP/1.1\r\nHost: h\r\n\r\n", 0, limits).error ==
        ParseError::kRequestLineTooLong);
  limits = {};
  limits.request_fields = 2;
  CHECK(feed_all("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", 0, limits).error ==
        ParseError::kTooManyHeaders);
  limits = {};
  limits.request_field_size = 16;
  CHECK(feed_all("GET / HTTP/1.1\r\nHost: h\r\nA: " + std::string(30, 'x') + "\r\n\r\n", 0, limits).error ==
        ParseError::kHeaderTooLarge);
}

TEST_CASE("a connection closed mid-request is incomplete; between requests it is not") {
  Parser p;
  auto r = p.feed("GET / HTTP/1.1\r\nHost", 20);
  CHECK(r.status == Parser::Status::kNeedMore);
  CHECK(p.finish().status == Parser::Status::kError);
  CHECK(p.error() == ParseError::kIncomplete);
  Parser q;
  CHECK(q.finish().status == Parser::Status::kNeedMore);
}

TEST_CASE("percent-decoding keeps malformed escapes") {
  using cppgunicorn::http::percent_decode;
  CHECK(percent_decode("/a%20b%2Fc") == "/a b/c");
  CHECK(percent_decode("/%zz%4") == "/%zz%4");
  CHECK(percent_decode("%e9") == std::string("\xe9"));
}

TEST_CASE("the request line follows gunicorn's rules (any token method), not llhttp's method list") {
  auto custom = feed_all("PURGE_ALL /x HTTP/1.1\r\nHost: h\r\n\r\n");
  REQUIRE(custom.requests.size() == 1);
  CHECK(custom.requests[0].method == "PURGE_ALL");
  auto raw_utf8 = feed_all("GET /\xc3\xa0%20k HTTP/1.0\r\n\r\n");
  REQUIRE(raw_utf8.requests.size() == 1);
  CHECK(raw_utf8.requests[0].target == "/\xc3\xa0%20k");
  CHECK(feed_all("get / HTTP/1.1\r\nHost: h\r\n\r\n").error == ParseError::kInvalidMethod);
  CHECK(feed_all("GE / HTTP/1.1\r\nHost: h\r\n\r\n").error == ParseError::kInvalidMethod);
  CHECK(feed_all("GET: / HTTP/1.1\r\nHost: h\r\n\r\n").error == ParseError::kInvalidMethod);
  CHECK(feed_all("GET foo/bar HTTP/1.1\r\nHost: h\r\n\r\n").error == ParseError::kBadRequest);
  CHECK(feed_all("GET /  HTTP/1.1\r\nHost: h\r\n\r\n").error == ParseError::kInvalidVersion);
  CHECK(feed_all("GET / HTTP/0.99\r\n\r\n").error == ParseError::kInvalidVersion);
  CHECK(feed_all("GET / HTTP/1.1\n\n").error == ParseError::kBadRequest);
  CHECK(feed_all("PUT s://]ufd/: HTTP/1.1\r\nHost: h\r\n\r\n").error == ParseError::kBadRequest);
  auto absolute = feed_all("GET http://[::1]:8080/foo HTTP/1.1\r\nHost: h\r\n\r\n");
  REQUIRE(absolute.requests.size() == 1);
  auto connect = feed_all("CONNECT example.com:443 HTTP/1.1\r\nHost: h\r\n\r\n");
  REQUIRE(connect.requests.size() == 1);
  CHECK(connect.requests[0].upgrade);
  auto leading_crlf = feed_all("\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");
  CHECK(leading_crlf.requests.size() == 1);
  CHECK(feed_all("GET / HTTP/1.9\r\nHost: h\r\n\r\n").requests[0].protocol == "HTTP/1.9");
}

TEST_CASE("chunked bodies: extensions with whitespace, quoted values, many zeros; strict sizes") {
  auto ext = feed_all(
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5; some; parameters=stuff\r\nhello\r\n6 ;q=\"a b\"\r\n world\r\n000\r\n\r\n");
  REQUIRE(ext.requests.size() == 1);
  CHECK(ext.requests[0].body == "hello world");
  auto upper = feed_all("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n");
  CHECK(upper.requests[0].body == "0123456789");
  CHECK(feed_all("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n").error ==
        ParseError::kInvalidChunk);
  CHECK(feed_all("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n 5\r\nhello\r\n0\r\n\r\n").error ==
        ParseError::kInvalidChunk);
  CHECK(feed_all("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;a\rb\r\nhello\r\n0\r\n\r\n").error ==
        ParseError::kInvalidChunk);
  CHECK(feed_all("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n").error ==
        ParseError::kInvalidChunk);
  CHECK(feed_all("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nContent-Length: 9\r\n\r\n").error ==
        ParseError::kInvalidHeader);
  CHECK(feed_all("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n").error ==
        ParseError::kBodyFraming);
  CHECK(feed_all("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n").error !=
        ParseError::kNone);
}

TEST_CASE("a chunked request fed byte by byte, followed by a pipelined one") {
  auto fed = feed_all(
      "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"
      "GET /b HTTP/1.1\r\nHost: h\r\n\r\n", 1);
  REQUIRE(fed.error == ParseError::kNone);
  REQUIRE(fed.requests.size() == 2);
  CHECK(fed.requests[0].body == "abc");
  CHECK(fed.requests[1].target == "/b");
}

TEST_CASE("duplicate Host or Content-Type is refused") {
  CHECK(feed_all("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").error == ParseError::kInvalidHeader);
  CHECK(feed_all("GET / HTTP/1.1\r\nHost: h\r\nContent-Type: a\r\nContent-Type: b\r\n\r\n").error ==
        ParseError::kInvalidHeader);
}


TEST_CASE("gunicorn's permissive switches: obs-fold, spaces before the colon, methods") {
  cppgunicorn::http::ParserOptions o;
  CHECK(feed_with("GET / HTTP/1.1\r\nHost: h\r\nA: one\r\n two\r\n\r\n", o).error == ParseError::kInvalidHeader);
  CHECK(feed_with("GET / HTTP/1.1\r\nHost: h\r\nA : one\r\n\r\n", o).error == ParseError::kInvalidHeader);
  CHECK(feed_with("get / HTTP/1.1\r\nHost: h\r\n\r\n", o).error == ParseError::kInvalidMethod);
  o.permit_obsolete_folding = true;
  o.strip_header_spaces = true;
  o.permit_unconventional_http_method = true;
  auto folded = feed_with("GET / HTTP/1.1\r\nHost: h\r\nA: one\r\n\t two \r\nB : 2\r\n\r\n", o, 1);
  REQUIRE(folded.requests.size() == 1);
  CHECK(folded.requests[0].header("a") == "one two");
  CHECK(folded.requests[0].header("b") == "2");
  auto lower = feed_with("get / HTTP/1.1\r\nHost: h\r\n\r\n", o);
  REQUIRE(lower.requests.size() == 1);
  CHECK(lower.requests[0].method == "get");
  o.casefold_http_method = true;
  CHECK(feed_with("get / HTTP/1.1\r\nHost: h\r\n\r\n", o).requests[0].method == "GET");
}

TEST_CASE("header_map: drop, refuse or keep names with an underscore") {
  cppgunicorn::http::ParserOptions o;
  std::string req = "GET / HTTP/1.1\r\nHost: h\r\nX_Y: 1\r\n\r\n";
  CHECK(feed_with(req, o).requests[0].headers.size() == 1);  // Host only
  o.header_map = cppgunicorn::http::HeaderMap::kRefuse;
  CHECK(feed_with(req, o).error == ParseError::kInvalidHeader);
  o.header_map = cppgunicorn::http::HeaderMap::kDangerous;
  CHECK(feed_with(req, o).requests[0].header("x_y") == "1");
}

TEST_CASE("forwarder_headers pass only from a trusted peer, and SCRIPT_NAME is noted") {
  cppgunicorn::http::ParserOptions o;
  o.header_map = cppgunicorn::http::HeaderMap::kRefuse;
  std::string head = "GET /app/x HTTP/1.1\r\nHost: h\r\nSCRIPT_NAME: /app\r\nPATH_INFO: /p\r\n\r\n";
  Parser trusted(o);
  trusted.set_forwarder_trusted(true);
  auto r = trusted.feed(head.data(), head.size());
  REQUIRE(r.status == Parser::Status::kRequestReady);
  CHECK(trusted.request().headers.size() == 3);
  CHECK(trusted.request().has_script_name);
  CHECK(trusted.request().script_name == "/app");
  Parser untrusted(o);
  CHECK(untrusted.feed(head.data(), head.size()).status == Parser::Status::kError);
  o.forwarder_headers = {"PATH_INFO"};
  Parser narrower(o);
  narrower.set_forwarder_trusted(true);
  CHECK(narrower.feed(head.data(), head.size()).status == Parser::Status::kError);
}

TEST_CASE("PROXY v1 and v2 headers name the client; absent ones change nothing") {
  cppgunicorn::http::ParserOptions o;
  o.proxy_protocol = cppgunicorn::http::ProxyProtocol::kAuto;
  Parser v1(o);
  std::string a = "PROXY TCP4 10.0.0.1 10.0.0.2 1234 80\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
  for (size_t i = 0; i < a.size(); ++i) {
    auto r = v1.feed(a.data() + i, 1);
    if (i + 1 < a.size()) REQUIRE(r.status == Parser::Status::kNeedMore);
    else CHECK(r.status == Parser::Status::kRequestReady);
  }
  CHECK(v1.proxy_info().client_addr == "10.0.0.1");
  CHECK(v1.proxy_info().client_port == "1234");
  std::string sig("\r\n\r\n\0\r\nQUIT\n", 12);
  std::string v2 = sig + std::string("\x21\x11\x00\x0c\x0a\x00\x00\x07\x0a\x00\x00\x08\x00\x50\x00\x51", 16) +
                   "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
  Parser p2(o);
  CHECK(p2.feed(v2.data(), v2.size()).status == Parser::Status::kRequestReady);
  CHECK(p2.proxy_info().client_addr == "10.0.0.7");
  CHECK(p2.proxy_info().client_port == "80");
  CHECK(feed_with("GET / HTTP/1.1\r\nHost: h\r\n\r\n", o, 1).requests.size() == 1);
  CHECK(feed_with("PROXY TCP4 1.2.3.4 5.6.7.8 65iii 10\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", o).error ==
        ParseError::kInvalidProxy);
  Parser forbidden(o);
  forbidden.set_proxy_peer_allowed(false);
  CHECK(forbidden.feed(a.data(), a.size()).status == Parser::Status::kError);
  CHECK(forbidden.error() == ParseError::kForbiddenProxy);
  CHECK(cppgunicorn::http::address_allowed("10.1.2.3", {"10.0.0.0/8"}));
  CHECK_FALSE(cppgunicorn::http::address_allowed("11.1.2.3", {"10.0.0.0/8", "::1"}));
}

TEST_CASE("Host: exactly one on HTTP/1.1, and a valid uri-host[:port] (RFC 9112 section 3.2)") {
  CHECK(feed_all("GET / HTTP/1.1\r\n\r\n").error == ParseError::kInvalidHeader);
  CHECK(feed_all("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n").error == ParseError::kInvalidHeader);
  for (const char* bad : {"a b", "a/b", "a:x", "[::1", "[::1]x", "a@b", "a%zz", "a\"b", "a:1:2"}) {
    CAPTURE(bad);
    CHECK(feed_all(std::string("GET / HTTP/1.1\r\nHost: ") + bad + "\r\n\r\n").error ==
          ParseError::kInvalidHeader);
  }
  for (const char* good : {"", "example.com", "example.com:8080", "127.0.0.1:80", "[::1]",
                           "[::1]:8000", "xn--bcher-kva.example", "a%20b", "a_b~c!$&'()*+,;="}) {
    CAPTURE(good);
    CHECK(feed_all(std::string("GET / HTTP/1.1\r\nHost: ") + good + "\r\n\r\n").requests.size() == 1);
  }
  CHECK(feed_all("GET / HTTP/1.0\r\n\r\n").requests.size() == 1);  // HTTP/1.0 needs none
}

TEST_CASE("transfer codings: chunked last and once; any other is 501; empty elements do not count") {
  cppgunicorn::http::ParserOptions o;
  // RFC 9112 sections 6.1 and 7: a coding we do not decode never reaches the app.
  CHECK(feed_with("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", o).error ==
        ParseError::kUnsupportedEncoding);
  // RFC 9110 section 5.6.1: empty list elements are ignored.
  auto empties = feed_with("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: , chunked,\r\n\r\n0\r\n\r\n", o);
  REQUIRE(empties.requests.size() == 1);
  CHECK(empties.requests[0].chunked);
  CHECK(feed_with("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", o).error ==
        ParseError::kBodyFraming);
  CHECK(feed_with("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: foo, chunked\r\n\r\n", o).error ==
        ParseError::kUnsupportedEncoding);
  CHECK(feed_with("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n", o).error ==
        ParseError::kUnsupportedEncoding);
  CHECK(feed_with("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\nhello", o).error == ParseError::kBodyFraming);
  o.limits.request_body = 4;
  CHECK(feed_with("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello", o).error == ParseError::kBodyTooLarge);
  CHECK(feed_with("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", o).error ==
        ParseError::kBodyTooLarge);
  CHECK(feed_with("POST / HTTP/1.1\r\nHost: h\r\nExpect: teapot\r\n\r\n", o).error == ParseError::kExpectationFailed);
}
