// Writes a connection's gathered response bytes when the app, asked for the
// next chunk on the loop thread, takes too long to answer.
//
// With --threads 1 the loop thread itself runs the app's generator: while
// it is inside one next() it cannot write anything. Gathering chunks for
// one write (http::BodyBatch) therefore means asking the generator for
// more while bytes are held, and a generator that then blocks (an event
// stream between events, a slow query) would hold them back with it. This
// thread bounds that: it is told, around each such call, what is held and
// for which socket, and if the call is still running after the stall time
// it writes those bytes itself. The loop thread learns, when the call
// returns, how much went out.
//
// The bytes it writes are never touched by the loop thread during the call
// (they are the Python bytes objects the exchange keeps alive, the head and
// the batch's size line), and the socket stays open: only the loop thread
// closes it, and it is busy in the call. No Python, no GIL here.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <string_view>
#include <thread>
#include <vector>

#include <sys/uio.h>

namespace cppgunicorn::worker {

class StallFlusher {
 public:
  using Clock = std::chrono::steady_clock;
  // How long the app may take to make the next chunk before what is held
  // is written without it. While a stream runs the thread looks once per
  // stall time, and each look costs the worker's CPU (a timer interrupt
  // and two context switches): at 0.5 ms that was 8-10 % of the 1 MiB
  // stream's CPU per request, at 2 ms it is within the noise
  // (docs/performance.md, "Streamed responses"). 2 ms is still far below
  // what a client can tell from the network's own delays.
  static constexpr std::chrono::microseconds kStall{2000};

  explicit StallFlusher(std::chrono::microseconds stall = kStall) : stall_(stall) {}
  ~StallFlusher();
  StallFlusher(const StallFlusher&) = delete;
  StallFlusher& operator=(const StallFlusher&) = delete;

  // Before the call: `pieces` (valid until disarm) are held for `fd`.
  void arm(int fd, const std::vector<std::string_view>& pieces);
  struct Outcome {
    size_t written = 0;  // bytes of the pieces the flusher wrote, in order
    int error = 0;       // errno of a failed write (the peer is gone)
  };
  // After the call: whether, and how much, went out meanwhile.
  Outcome disarm();

  // How many times the flusher wrote (for tests and profiles).
  size_t flushes() const { return flushes_.load(std::memory_order_relaxed); }

 private:
  // The low two bits of state_; the rest counts arms, so that the flusher
  // never takes one call's bytes for another's.
  enum Phase : uint64_t { kIdle = 0, kArmed = 1, kFlushing = 2, kFlushed = 3 };

  void run();
  // The flusher won the armed call: writes its bytes once.
  void flush();

  const std::chrono::microseconds stall_;
  // The loop thread's arm and disarm cost two atomic operations and a
  // clock read, no lock: arm happens once per chunk of a streamed body.
  // fd_, iov_ and outcome_ change hands through state_: the loop thread
  // writes fd_ and iov_ while kIdle; the flusher reads them and writes
  // outcome_ only after moving kArmed to kFlushing; the loop thread reads
  // outcome_ once it sees kFlushed.
  std::atomic<uint64_t> state_{0};
  std::atomic<int64_t> armed_at_ns_{0};
  int fd_ = -1;
  std::vector<iovec> iov_;
  Outcome outcome_;
  std::atomic<size_t> flushes_{0};

  // Sleeping with nothing to watch, and stopping.
  std::mutex mu_;
  std::condition_variable wake_;
  std::atomic<bool> sleeping_{false};
  bool stop_ = false;
  std::thread thread_;  // started at the first arm
};

// Arms `flusher` (when not null) for the lifetime of a scope.
class StallWatch {
 public:
  StallWatch(StallFlusher* flusher, int fd, const std::vector<std::string_view>& pieces)
      : flusher_(flusher) {
    if (flusher_ != nullptr) flusher_->arm(fd, pieces);
  }
  ~StallWatch() {
    if (flusher_ != nullptr) flusher_->disarm();
  }
  StallWatch(const StallWatch&) = delete;
  StallWatch& operator=(const StallWatch&) = delete;
  StallFlusher::Outcome disarm() {
    StallFlusher::Outcome o;
    if (flusher_ != nullptr) o = flusher_->disarm();
    flusher_ = nullptr;
    return o;
  }

 private:
  StallFlusher* flusher_;
};

}  // namespace cppgunicorn::worker
