// One WSGI call: environ in, app called, response iterable pulled chunk by
// chunk, close() called exactly once on every path. Every method needs the
// GIL; the worker decides when to hold it.
#pragma once

#include <pybind11/pybind11.h>

#include <memory>
#include <string>
#include <string_view>

#include "http/request.h"
#include "wsgi/environ.h"
#include "wsgi/objects.h"

namespace cppgunicorn::wsgi {

class Exchange {
 public:
  enum class Next {
    kChunk,  // `*out` holds the next non-empty body chunk
    kDone,   // the iterable is exhausted
    kError,  // the app raised while producing the body (traceback logged)
  };

  Exchange(const pybind11::object& app, const EnvironBuilder& environ);
  ~Exchange();
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  // Builds the environ (taking the request body) and calls the app. Returns
  // false when it raised before returning an iterable (traceback logged).
  bool call(http::Request& request, const PeerInfo& peer);

  // The next non-empty chunk. The view stays valid until the next call to
  // next() or close().
  Next next(std::string_view* out);

  // start_response was called (a status and headers are known).
  bool responded() const { return state_->called; }
  const std::string& status() const { return state_->status; }
  const http::HeaderList& headers() const { return state_->headers; }

  // True when the whole body is the first chunk: the iterable was a list or
  // tuple of at most one item and write() was not used.
  bool body_is_single_chunk() const { return single_chunk_; }

  // The head went out: a later start_response(exc_info) must re-raise.
  void mark_headers_sent() { state_->headers_sent = true; }

  // Calls the iterable's close(), once; errors in it are logged. Then the
  // post_request hook, if configured.
  void close();

  // The environ value `key` as text (the access log's {key}e atoms).
  bool environ_text(const std::string& key, std::string* out) const;

 private:
  void log_error(const char* what);
  void close_iterable();

  const pybind11::object& app_;
  const EnvironBuilder& environ_;
  std::shared_ptr<ResponseState> state_;
  std::string path_;           // for log messages
  pybind11::object result_;    // what the app returned
  pybind11::object iterator_;
  pybind11::object current_;   // keeps the chunk `next()` handed out alive
  size_t written_index_ = 0;
  bool single_chunk_ = false;
  bool closed_ = true;
  pybind11::object environ_dict_;  // for post_request and the access log's environ atoms
  bool post_request_done_ = false;
};

// Logs the Python exception being handled as a traceback at ERROR level.
void log_python_error(std::string_view message);

}  // namespace cppgunicorn::wsgi
