// The gevent and eventlet worker classes: the app runs in greenlets on the
// hub of the worker's main thread, while the libuv loop runs on a thread of
// its own and does all socket I/O, as with --threads.
//
// The two threads meet at one eventfd. The loop thread writes it (no GIL
// needed) when it queued a request, when a parked greenlet may go on, and
// on every heartbeat sweep. A dispatcher greenlet (python/cppgunicorn/
// _green.py) waits on it cooperatively, then takes what is new: it starts
// greenlets for queued requests and wakes the parked ones. A greenlet parks
// instead of blocking wherever a pool thread would block (`ServeWaits`).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "worker/serve_waits.h"

namespace cppgunicorn::worker {

class GreenHub final : public ServeWaits {
 public:
  // What the dispatcher asks of the pool, on the hub thread with the GIL.
  struct Pool {
    size_t size = 0;                      // greenlets at most (--worker-connections)
    std::function<size_t()> queued;       // requests waiting for a greenlet
    std::function<bool()> serve_one;      // serves one queued request; false: none
    std::function<bool()> stopping;       // the loop has ended: finish and return
  };

  // `backend`: "gevent" or "eventlet". Throws std::system_error if the
  // eventfd cannot be made.
  explicit GreenHub(std::string backend);
  ~GreenHub() override;
  GreenHub(const GreenHub&) = delete;
  GreenHub& operator=(const GreenHub&) = delete;

  // Monkey-patches the process for `backend` (gunicorn's GeventWorker and
  // EventletWorker do it first thing in the worker, before the app is
  // imported). With the GIL; false after logging the traceback.
  static bool patch(const std::string& backend);

  // Runs the dispatcher on this (the main) thread until `pool.stopping()`
  // and every greenlet returned, or `grace` passed after that (then false:
  // some are still inside the app). Takes the GIL. Throws when the
  // dispatcher itself fails (pybind11::error_already_set).
  bool run(const Pool& pool, std::chrono::milliseconds grace);

  // Loop side, any thread, no GIL: wakes the dispatcher.
  void post();
  // Heartbeat sweep: wakes the dispatcher, which notes the time it ran.
  // A hub held by a greenlet that never yields stops answering.
  void ping() { post(); }
  uint64_t last_seen_ms() const { return last_seen_ms_.load(std::memory_order_relaxed); }

  // ServeWaits, on the hub thread: park the current greenlet until the
  // loop thread notifies the channel.
  void wait(ResponseChannel& channel, const std::function<bool()>& ready) override;
  void notify(ResponseChannel& channel) override;

  // The same for a wait on another object (a request body still arriving):
  // `ready` is checked with `lock` held, which is released while the
  // greenlet is parked under channel `id`. Called without the GIL.
  void wait_on(uint64_t id, std::unique_lock<std::mutex>& lock,
               const std::function<bool()>& ready);
  void notify_id(uint64_t id);

 private:
  std::vector<uint64_t> take();

  std::string backend_;
  int fd_ = -1;  // the eventfd
  std::atomic<bool> signalled_{false};  // written, and not taken yet
  std::atomic<uint64_t> last_seen_ms_;
  std::function<void(uint64_t)> park_;  // set while run() runs; calls into Python

  std::mutex mu_;  // guards woken_
  std::vector<uint64_t> woken_;
};

}  // namespace cppgunicorn::worker
