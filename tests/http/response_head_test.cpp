#include "http/response_head.h"

#include <doctest/doctest.h>

using namespace cppgunicorn::http;

namespace {
Request request(int minor, bool keep_alive = true) {
  Request r;
  r.method = "GET";
  r.target = "/";
  r.http_minor = minor;
  r.protocol = minor ? "HTTP/1.1" : "HTTP/1.0";
  r.keep_alive = keep_alive;
  return r;
}
}  // namespace

TEST_CASE("status codes are read from WSGI status lines") {
  CHECK(parse_status_code("200 OK") == 200);
  CHECK(parse_status_code("404") == 404);
  CHECK(parse_status_code("20 OK") == 0);
  CHECK(parse_status_code("2000 OK") == 0);
}

TEST_CASE("framing follows RFC 9112 section 6") {
  HeaderList none;
  HeaderList with_length = {{"Content-Length", "5"}};
  uint64_t known = 11;
  CHECK(plan_response(request(1), "200 OK", with_length, false, nullptr, false).framing ==
        Framing::kContentLength);
  CHECK(plan_response(request(1), "200 OK", none, false, nullptr, false).framing == Framing::kChunked);
  auto one_chunk = plan_response(request(1), "200 OK", none, false, &known, false);
  CHECK(one_chunk.framing == Framing::kContentLength);
  CHECK(one_chunk.length == 11);
  auto http10 = plan_response(request(0, true), "200 OK", none, false, nullptr, false);
  CHECK(http10.framing == Framing::kCloseDelimited);
  CHECK_FALSE(http10.keep_alive);
  CHECK(plan_response(request(1), "204 No Content", none, false, nullptr, false).framing ==
        Framing::kNoBody);
  auto head = plan_response(request(1), "200 OK", with_length, true, nullptr, false);
  CHECK(head.framing == Framing::kNoBody);
  CHECK(head.has_length);
  CHECK_THROWS(plan_response(request(1), "200 OK", {{"Content-Length", "x"}}, false, nullptr, false));
}

TEST_CASE("the app's Connection: close ends the connection; hop-by-hop headers are ours") {
  HeaderList headers = {{"Connection", "close"}, {"Transfer-Encoding", "gzip"}, {"X-A", "1"}};
  auto plan = plan_response(request(1), "200 OK", headers, false, nullptr, false);
  CHECK_FALSE(plan.keep_alive);
  std::string out;
  append_response_head(out, request(1), "200 OK", headers, plan, "Wed, 25 Nov 2026 00:00:00 GMT");
  CHECK(out.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(out.find("X-A: 1\r\n") != std::string::npos);
  CHECK(out.find("gzip") == std::string::npos);
  CHECK(out.find("Transfer-Encoding: chunked\r\n") != std::string::npos);
  CHECK(out.find("Connection: close\r\n") != std::string::npos);
  CHECK(out.find("Server: cppgunicorn\r\n") != std::string::npos);
  CHECK(out.find("Date: Wed, 25 Nov 2026 00:00:00 GMT\r\n") != std::string::npos);
  CHECK(out.substr(out.size() - 4) == "\r\n\r\n");
}

TEST_CASE("chunk headers are hexadecimal sizes") {
  char buf[24];
  CHECK(std::string(buf, format_chunk_header(255, buf)) == "ff\r\n");
  CHECK(std::string(buf, format_chunk_header(0, buf)) == "0\r\n");
}

TEST_CASE("the server's own fields are recognised in any case, and only those") {
  HeaderList app = {{"TRANSFER-encoding", "chunked"}, {"Keep-Alive", "5"},
                    {"PROXY-Authorization", "x"}, {"tE", "trailers"}, {"Content-LENGTH", "3"},
                    {"SERVER", "mine"}, {"dAtE", "then"}, {"Content-Lengths", "no"},
                    {"Contentmlength", "no"}, {"X-Upgrade", "no"}, {"Connection", "close"}};
  ResponsePlan plan = plan_response(request(1), "200 OK", app, false, nullptr, false);
  CHECK(plan.has_length);
  CHECK(plan.length == 3);
  CHECK_FALSE(plan.keep_alive);
  std::string head;
  append_response_head(head, request(1), "200 OK", app, plan, "now");
  CHECK(head ==
        "HTTP/1.1 200 OK\r\nContent-LENGTH: 3\r\nSERVER: mine\r\ndAtE: then\r\n"
        "Content-Lengths: no\r\nContentmlength: no\r\nX-Upgrade: no\r\nConnection: close\r\n\r\n");
}
