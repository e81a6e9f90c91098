// The Python objects a WSGI app is handed (PEP 3333): wsgi.input,
// start_response and its write(), wsgi.errors and wsgi.file_wrapper. They
// are defined in the embedded module `_cppgunicorn`.
#pragma once

#include <pybind11/pybind11.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/body_channel.h"
#include "base/spool_file.h"
#include "http/request.h"

namespace cppgunicorn::wsgi {

// What start_response and write() record for one request; shared between
// the StartResponse object the app holds and the Exchange that sends it.
struct ResponseState {
  bool called = false;
  bool headers_sent = false;  // the head is committed: exc_info re-raises
  std::string status;
  http::HeaderList headers;
  std::vector<std::string> written;  // bytes given to write() before iteration
};

// wsgi.input. Over a body already read in full: the bytes spooled to a
// temporary file (a large body), then those in memory. Or over a body still
// arriving (--no-request-buffering): reads wait, without the GIL, for the
// bytes they need, with gunicorn's semantics (http/body.py): read(n) returns
// n bytes unless the body ends first, readline() reads to a newline,
// read() and readlines() to the end of the body. Never reads past the body.
class InputStream {
 public:
  InputStream(std::string body, std::shared_ptr<base::SpoolFile> file)
      : data_(std::move(body)), file_(std::move(file)),
        file_size_(file_ ? file_->size() : 0) {}
  explicit InputStream(std::shared_ptr<base::BodyChannel> channel)
      : channel_(std::move(channel)), ended_(false) {}
  pybind11::bytes read(pybind11::object size);
  pybind11::bytes readline(pybind11::object size);
  pybind11::list readlines(pybind11::object hint);
  pybind11::object next();
  // The next line, or nullptr at the end of the body (tp_iternext).
  PyObject* next_line();
  // Bytes at hand: the rest of a body read in full.
  size_t remaining() const { return static_cast<size_t>(file_size_ + data_.size() - pos_); }

 private:
  size_t limit(pybind11::object size);
  // A streamed body: waits until `want` bytes are at hand or the body
  // ended. Raises TimeoutError or OSError when it ended early (a Content-
  // Length body the client cut short reads short instead, as in gunicorn).
  void fill(size_t want);
  pybind11::bytes readline_streamed(size_t n);
  // Copies `n` bytes from the current position and advances.
  void take(char* out, size_t n);
  std::string data_;
  std::shared_ptr<base::SpoolFile> file_;
  uint64_t file_size_ = 0;
  uint64_t pos_ = 0;
  std::shared_ptr<base::BodyChannel> channel_;  // streamed: where bytes come from
  bool ended_ = true;                           // nothing more comes from channel_
};

// start_response (PEP 3333) as a plain CPython type: one small object per
// request, called through vectorcall, with no pybind11 dispatch. It points
// at the ResponseState its Exchange owns; the Exchange detaches it when the
// request ends, so an app that keeps it and calls it later gets an error.
// `write` is the callable start_response returns, made once per request on
// the first call. Need the GIL.
PyObject* new_start_response(ResponseState* state);  // new reference
void detach_start_response(PyObject* start_response);

// What start_response accepts (RFC 9110 section 5): a header name is a
// non-empty token; a value holds no control character but HTAB.
bool is_token(std::string_view s);
bool is_field_value(std::string_view s);

// wsgi.input as a plain CPython type around an InputStream (new reference).
PyObject* new_input_stream(InputStream stream);

// The latin-1 bytes of a str: its own data when every character fits in
// one byte (no copy, no bytes object), else the encoded bytes kept alive by
// `holder`. Wider characters raise UnicodeEncodeError, a non-str TypeError
// naming `what` (thrown as pybind11 exceptions).
std::string_view latin1_view(PyObject* value, const char* what, pybind11::object* holder);
// The same, copied into `out`.
void latin1_text(PyObject* value, const char* what, std::string* out);

// A response body that is a regular file the server may send itself
// (sendfile(2)): what wsgi.file_wrapper wrapped, from its current position.
struct FileBody {
  int fd = -1;
  uint64_t offset = 0;
  uint64_t size = 0;  // bytes from offset to the end of the file
};

// True when `result` (what the app returned) is our wsgi.file_wrapper over
// an object whose fileno() is a regular file. Needs the GIL; Python errors
// from fileno()/tell() mean "no" (the wrapper is then iterated).
bool file_body_of(pybind11::handle result, FileBody* out);

// The module `_cppgunicorn` that holds these types (environ's
// wsgi.file_wrapper and wsgi.errors come from it) and log_write(level,
// message), the error log for the Python of the cppgunicorn package; made
// on first use in the running interpreter. Needs the GIL.
pybind11::module_ objects_module();

}  // namespace cppgunicorn::wsgi
