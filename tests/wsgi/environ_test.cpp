#include "wsgi/environ.h"

#include <doctest/doctest.h>
#include <pybind11/embed.h>

#include "http/parser.h"

namespace py = pybind11;
using namespace cppgunicorn;

namespace {
http::Request parse(const std::string& bytes) {
  http::Parser p;
  auto r = p.feed(bytes.data(), bytes.size());
  REQUIRE(r.status == http::Parser::Status::kRequestReady);
  return p.request();
}

py::dict environ_of(const std::string& bytes, const wsgi::EnvironOptions& options = {}) {
  http::Request request = parse(bytes);
  wsgi::EnvironBuilder builder(options);
  wsgi::PeerInfo peer;
  peer.remote_addr = "10.1.2.3";
  peer.remote_port = "5555";
  peer.server_name = "127.0.0.1";
  peer.server_port = "8000";
  return builder.build(request, peer, py::none());
}

std::string get(const py::dict& env, const char* key) {
  return py::str(env[key]).cast<std::string>();
}
}  // namespace

TEST_CASE("the environ carries PEP 3333's request variables") {
  auto env = environ_of("GET /a%2Fb%20c?x=%20y HTTP/1.1\r\nHost: example.com:8080\r\n\r\n");
  CHECK(get(env, "REQUEST_METHOD") == "GET");
  CHECK(get(env, "PATH_INFO") == "/a/b c");  // percent-decoded
  CHECK(get(env, "QUERY_STRING") == "x=%20y");  // raw
  CHECK(get(env, "RAW_URI") == "/a%2Fb%20c?x=%20y");
  CHECK(get(env, "SCRIPT_NAME") == "");
  // A TCP listener's own address, whatever Host says (gunicorn).
  CHECK(get(env, "SERVER_NAME") == "127.0.0.1");
  CHECK(get(env, "SERVER_PORT") == "8000");
  CHECK(get(env, "HTTP_HOST") == "example.com:8080");
  CHECK(get(env, "SERVER_PROTOCOL") == "HTTP/1.1");
  CHECK(get(env, "REMOTE_ADDR") == "10.1.2.3");
  CHECK(get(env, "REMOTE_PORT") == "5555");
  CHECK(py::str(env["wsgi.url_scheme"]).cast<std::string>() == "http");
  CHECK(env["wsgi.version"].cast<py::tuple>().equal(py::make_tuple(1, 0)));
  CHECK(env["wsgi.input_terminated"].cast<bool>());
  CHECK_FALSE(env["wsgi.run_once"].cast<bool>());
}

TEST_CASE("headers become HTTP_* keys; content headers have none; repeats join with a comma") {
  auto env = environ_of(
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n"
      "X-Multi: a\r\nX-Multi: b\r\nUser-Agent: t\r\n\r\n");
  CHECK(get(env, "CONTENT_TYPE") == "text/plain");
  CHECK(get(env, "CONTENT_LENGTH") == "0");
  CHECK_FALSE(env.contains("HTTP_CONTENT_TYPE"));
  CHECK(get(env, "HTTP_X_MULTI") == "a,b");  // gunicorn's bare comma
  CHECK(get(env, "HTTP_USER_AGENT") == "t");
}

TEST_CASE("without Host the listener address is SERVER_NAME and SERVER_PORT") {
  auto env = environ_of("GET / HTTP/1.0\r\n\r\n");
  CHECK(get(env, "SERVER_NAME") == "127.0.0.1");
  CHECK(get(env, "SERVER_PORT") == "8000");
  CHECK(get(env, "SERVER_PROTOCOL") == "HTTP/1.0");
}

TEST_CASE("a unix socket takes SERVER_NAME/SERVER_PORT from Host and has no REMOTE_PORT") {
  wsgi::EnvironBuilder builder({});
  wsgi::PeerInfo tcp;
  tcp.remote_addr = "10.0.0.1";
  tcp.remote_port = "1000";
  tcp.server_name = "127.0.0.1";
  tcp.server_port = "8000";
  wsgi::PeerInfo unix_peer;
  unix_peer.server_name = "/run/app.sock";
  unix_peer.unix_socket = true;
  py::dict first = builder.build(parse("GET / HTTP/1.1\r\nHost: h:1\r\n\r\n"), tcp, py::none());
  CHECK(get(first, "REMOTE_PORT") == "1000");
  py::dict with_port = builder.build(parse("GET / HTTP/1.1\r\nHost: h:1\r\n\r\n"), unix_peer,
                                     py::none());
  CHECK(get(with_port, "SERVER_NAME") == "h");
  CHECK(get(with_port, "SERVER_PORT") == "1");
  CHECK(get(with_port, "REMOTE_ADDR") == "");
  CHECK_FALSE(with_port.contains("REMOTE_PORT"));
  py::dict no_port = builder.build(parse("GET / HTTP/1.1\r\nHost: h\r\n\r\n"), unix_peer,
                                   py::none());
  CHECK(get(no_port, "SERVER_PORT") == "80");
  py::dict no_host = builder.build(parse("GET / HTTP/1.0\r\n\r\n"), unix_peer, py::none());
  CHECK(get(no_host, "SERVER_NAME") == "/run/app.sock");
  CHECK(get(no_host, "SERVER_PORT") == "");
  py::dict again = builder.build(parse("GET / HTTP/1.1\r\nHost: h:1\r\n\r\n"), tcp, py::none());
  CHECK(get(again, "REMOTE_PORT") == "1000");
}

TEST_CASE("values are latin-1 str, never UTF-8 decoded") {
  auto env = environ_of("GET /caf%C3%A9 HTTP/1.1\r\nHost: h\r\nX-Name: \xe9t\xe9\r\n\r\n");
  py::str path = env["PATH_INFO"];
  CHECK(path.cast<std::string>() == "/caf\xc3\x83\xc2\xa9");  // two latin-1 chars, in UTF-8
  CHECK(py::len(path) == 6);
  CHECK(py::len(env["HTTP_X_NAME"]) == 3);
}

TEST_CASE("absolute-form targets give the path; SCRIPT_NAME is stripped from PATH_INFO") {
  auto env = environ_of("GET http://example.com/x/y?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n");
  CHECK(get(env, "PATH_INFO") == "/x/y");
  CHECK(get(env, "QUERY_STRING") == "q=1");
  wsgi::EnvironOptions options;
  options.script_name = "/app";
  auto mounted = environ_of("GET /app/page HTTP/1.1\r\nHost: h\r\n\r\n", options);
  CHECK(get(mounted, "SCRIPT_NAME") == "/app");
  CHECK(get(mounted, "PATH_INFO") == "/page");
}

TEST_CASE("environ keys follow CGI naming") {
  CHECK(wsgi::environ_key("x-forwarded-for") == "HTTP_X_FORWARDED_FOR");
  CHECK(wsgi::environ_key("Content-Type") == "CONTENT_TYPE");
}

TEST_CASE("values reused from one request to the next are the ones each request sent") {
  wsgi::EnvironBuilder builder({});
  wsgi::PeerInfo peer;
  peer.remote_addr = "10.0.0.1";
  peer.remote_port = "1000";
  peer.server_name = "127.0.0.1";
  peer.server_port = "8000";
  std::string long_value(300, 'v');
  py::dict first = builder.build(
      parse("GET /a HTTP/1.1\r\nHost: h:1\r\nX-Long: " + long_value + "\r\n\r\n"), peer, py::none());
  py::dict again = builder.build(
      parse("GET /a HTTP/1.1\r\nHost: h:1\r\nX-Long: " + long_value + "\r\n\r\n"), peer, py::none());
  // Short repeated values are the same str; a long one is made each time.
  CHECK(first["REMOTE_ADDR"].ptr() == again["REMOTE_ADDR"].ptr());
  CHECK(first["HTTP_HOST"].ptr() == again["HTTP_HOST"].ptr());
  CHECK(get(again, "HTTP_X_LONG") == long_value);
  // Every entry follows the request that changed it, and back again.
  peer.remote_addr = "10.0.0.2";
  peer.url_scheme = "https";
  py::dict other = builder.build(parse("POST /b HTTP/1.0\r\n\r\n"), peer, py::none());
  CHECK(get(other, "REQUEST_METHOD") == "POST");
  CHECK(get(other, "SERVER_PROTOCOL") == "HTTP/1.0");
  CHECK(get(other, "SERVER_NAME") == "127.0.0.1");
  CHECK(get(other, "SERVER_PORT") == "8000");
  CHECK(get(other, "REMOTE_ADDR") == "10.0.0.2");
  CHECK(get(other, "wsgi.url_scheme") == "https");
  CHECK_FALSE(other.contains("HTTP_HOST"));
  CHECK_FALSE(other.contains("HTTP_X_LONG"));
  peer.remote_addr = "10.0.0.1";
  peer.url_scheme = "http";
  py::dict back = builder.build(parse("GET /a HTTP/1.1\r\nHost: h:1\r\n\r\n"), peer, py::none());
  CHECK(get(back, "REQUEST_METHOD") == "GET");
  CHECK(get(back, "SERVER_NAME") == "127.0.0.1");
  CHECK(get(back, "SERVER_PORT") == "8000");
  CHECK(get(back, "REMOTE_ADDR") == "10.0.0.1");
  CHECK(get(back, "wsgi.url_scheme") == "http");
  // An app that changes its environ changes no later request's.
  back["REQUEST_METHOD"] = py::str("MINE");
  py::dict next = builder.build(parse("GET /a HTTP/1.1\r\nHost: h:1\r\n\r\n"), peer, py::none());
  CHECK(get(next, "REQUEST_METHOD") == "GET");
}
