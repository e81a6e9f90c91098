// The channel a streamed request body crosses from the loop thread to the
// app's thread: order, ends, failures, backpressure and the waiter.
#include "base/body_channel.h"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

using namespace cppgunicorn;
using Channel = base::BodyChannel;

TEST_CASE("body channel: bytes come out in order, then the end") {
  Channel c(1024);
  CHECK(c.push("hello "));
  CHECK(c.push("world"));
  c.finish();
  std::string out;
  CHECK(c.take(&out, 4) == Channel::Status::kData);
  CHECK(out == "hell");
  CHECK(c.take(&out, 100) == Channel::Status::kData);
  CHECK(out == "hello world");
  CHECK(c.take(&out, 100) == Channel::Status::kEnd);
  CHECK(c.take(&out, 100) == Channel::Status::kEnd);
  CHECK(c.pushed() == 11);
  CHECK(c.push("late"));  // ignored once ended
  CHECK(c.pushed() == 11);
}

TEST_CASE("body channel: a failure comes after the bytes pushed before it") {
  Channel c(1024);
  c.push("abc");
  c.fail(Channel::Failure::kTimedOut, "no request body bytes for 30 s");
  c.finish();  // the first end wins
  std::string out;
  CHECK(c.take(&out, 100) == Channel::Status::kData);
  CHECK(out == "abc");
  CHECK(c.take(&out, 100) == Channel::Status::kFailed);
  CHECK(c.failure() == Channel::Failure::kTimedOut);
  CHECK(c.message() == "no request body bytes for 30 s");
}

TEST_CASE("body channel: push says stop at the limit; taking below half calls on_room once") {
  Channel c(10);
  int rooms = 0;
  c.set_on_room([&] { ++rooms; });
  CHECK(c.push("12345"));
  CHECK_FALSE(c.push("67890"));  // 10 untaken: the writer stops reading
  CHECK_FALSE(c.has_room());
  std::string out;
  c.take(&out, 3);  // 7 left: not below half yet
  CHECK(rooms == 0);
  CHECK(c.has_room());
  c.take(&out, 3);  // 4 left
  CHECK(rooms == 1);
  c.take(&out, 4);
  CHECK(rooms == 1);  // owed once per stop
  CHECK(out == "1234567890");
  CHECK(c.push("ab"));
  c.take(&out, 2);
  CHECK(rooms == 1);  // push never said stop: nothing owed
}

TEST_CASE("body channel: a reader waits for bytes pushed from another thread") {
  Channel c(1024);
  std::string got;
  std::thread reader([&] {
    std::string out;
    while (c.take(&out, 2) == Channel::Status::kData) {
    }
    got = out;
  });
  for (const char* piece : {"one ", "two ", "three"}) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    c.push(piece);
  }
  c.finish();
  reader.join();
  CHECK(got == "one two three");
}

namespace {
// Counts the waits and does them as a thread would.
class CountingWaiter final : public base::Waiter {
 public:
  std::atomic<int> waits{0};
  void wait(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
            const std::function<bool()>& ready) override {
    ++waits;
    cv.wait(lock, ready);
  }
};
}  // namespace

TEST_CASE("body channel: take() waits through the waiter it was given, only when it must") {
  Channel c(1024);
  CountingWaiter waiter;
  c.set_waiter(&waiter);
  c.push("ready");
  std::string out;
  CHECK(c.take(&out, 100) == Channel::Status::kData);
  CHECK(waiter.waits == 0);  // bytes at hand: no wait
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    c.fail(Channel::Failure::kError, "the connection closed");
  });
  CHECK(c.take(&out, 100) == Channel::Status::kFailed);
  writer.join();
  CHECK(waiter.waits == 1);
}
