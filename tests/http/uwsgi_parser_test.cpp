// The uwsgi packet reader: http::Parser with options.uwsgi, and the
// UwsgiHeadDecoder behind it.
#include "http/uwsgi_parser.h"

#include <doctest/doctest.h>

#include <string>
#include <utility>
#include <vector>

#include "http/parser.h"
#include "http/response_head.h"

using cppgunicorn::http::ParseError;
using cppgunicorn::http::Parser;
using cppgunicorn::http::ParserOptions;
using cppgunicorn::http::Request;

namespace {

using Vars = std::vector<std::pair<std::string, std::string>>;

std::string le16(size_t n) {
  return std::string{static_cast<char>(n & 0xFF), static_cast<char>((n >> 8) & 0xFF)};
}

std::string vars_block(const Vars& vars) {
  std::string block;
  for (const auto& [k, v] : vars) block += le16(k.size()) + k + le16(v.size()) + v;
  return block;
}

std::string packet(const Vars& vars, unsigned char modifier1 = 0, unsigned char modifier2 = 0) {
  std::string block = vars_block(vars);
  return std::string(1, static_cast<char>(modifier1)) + le16(block.size()) +
         std::string(1, static_cast<char>(modifier2)) + block;
}

// What nginx sends with `include uwsgi_params` for a GET.
Vars nginx_get(const std::string& uri = "/hello?name=x") {
  std::string path = uri.substr(0, uri.find('?'));
  std::string query = uri.find('?') == std::string::npos ? "" : uri.substr(uri.find('?') + 1);
  return {{"QUERY_STRING", query},     {"REQUEST_METHOD", "GET"},
          {"CONTENT_TYPE", ""},        {"CONTENT_LENGTH", ""},
          {"REQUEST_URI", uri},        {"PATH_INFO", path},
          {"DOCUMENT_ROOT", "/srv"},   {"SERVER_PROTOCOL", "HTTP/1.1"},
          {"REQUEST_SCHEME", "http"},  {"REMOTE_ADDR", "192.0.2.7"},
          {"REMOTE_PORT", "50123"},    {"SERVER_PORT", "8080"},
          {"SERVER_NAME", "example"},  {"HTTP_HOST", "example.com"},
          {"HTTP_USER_AGENT", "curl"}, {"HTTP_X_FORWARDED_FOR", "10.1.1.1"}};
}

struct Fed {
  std::vector<Request> requests;
  ParseError error = ParseError::kNone;
  std::string reason;
};

// Feeds `bytes` in pieces of `piece` bytes (0: whole), as a connection does.
Fed feed(const std::string& bytes, size_t piece = 0, bool eof = false, ParserOptions options = {}) {
  options.uwsgi = true;
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
        out.reason = parser.error_reason();
        return out;
      }
      if (r.status == Parser::Status::kNeedMore) break;
      out.requests.push_back(parser.request());
      parser.next();
    }
    window.erase(0, used);
  }
  if (eof && parser.finish().status == Parser::Status::kError) {
    out.error = parser.error();
    out.reason = parser.error_reason();
  }
  return out;
}

std::string cgi(const Request& r, const std::string& key) {
  std::string found = "<none>";
  for (const auto& [k, v] : r.cgi_vars) {
    if (k == key) found = v;
  }
  return found;
}

}  // namespace

TEST_CASE("an nginx packet becomes the request the HTTP parser would make") {
  auto fed = feed(packet(nginx_get()));
  REQUIRE(fed.error == ParseError::kNone);
  REQUIRE(fed.requests.size() == 1);
  const Request& r = fed.requests[0];
  CHECK(r.uwsgi);
  CHECK(r.method == "GET");
  CHECK(r.target == "/hello?name=x");
  CHECK(r.path() == "/hello");
  CHECK(r.query() == "name=x");
  CHECK(r.protocol == "HTTP/1.1");
  CHECK(r.http_major == 1);
  CHECK(r.http_minor == 1);
  CHECK(r.header("host") == "example.com");
  CHECK(r.header("x-forwarded-for") == "10.1.1.1");
  CHECK(r.header("user-agent") == "curl");
  CHECK_FALSE(r.has_content_length);  // empty CONTENT_LENGTH: no body
  CHECK(r.body.empty());
  // The front-end ends the exchange by reading to the close.
  CHECK_FALSE(r.keep_alive);
  CHECK(r.close_requested);
  // The CGI variables the environ takes as they are.
  CHECK(cgi(r, "REMOTE_ADDR") == "192.0.2.7");
  CHECK(cgi(r, "REMOTE_PORT") == "50123");
  CHECK(cgi(r, "SERVER_NAME") == "example");
  CHECK(cgi(r, "SERVER_PORT") == "8080");
  CHECK(cgi(r, "DOCUMENT_ROOT") == "/srv");
  CHECK(cgi(r, "REQUEST_SCHEME") == "http");
  CHECK(cgi(r, "PATH_INFO") == "/hello");
  CHECK(cgi(r, "wsgi.url_scheme") == "<none>");
  CHECK(cgi(r, "HTTP_HOST") == "<none>");  // a header, not a CGI variable
}

TEST_CASE("fed one byte at a time, a packet gives the same request") {
  Vars vars = nginx_get();
  vars.emplace_back("CONTENT_LENGTH", "5");
  std::string bytes = packet(vars) + "hello";
  auto whole = feed(bytes);
  for (size_t piece : {1, 2, 3, 7, 64}) {
    CAPTURE(piece);
    auto split = feed(bytes, piece);
    REQUIRE(split.error == ParseError::kNone);
    REQUIRE(split.requests.size() == 1);
    CHECK(split.requests[0].headers == whole.requests[0].headers);
    CHECK(split.requests[0].cgi_vars == whole.requests[0].cgi_vars);
    CHECK(split.requests[0].target == whole.requests[0].target);
    CHECK(split.requests[0].body == "hello");
  }
}

TEST_CASE("the body is CONTENT_LENGTH bytes, and the next packet waits behind it") {
  Vars post = {{"REQUEST_METHOD", "POST"}, {"PATH_INFO", "/up"}, {"CONTENT_LENGTH", "3"},
               {"CONTENT_TYPE", "text/plain"}};
  auto fed = feed(packet(post) + "abc" + packet(nginx_get("/next")));
  REQUIRE(fed.error == ParseError::kNone);
  REQUIRE(fed.requests.size() == 2);
  CHECK(fed.requests[0].method == "POST");
  CHECK(fed.requests[0].body == "abc");
  CHECK(fed.requests[0].content_length == 3);
  CHECK(fed.requests[0].header("content-type") == "text/plain");
  CHECK(fed.requests[0].header("content-length") == "3");
  CHECK(fed.requests[1].target == "/next");
}

TEST_CASE("CONTENT_LENGTH is read as gunicorn reads it: int(), negative or not a number is 0") {
  uint64_t n = 99;
  CHECK(cppgunicorn::http::uwsgi_content_length("12", &n));
  CHECK(n == 12);
  CHECK(cppgunicorn::http::uwsgi_content_length(" +7 ", &n));
  CHECK(n == 7);
  CHECK(cppgunicorn::http::uwsgi_content_length("-5", &n));
  CHECK(n == 0);
  CHECK(cppgunicorn::http::uwsgi_content_length("abc", &n));
  CHECK(n == 0);
  CHECK(cppgunicorn::http::uwsgi_content_length("", &n));
  CHECK(n == 0);
  CHECK(cppgunicorn::http::uwsgi_content_length("1_000", &n));
  CHECK(n == 1000);
  CHECK_FALSE(cppgunicorn::http::uwsgi_content_length("1234567890123456789", &n));
  // A body that cannot be a length closes the connection.
  auto fed = feed(packet({{"CONTENT_LENGTH", "99999999999999999999"}}));
  CHECK(fed.error == ParseError::kInvalidUwsgiPacket);
}

TEST_CASE("without REQUEST_URI the target is PATH_INFO and QUERY_STRING; without either, GET /") {
  auto fed = feed(packet({{"PATH_INFO", "/p"}, {"QUERY_STRING", "a=1"}}));
  REQUIRE(fed.requests.size() == 1);
  CHECK(fed.requests[0].target == "/p?a=1");
  CHECK(fed.requests[0].method == "GET");
  auto empty = feed(packet({}));
  REQUIRE(empty.requests.size() == 1);
  CHECK(empty.requests[0].target == "/");
  CHECK(empty.requests[0].method == "GET");
  CHECK(empty.requests[0].protocol == "HTTP/1.1");
}

TEST_CASE("an empty REQUEST_METHOD or PATH_INFO is passed on as it is (as gunicorn)") {
  auto fed = feed(packet({{"REQUEST_METHOD", ""}, {"PATH_INFO", ""}}));
  REQUIRE(fed.requests.size() == 1);
  CHECK(fed.requests[0].method.empty());
  CHECK(fed.requests[0].target.empty());
  CHECK(fed.requests[0].path().empty());
}

TEST_CASE("HTTPS on makes the scheme https; a wsgi.url_scheme var names it; other wsgi.* are dropped") {
  for (const char* on : {"on", "ON", "1", "true"}) {
    auto fed = feed(packet({{"HTTPS", on}}));
    REQUIRE(fed.requests.size() == 1);
    CHECK(cgi(fed.requests[0], "wsgi.url_scheme") == "https");
  }
  auto off = feed(packet({{"HTTPS", "off"}}));
  CHECK(cgi(off.requests[0], "wsgi.url_scheme") == "<none>");
  auto named = feed(packet({{"wsgi.url_scheme", "https"}, {"wsgi.input", "x"}}));
  CHECK(cgi(named.requests[0], "wsgi.url_scheme") == "https");
  CHECK(cgi(named.requests[0], "wsgi.input") == "<none>");
}

TEST_CASE("modifier1 other than 0 is refused; modifier2 is not looked at (as gunicorn)") {
  auto bad = feed(packet(nginx_get(), 5));
  CHECK(bad.error == ParseError::kInvalidUwsgiPacket);
  CHECK(bad.reason.find("modifier1 5") != std::string::npos);
  auto m2 = feed(packet(nginx_get(), 0, 9));
  CHECK(m2.error == ParseError::kNone);
  CHECK(m2.requests.size() == 1);
}

TEST_CASE("a var that runs past the packet is refused as soon as its size says so") {
  // The key says 200 bytes, the block holds 10.
  std::string block = le16(200) + "ABCDEFGH";
  std::string bytes = std::string(1, '\0') + le16(block.size()) + '\0' + block;
  auto fed = feed(bytes);
  CHECK(fed.error == ParseError::kInvalidUwsgiPacket);
  CHECK(fed.reason == "uwsgi key runs past the packet");
  // A value likewise.
  block = le16(1) + "K" + le16(50) + "v";
  bytes = std::string(1, '\0') + le16(block.size()) + '\0' + block;
  CHECK(feed(bytes).reason == "uwsgi value runs past the packet");
  // A block that ends inside a size.
  block = vars_block({{"A", "b"}}) + "\x01";
  bytes = std::string(1, '\0') + le16(block.size()) + '\0' + block;
  CHECK(feed(bytes).reason == "truncated uwsgi key size");
  block = le16(1) + "K";
  bytes = std::string(1, '\0') + le16(block.size()) + '\0' + block;
  CHECK(feed(bytes).reason == "truncated uwsgi value size");
}

TEST_CASE("1000 vars are read, the 1001st is refused (gunicorn's MAX_UWSGI_VARS)") {
  Vars vars;
  for (int i = 0; i < 1000; ++i) vars.emplace_back(std::to_string(i), "");
  auto ok = feed(packet(vars));
  REQUIRE(ok.error == ParseError::kNone);
  CHECK(ok.requests[0].cgi_vars.size() == 1000);
  vars.emplace_back("ONE_MORE", "");
  CHECK(feed(packet(vars)).error == ParseError::kInvalidUwsgiPacket);
}

TEST_CASE("a connection closed mid-packet is an invalid packet, mid-body an incomplete request") {
  std::string p = packet(nginx_get());
  auto head = feed(p.substr(0, p.size() - 3), 0, true);
  CHECK(head.error == ParseError::kInvalidUwsgiPacket);
  auto header = feed(p.substr(0, 2), 0, true);
  CHECK(header.error == ParseError::kInvalidUwsgiPacket);
  auto body = feed(packet({{"CONTENT_LENGTH", "10"}}) + "abc", 0, true);
  CHECK(body.error == ParseError::kIncomplete);
  auto clean = feed(p, 0, true);  // a whole packet, then the close
  CHECK(clean.error == ParseError::kNone);
  CHECK(clean.requests.size() == 1);
}

TEST_CASE("a peer outside uwsgi_allow_ips is refused at its first byte") {
  ParserOptions options;
  options.uwsgi = true;
  Parser parser(options);
  parser.set_uwsgi_peer_allowed(false);
  std::string p = packet(nginx_get());
  auto r = parser.feed(p.data(), p.size());
  CHECK(r.status == Parser::Status::kError);
  CHECK(parser.error() == ParseError::kForbiddenUwsgiPeer);
  CHECK(cppgunicorn::http::status_for(ParseError::kForbiddenUwsgiPeer) == 500);
  CHECK(cppgunicorn::http::status_for(ParseError::kInvalidUwsgiPacket) == 500);
}

TEST_CASE("limit_request_body refuses a CONTENT_LENGTH past it before reading the body") {
  ParserOptions options;
  options.limits.request_body = 10;
  auto fed = feed(packet({{"CONTENT_LENGTH", "11"}}), 0, false, options);
  CHECK(fed.error == ParseError::kBodyTooLarge);
}

TEST_CASE("limit_request_line and limit_request_fields do not apply to packets (as gunicorn)") {
  ParserOptions options;
  options.limits.request_line = 20;
  options.limits.request_fields = 2;
  options.limits.request_field_size = 30;
  Vars vars = nginx_get("/" + std::string(200, 'a'));
  auto fed = feed(packet(vars), 0, false, options);
  CHECK(fed.error == ParseError::kNone);
  CHECK(fed.requests.size() == 1);
}

TEST_CASE("a uwsgi response of unknown length is delimited by the close, never chunked") {
  auto fed = feed(packet(nginx_get()));
  REQUIRE(fed.requests.size() == 1);
  auto plan = cppgunicorn::http::plan_response(fed.requests[0], "200 OK", {}, false, nullptr, false);
  CHECK(plan.framing == cppgunicorn::http::Framing::kCloseDelimited);
  CHECK_FALSE(plan.keep_alive);
  uint64_t known = 5;
  plan = cppgunicorn::http::plan_response(fed.requests[0], "200 OK", {}, false, &known, false);
  CHECK(plan.framing == cppgunicorn::http::Framing::kContentLength);
  CHECK_FALSE(plan.keep_alive);
  std::string head;
  cppgunicorn::http::append_response_head(head, fed.requests[0], "200 OK", {}, plan, "now");
  CHECK(head.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(head.find("Connection: close\r\n") != std::string::npos);
}
