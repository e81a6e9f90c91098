// Where code that serves a request off the loop thread waits for the loop
// thread, and how the loop thread wakes it. Each way of running the app
// brings its own kind of wait (a pool thread blocks on a condition
// variable; a greenlet parks on its hub), and the request path in
// `AppPool::serve` stays one piece of code for both.
//
// Every blocking point of that path goes through `wait`: today, room in the
// response channel (backpressure from a slow client). A new one (body bytes
// still on their way, say) is a new predicate plus a `notify` where the loop
// thread changes what the predicate reads.
#pragma once

#include <condition_variable>
#include <functional>

namespace cppgunicorn::worker {

struct ResponseChannel;

class ServeWaits {
 public:
  virtual ~ServeWaits() = default;

  // Serving side: returns once `ready()` holds. `ready` runs with the
  // channel's mutex held, and must only read the channel. A pool thread
  // calls this without the GIL; a greenlet with it (its wait lets the
  // other greenlets run). The mutex is never held while Python runs.
  virtual void wait(ResponseChannel& channel, const std::function<bool()>& ready) = 0;

  // Loop side: what a wait on `channel` may be waiting for has changed.
  // Called without the channel's mutex and without the GIL.
  virtual void notify(ResponseChannel& channel) = 0;
};

// --threads N: the serving thread sleeps on the channel's condition variable.
class ThreadWaits final : public ServeWaits {
 public:
  void wait(ResponseChannel& channel, const std::function<bool()>& ready) override;
  void notify(ResponseChannel& channel) override;
};

}  // namespace cppgunicorn::worker
