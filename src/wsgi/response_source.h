// What a connection pulls one response from: the status and headers the app
// gave start_response, then the body chunk by chunk. `Exchange` is the
// direct form (the app runs on the loop thread, under the GIL); the worker's
// thread pool has another that hands over what a Python thread produced.
// No Python header here: the worker layer holds these without knowing Python.
#pragma once

#include <string>
#include <string_view>

#include "http/request.h"

namespace cppgunicorn::wsgi {

class ResponseSource {
 public:
  enum class Next {
    kChunk,    // `*out` holds the next non-empty body chunk
    kDone,     // the iterable is exhausted
    kError,    // the app raised while producing the body (traceback logged)
    kPending,  // nothing yet: the producer wakes the connection when there is
  };

  virtual ~ResponseSource() = default;

  // The next non-empty chunk. The view stays valid until the next call to
  // next() or close().
  virtual Next next(std::string_view* out) = 0;

  // Keeps the chunk the last next() handed out valid past later next()
  // calls, until release_held_chunks(), so that several chunks can go out
  // in one write (http::BodyBatch). Returns its view, which may have moved.
  virtual std::string_view hold_chunk() = 0;
  virtual void release_held_chunks() = 0;

  // next() runs the app's own code on the calling thread, and returns only
  // when the app does (an Exchange). False: it takes what another thread
  // made, or says kPending at once.
  virtual bool runs_app() const = 0;

  // start_response was called (a status and headers are known). Valid once
  // next() returned something other than kPending.
  virtual bool responded() const = 0;
  virtual const std::string& status() const = 0;
  virtual const http::HeaderList& headers() const = 0;

  // True when the whole body is the first chunk: the iterable was a list or
  // tuple of at most one item and write() was not used.
  virtual bool body_is_single_chunk() const = 0;

  // The head went out: a later start_response(exc_info) must re-raise.
  virtual void mark_headers_sent() = 0;

  // The environ value `key` as text, for the access log's {key}e atoms;
  // false when the environ has no such string.
  virtual bool environ_text(const std::string& key, std::string* out) const = 0;

  // Ends the response early or normally; the iterable's close() is called
  // exactly once on every path.
  virtual void close() = 0;
};

}  // namespace cppgunicorn::wsgi
