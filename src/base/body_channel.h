// A request body on its way from the connection (the loop thread) to the
// app's wsgi.input (a pool thread), when bodies are not buffered
// (--no-request-buffering): the loop pushes bytes as the parser decodes
// them, the reader takes them as the app asks, and waits (through a
// base::Waiter, without the GIL) while there are none yet.
//
// Backpressure: push() says when the bytes not taken yet have reached the
// channel's limit; the loop then stops reading the socket, and the reader
// calls `on_room` once it has taken the buffer below half the limit, so
// a slow app costs bounded memory however fast the client sends.
//
// No socket, no Python: the worker layer owns one per streamed request and
// the wsgi layer reads it.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>

#include "base/waiter.h"

namespace cppgunicorn::base {

class BodyChannel {
 public:
  // Why the body ended before its end: the reader reports it to the app.
  enum class Failure {
    kNone,
    kTruncated,  // the client closed mid-body; a Content-Length body reads short
    kTimedOut,   // no byte for the request's timeout
    kError,      // anything else that ends the body (message() says what)
  };
  enum class Status {
    kData,    // bytes were appended
    kEnd,     // the whole body was taken
    kFailed,  // the body ended early: failure() and message() say how
  };

  explicit BodyChannel(size_t limit);
  BodyChannel(const BodyChannel&) = delete;
  BodyChannel& operator=(const BodyChannel&) = delete;

  // --- The writer (the loop thread). Ignored once the body ended.
  // Appends body bytes; false when the untaken bytes reached the limit
  // (stop reading until on_room is called).
  bool push(std::string_view data);
  // The body is complete: the reader gets kEnd after the last byte.
  void finish();
  // The body ended early. The reader still gets the bytes pushed before,
  // then kFailed.
  void fail(Failure failure, std::string message);
  // No more pushes are wanted below the limit: reading may go on.
  bool has_room() const;
  // The writer's end was reached (finish or fail).
  bool ended() const;
  // Called on the reader's thread when it made room after push() said
  // false; must be safe to call from any thread.
  void set_on_room(std::function<void()> on_room);

  // --- The reader (the app's thread).
  // How take() waits; a ThreadWaiter unless set (before the first take()).
  void set_waiter(Waiter* waiter);
  // Waits until there are bytes or the body ended, then moves up to `max`
  // (> 0) of them to the end of `out`.
  Status take(std::string* out, size_t max);
  Failure failure() const;
  std::string message() const;
  // Bytes the writer pushed in all.
  uint64_t pushed() const;

 private:
  const size_t limit_;
  mutable std::mutex mu_;
  std::condition_variable readable_;
  std::string buffer_;   // pushed, not taken yet
  size_t taken_ = 0;     // the front of buffer_ the reader took
  uint64_t pushed_ = 0;
  bool finished_ = false;
  Failure failure_ = Failure::kNone;
  std::string message_;
  bool writer_paused_ = false;  // push() said false; on_room is owed
  std::function<void()> on_room_;
  ThreadWaiter own_waiter_;
  Waiter* waiter_ = &own_waiter_;
};

}  // namespace cppgunicorn::base
