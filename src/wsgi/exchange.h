// One WSGI call: environ in, app called, response iterable pulled chunk by
// chunk, close() called exactly once on every path. Every method needs the
// GIL; the worker decides when to hold it.
#pragma once

#include <pybind11/pybind11.h>

#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http/request.h"
#include "wsgi/environ.h"
#include "wsgi/objects.h"
#include "wsgi/response_source.h"

namespace cppgunicorn::wsgi {

class Exchange final : public ResponseSource {
 public:
  Exchange(const pybind11::object& app, const EnvironBuilder& environ);
  ~Exchange() override;
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  // Builds the environ (taking the request body) and calls the app. Returns
  // false when it raised before returning an iterable (traceback logged).
  bool call(http::Request& request, const PeerInfo& peer);

  // Never kPending: the app produces each chunk right here.
  Next next(std::string_view* out) override;
  std::string_view hold_chunk() override;
  // Needs the GIL (the held chunks are Python bytes objects).
  void release_held_chunks() override;
  bool runs_app() const override { return true; }

  bool responded() const override { return state_.called; }
  const std::string& status() const override { return state_.status; }
  const http::HeaderList& headers() const override { return state_.headers; }
  bool body_is_single_chunk() const override { return single_chunk_; }
  void mark_headers_sent() override { state_.headers_sent = true; }

  // The body is a regular file behind wsgi.file_wrapper (and write() was
  // not used): the server may send it with sendfile(2) instead of next().
  bool file_body(FileBody* out) const {
    // A list or tuple (the usual body) is not asked: pybind11's isinstance
    // costs a type-registry lookup on every request.
    return state_.written.empty() && result_ && item_index_ < 0 &&
           file_body_of(result_, out);
  }

  // Calls the iterable's close(), once; errors in it are logged. Then the
  // post_request hook, if configured.
  void close() override;

  // The environ value `key` as text (the access log's {key}e atoms).
  bool environ_text(const std::string& key, std::string* out) const override;

 private:
  void log_error(const char* what);
  void close_iterable();

  const pybind11::object& app_;
  const EnvironBuilder& environ_;
  ResponseState state_;
  pybind11::object start_response_;  // detached when the exchange ends
  std::string path_;           // for log messages
  pybind11::object result_;    // what the app returned
  pybind11::object iterator_;  // unset while a list or tuple is walked by index
  Py_ssize_t item_index_ = -1;  // the next item of a list or tuple result; -1: none
  pybind11::object current_;   // keeps the chunk `next()` handed out alive
  size_t written_index_ = 0;
  bool current_is_written_ = false;  // the last chunk came from write(), not the iterable
  std::vector<pybind11::object> held_;    // chunks of the iterable kept for one write
  std::deque<std::string> held_written_;  // chunks of write() kept for one write
  bool single_chunk_ = false;
  bool closed_ = true;
  pybind11::object environ_dict_;  // for post_request and the access log's environ atoms
  bool post_request_done_ = false;
};

// Logs the Python exception being handled as a traceback at ERROR level.
void log_python_error(std::string_view message);

}  // namespace cppgunicorn::wsgi
