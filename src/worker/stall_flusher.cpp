#include "worker/stall_flusher.h"

#include <sys/socket.h>

#include <cerrno>
#include <csignal>

namespace cppgunicorn::worker {

namespace {
// With nothing armed for this long the thread waits without a deadline
// (no wake-ups at all on a worker that streams nothing).
constexpr std::chrono::milliseconds kIdleAfter{100};

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             StallFlusher::Clock::now().time_since_epoch())
      .count();
}
}  // namespace

StallFlusher::~StallFlusher() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void StallFlusher::arm(int fd, const std::vector<std::string_view>& pieces) {
  // kIdle: the flusher does not look at fd_ and iov_.
  fd_ = fd;
  iov_.clear();
  for (std::string_view p : pieces) {
    if (!p.empty()) iov_.push_back({const_cast<char*>(p.data()), p.size()});
  }
  outcome_ = {};
  armed_at_ns_.store(now_ns(), std::memory_order_relaxed);
  uint64_t count = (state_.load(std::memory_order_relaxed) >> 2) + 1;
  // Sequentially consistent, as the flusher's store of sleeping_ and load
  // of state_: one of the two sides sees the other.
  state_.store(count << 2 | kArmed);
  if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
  if (sleeping_.load()) {
    // Only a thread waiting without a deadline needs waking; one counting
    // down sees this arm when it wakes.
    std::lock_guard lock(mu_);
    wake_.notify_one();
  }
}

StallFlusher::Outcome StallFlusher::disarm() {
  uint64_t armed = state_.load(std::memory_order_relaxed);
  uint64_t idle = (armed >> 2) << 2 | kIdle;
  if ((armed & 3) == kIdle) return {};
  if ((armed & 3) == kArmed &&
      state_.compare_exchange_strong(armed, idle, std::memory_order_acq_rel)) {
    return {};
  }
  // The flusher took this call: its one non-blocking write ends soon.
  while ((state_.load(std::memory_order_acquire) & 3) != kFlushed) std::this_thread::yield();
  Outcome o = outcome_;
  state_.store(idle, std::memory_order_release);
  return o;
}

void StallFlusher::flush() {
  flushes_.fetch_add(1, std::memory_order_relaxed);
  msghdr msg{};
  msg.msg_iov = iov_.data();
  msg.msg_iovlen = iov_.size();
  for (;;) {
    // Non-blocking: what the kernel does not take now, the loop thread
    // queues when the call returns.
    ssize_t n = ::sendmsg(fd_, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) {
      outcome_.written = static_cast<size_t>(n);
      return;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) outcome_.error = errno;
    return;
  }
}

void StallFlusher::run() {
  // Signals are the loop thread's business (libuv's handlers).
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  const int64_t stall_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(stall_).count();
  const int64_t idle_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(kIdleAfter).count();
  int64_t last_armed_ns = now_ns();
  std::unique_lock lock(mu_);
  while (!stop_) {
    int64_t now = now_ns();
    uint64_t state = state_.load(std::memory_order_acquire);
    std::chrono::nanoseconds wait{stall_ns};
    if ((state & 3) == kArmed) {
      last_armed_ns = now;
      int64_t due = armed_at_ns_.load(std::memory_order_relaxed) + stall_ns;
      if (now >= due) {
        if (state_.compare_exchange_strong(state, (state >> 2) << 2 | kFlushing,
                                           std::memory_order_acq_rel)) {
          flush();
          state_.store((state >> 2) << 2 | kFlushed, std::memory_order_release);
        }
        continue;
      }
      wait = std::chrono::nanoseconds(due - now);
    } else if ((state & 3) == kIdle && now - last_armed_ns > idle_ns) {
      sleeping_.store(true);
      // An arm between the load above and here has seen sleeping_ false
      // and not notified: look once more before waiting.
      if ((state_.load() & 3) != kArmed) {
        wake_.wait(lock, [this] {
          return stop_ || (state_.load(std::memory_order_acquire) & 3) == kArmed;
        });
      }
      sleeping_.store(false, std::memory_order_relaxed);
      last_armed_ns = now_ns();
      continue;
    }
    // Armed calls come and go faster than the stall time (a generator
    // producing quickly): look again when this one would be due.
    wake_.wait_for(lock, wait);
  }
}

}  // namespace cppgunicorn::worker
