#include "wsgi/objects.h"

#include <doctest/doctest.h>
#include <pybind11/embed.h>

namespace py = pybind11;
using namespace cppgunicorn;

namespace {
py::object call(const py::object& f, const py::object& a, const py::object& b) { return f(a, b); }
}  // namespace

TEST_CASE("header names are tokens; values hold no control character but HTAB") {
  CHECK(wsgi::is_token("Content-Type"));
  CHECK(wsgi::is_token("x!#$%&'*+-.^_`|~9"));
  CHECK_FALSE(wsgi::is_token(""));
  CHECK_FALSE(wsgi::is_token("X Y"));
  CHECK_FALSE(wsgi::is_token("X:"));
  CHECK_FALSE(wsgi::is_token("caf\xe9"));
  CHECK(wsgi::is_field_value(""));
  CHECK(wsgi::is_field_value("a\tb \xe9\xff"));
  CHECK_FALSE(wsgi::is_field_value("a\rb"));
  CHECK_FALSE(wsgi::is_field_value(std::string_view("a\0b", 3)));
  CHECK_FALSE(wsgi::is_field_value("a\x7f"));
}

TEST_CASE("latin1_text copies one-byte str data and refuses wider characters") {
  std::string out;
  wsgi::latin1_text(py::str("200 OK").ptr(), "status", &out);
  CHECK(out == "200 OK");
  // U+00E7 is stored one byte per character: it comes out as latin-1 0xE7.
  wsgi::latin1_text(py::str("\xc3\xa7" "a").ptr(), "status", &out);
  CHECK(out == "\xe7" "a");
  CHECK_THROWS_AS(wsgi::latin1_text(py::str("\xe2\x82\xac").ptr(), "status", &out),
                  py::error_already_set);  // U+20AC is not latin-1
  PyErr_Clear();
  CHECK_THROWS_AS(wsgi::latin1_text(py::bytes("x").ptr(), "status", &out), py::type_error);
}

TEST_CASE("start_response records status and headers; write() and later calls need a live request") {
  wsgi::ResponseState state;
  py::object sr = py::reinterpret_steal<py::object>(wsgi::new_start_response(&state));
  py::list headers;
  headers.append(py::make_tuple("Content-Type", "text/plain"));
  py::object write = call(sr, py::str("201 Created"), headers);
  CHECK(state.called);
  CHECK(state.status == "201 Created");
  REQUIRE(state.headers.size() == 1);
  CHECK(state.headers[0].second == "text/plain");
  write(py::bytes("abc"));
  CHECK(state.written.size() == 1);
  CHECK_THROWS_AS(write(py::str("text")), py::error_already_set);
  CHECK_THROWS_AS(call(sr, py::str("200 OK"), py::list()), py::error_already_set);  // twice
  // Keyword arguments as PEP 3333 names them.
  wsgi::ResponseState fresh;
  py::object sr2 = py::reinterpret_steal<py::object>(wsgi::new_start_response(&fresh));
  sr2(py::arg("status") = "404 Not Found", py::arg("headers") = py::list());
  CHECK(fresh.status == "404 Not Found");
  // A bad header leaves the response unstarted.
  wsgi::ResponseState bad;
  py::object sr3 = py::reinterpret_steal<py::object>(wsgi::new_start_response(&bad));
  py::list wrong;
  wrong.append(py::make_tuple("X", "a\r\nInjected: 1"));
  CHECK_THROWS_AS(call(sr3, py::str("200 OK"), wrong), py::error_already_set);
  CHECK_FALSE(bad.called);
  wsgi::detach_start_response(sr.ptr());
  CHECK_THROWS_AS(write(py::bytes("late")), py::error_already_set);
  CHECK_THROWS_AS(call(sr, py::str("200 OK"), py::list()), py::error_already_set);
}

TEST_CASE("wsgi.input reads, reads lines and iterates the body") {
  py::object input = py::reinterpret_steal<py::object>(
      wsgi::new_input_stream(wsgi::InputStream("one\ntwo\nthree", nullptr)));
  CHECK(input.attr("readline")().cast<std::string>() == "one\n");
  CHECK(input.attr("read")(py::arg("size") = 2).cast<std::string>() == "tw");
  py::list rest = input.attr("readlines")();
  REQUIRE(rest.size() == 2);
  CHECK(rest[1].cast<std::string>() == "three");
  CHECK(input.attr("read")().cast<std::string>().empty());
  py::object again = py::reinterpret_steal<py::object>(
      wsgi::new_input_stream(wsgi::InputStream("a\nb", nullptr)));
  size_t lines = 0;
  for (py::handle line : again) {
    (void)line;
    ++lines;
  }
  CHECK(lines == 2);
}

TEST_CASE("only wsgi.file_wrapper over a regular file is a file body") {
  py::object wrapper = cppgunicorn::wsgi::objects_module().attr("FileWrapper");
  py::object file = py::module_::import("io").attr("open")("/proc/self/exe", "rb");
  wsgi::FileBody body;
  CHECK(wsgi::file_body_of(wrapper(file), &body));
  CHECK(body.fd >= 0);
  CHECK(body.size > 0);
  CHECK_FALSE(wsgi::file_body_of(py::list(), &body));
  CHECK_FALSE(wsgi::file_body_of(file, &body));  // not wrapped
  file.attr("close")();
}
