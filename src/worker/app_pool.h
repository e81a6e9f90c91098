// --threads N > 1 (gunicorn's gthread meaning): N Python threads call the
// app while the loop thread does all socket I/O without the GIL.
// -k gevent / -k eventlet: the same, with greenlets on the hub of the
// worker's main thread in place of the threads (worker/green_hub.h).
//
// A connection hands a complete request to the pool (`submit`) and pulls
// the response from the `ThreadedResponse` it gets back, exactly as it pulls
// from a `wsgi::Exchange` on the loop thread, except that `next()` may say
// "nothing yet" (kPending); the pool then wakes the connection through one
// `uv_async_t` once its thread has produced more. Chunks cross threads as
// copies in a per-request channel; a thread that got more than
// kChannelLimit ahead of its connection waits, without the GIL, until the
// connection took them (and the connection takes them only while its socket
// backlog is small), so a slow reader costs bounded memory.
//
// A request whose body is streamed (--no-request-buffering) carries a
// base::BodyChannel: its thread waits there for body bytes, and wakes the
// connection through the same uv_async_t when it made room for more.
//
// The threads block in three places only: waiting for a job, for room in a
// response channel, and for body bytes. All three go through one
// base::Waiter, the pool's one point of contact with how its threads wait.
#pragma once

#include <uv.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/heartbeat.h"
#include "base/waiter.h"
#include "http/request.h"
#include "net/handle.h"
#include "worker/serve_waits.h"
#include "wsgi/environ.h"
#include "wsgi/interpreter.h"
#include "wsgi/response_source.h"

namespace cppgunicorn::wsgi {
class Application;
}

namespace cppgunicorn::worker {

struct ResponseChannel;
class GreenHub;

// The loop-thread side of one request served on a pool thread. Every method
// runs on the loop thread and never takes the GIL.
class ThreadedResponse final : public wsgi::ResponseSource {
 public:
  explicit ThreadedResponse(std::shared_ptr<ResponseChannel> channel);
  ~ThreadedResponse() override;
  ThreadedResponse(const ThreadedResponse&) = delete;
  ThreadedResponse& operator=(const ThreadedResponse&) = delete;

  Next next(std::string_view* out) override;
  std::string_view hold_chunk() override {
    held_.push_back(std::move(current_));
    return held_.back();
  }
  void release_held_chunks() override { held_.clear(); }
  bool runs_app() const override { return false; }
  bool responded() const override { return responded_; }
  const std::string& status() const override { return status_; }
  const http::HeaderList& headers() const override { return headers_; }
  bool body_is_single_chunk() const override { return single_chunk_; }
  // The thread marked them when it handed over the first chunk: the head
  // is fixed from then on.
  void mark_headers_sent() override {}
  bool environ_text(const std::string& key, std::string* out) const override;
  // Tells the thread to stop iterating (it calls the iterable's close())
  // and drops whatever it produced that was not taken yet.
  void close() override;

 private:
  std::shared_ptr<ResponseChannel> channel_;
  std::string current_;  // the chunk the last next() handed out
  std::deque<std::string> held_;  // chunks kept for one write (a deque: they never move)
  bool responded_ = false;
  bool single_chunk_ = false;
  std::string status_;
  http::HeaderList headers_;
  std::vector<std::pair<std::string, std::string>> environ_values_;
};

class AppPool {
 public:
  // `environ_keys`: the environ values the access log prints ({key}e),
  // copied on the thread while the environ is at hand. `waiter`: how the
  // threads block (a base::ThreadWaiter when null).
  AppPool(uv_loop_t* loop, const wsgi::Application& app, int threads,
          std::vector<std::string> environ_keys = {},
          std::unique_ptr<base::Waiter> waiter = nullptr);
  // Greenlets of `green_backend` ("gevent" or "eventlet"), at most
  // `greenlets` at once, on the hub that run_hub() runs.
  AppPool(uv_loop_t* loop, const wsgi::Application& app, std::string green_backend,
          size_t greenlets, std::vector<std::string> environ_keys = {});
  ~AppPool();
  AppPool(const AppPool&) = delete;
  AppPool& operator=(const AppPool&) = delete;

  // Creates the wake-up handle and starts the threads; the GIL must not be
  // held. Returns 0 or a libuv error.
  int start();

  bool green() const { return green_ != nullptr; }
  // Green pools, on the worker's main thread while the loop runs on
  // another: runs the hub until stop_hub() and the greenlets returned (or
  // `grace` passed after that). Throws if the hub itself fails.
  void run_hub(std::chrono::milliseconds grace);
  // Green pools, from the loop thread once the loop ended.
  void stop_hub();

  // Queues a request (its body moves into the job): a complete one, or one
  // whose body_stream the connection still feeds. `on_ready` runs on the
  // loop thread when the response has something new after next() said
  // kPending, or when the app made room in the body_stream; it is never
  // called after the response is closed.
  std::unique_ptr<ThreadedResponse> submit(http::Request& request, const wsgi::PeerInfo& peer,
                                           std::function<void()> on_ready);

  // The loop is alive, but an app call is only as alive as its thread:
  // stamps the heartbeat with the start of the oldest app call still
  // running (else now) and notes that request, so a call stuck past
  // --timeout gets the worker aborted as on the loop thread.
  void beat(base::Heartbeat& heartbeat);

  // Closes the wake-up handle so that the loop can end.
  void close_handle();

  // After the loop ended: lets the threads finish and joins them. False when
  // some are still inside the app after `grace` (they are left running and
  // the process must exit without finalising Python). For a green pool,
  // what run_hub() found.
  bool stop(std::chrono::milliseconds grace);

  // A thread waits while this much of its response is not taken yet.
  static constexpr size_t kChannelLimit = 256 * 1024;
  // A hub that answers no ping for this long is held by one greenlet.
  static constexpr uint64_t kHubLateMs = 1000;

 private:
  struct Slot {
    uint64_t since_ms = 0;  // 0: not inside the app
    std::string method, target;
  };
  // The app of one thread waiting for request body bytes: the pool's
  // waiter, with the heartbeat told that this is the client's time, not
  // the app's.
  class BodyWaiter final : public base::Waiter {
   public:
    BodyWaiter(AppPool& pool, size_t slot) : pool_(pool), slot_(slot) {}
    void wait(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
              const std::function<bool()>& ready) override;
    // Green workers: the greenlet in this slot parks under its request's
    // channel id, and the loop's pushes wake it there.
    void notify() override;
    void serving(uint64_t channel_id) { channel_id_.store(channel_id); }

   private:
    AppPool& pool_;
    size_t slot_;
    std::atomic<uint64_t> channel_id_{0};
  };

  static void on_async(uv_async_t* handle);
  void thread_main(size_t slot);
  bool serve_one_green();
  void serve(size_t slot, const std::shared_ptr<ResponseChannel>& channel);
  // What serve() threw: logged, and the request ends in an error event.
  void fail(size_t slot, const std::shared_ptr<ResponseChannel>& channel, const std::string& what);
  bool wait_for_room(size_t slot, ResponseChannel& channel);
  void wake(const std::shared_ptr<ResponseChannel>& channel);
  void set_slot(size_t slot, uint64_t since_ms);

  uv_loop_t* loop_;
  const wsgi::Application& app_;
  size_t thread_count_;  // or greenlets at most
  std::vector<std::string> environ_keys_;
  std::unique_ptr<base::Waiter> waiter_;
  std::vector<std::unique_ptr<BodyWaiter>> body_waiters_;  // one per thread
  // Where serving waits for the loop: thread_waits_, or the green hub.
  ThreadWaits thread_waits_;
  std::unique_ptr<GreenHub> green_;
  ServeWaits* waits_ = &thread_waits_;
  uint64_t next_channel_id_ = 0;  // loop thread
  bool hub_finished_ = true;
  net::UvHandle<uv_async_t> async_;
  std::vector<std::thread> threads_;

  std::mutex mu_;  // guards everything below
  std::condition_variable jobs_cv_;
  std::condition_variable exit_cv_;
  std::deque<std::shared_ptr<ResponseChannel>> jobs_;
  std::vector<std::shared_ptr<ResponseChannel>> ready_;
  std::vector<Slot> slots_;
  std::vector<size_t> free_slots_;  // green pools: slots no greenlet holds
  size_t running_ = 0;
  bool stopping_ = false;
  bool async_open_ = false;
};

}  // namespace cppgunicorn::worker
