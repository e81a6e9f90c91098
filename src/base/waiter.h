// How a thread that serves the app blocks until another thread changes
// something it shares with it. Every blocking point of the --threads pool
// goes through one of these: waiting for a job, waiting for room to hand
// over response chunks, and waiting for request body bytes (base::BodyChannel).
// A worker whose app threads are not OS threads (greenlets) gives the pool
// its own Waiter, and all three waits become cooperative together.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>

namespace cppgunicorn::base {

class Waiter {
 public:
  virtual ~Waiter() = default;
  // Returns once `ready()` is true. `lock` holds the mutex that guards what
  // `ready` reads; whoever changes it notifies `cv`. The GIL must not be
  // held (the thread that would change it may need it).
  virtual void wait(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                    const std::function<bool()>& ready) = 0;
  // The writer changed what `ready` reads and notified `cv`: a waiter that
  // does not sleep on `cv` (a parked greenlet) is woken here. Any thread,
  // no lock held.
  virtual void notify() {}
};

// OS threads: a plain condition-variable wait.
class ThreadWaiter final : public Waiter {
 public:
  void wait(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
            const std::function<bool()>& ready) override {
    cv.wait(lock, ready);
  }
};

}  // namespace cppgunicorn::base
