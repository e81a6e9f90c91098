#include "base/body_channel.h"

#include <algorithm>
#include <utility>

namespace cppgunicorn::base {

BodyChannel::BodyChannel(size_t limit) : limit_(limit) {}

bool BodyChannel::push(std::string_view data) {
  bool wake;
  bool room;
  Waiter* waiter;
  {
    std::lock_guard lock(mu_);
    if (finished_ || failure_ != Failure::kNone) return true;
    waiter = waiter_;
    wake = buffer_.size() == taken_ && !data.empty();
    buffer_.append(data);
    pushed_ += data.size();
    room = buffer_.size() - taken_ < limit_;
    if (!room) writer_paused_ = true;
  }
  if (wake) {
    readable_.notify_all();
    waiter->notify();
  }
  return room;
}

void BodyChannel::finish() {
  Waiter* waiter;
  {
    std::lock_guard lock(mu_);
    if (finished_ || failure_ != Failure::kNone) return;
    finished_ = true;
    waiter = waiter_;
  }
  readable_.notify_all();
  waiter->notify();
}

void BodyChannel::fail(Failure failure, std::string message) {
  Waiter* waiter;
  {
    std::lock_guard lock(mu_);
    if (finished_ || failure_ != Failure::kNone) return;
    failure_ = failure == Failure::kNone ? Failure::kError : failure;
    message_ = std::move(message);
    waiter = waiter_;
  }
  readable_.notify_all();
  waiter->notify();
}

bool BodyChannel::has_room() const {
  std::lock_guard lock(mu_);
  return buffer_.size() - taken_ < limit_;
}

bool BodyChannel::ended() const {
  std::lock_guard lock(mu_);
  return finished_ || failure_ != Failure::kNone;
}

void BodyChannel::set_on_room(std::function<void()> on_room) {
  std::lock_guard lock(mu_);
  on_room_ = std::move(on_room);
}

void BodyChannel::set_waiter(Waiter* waiter) {
  std::lock_guard lock(mu_);
  waiter_ = waiter != nullptr ? waiter : &own_waiter_;
}

BodyChannel::Status BodyChannel::take(std::string* out, size_t max) {
  std::function<void()> on_room;
  Status status;
  {
    std::unique_lock lock(mu_);
    auto ready = [this] {
      return buffer_.size() > taken_ || finished_ || failure_ != Failure::kNone;
    };
    if (!ready()) waiter_->wait(lock, readable_, ready);
    size_t n = std::min(max, buffer_.size() - taken_);
    if (n > 0) {
      out->append(buffer_, taken_, n);
      taken_ += n;
      if (taken_ == buffer_.size()) {
        buffer_.clear();
        taken_ = 0;
      } else if (taken_ > buffer_.size() / 2) {
        // Keep the untaken tail at the front, so the buffer does not grow
        // with everything the body ever carried.
        buffer_.erase(0, taken_);
        taken_ = 0;
      }
      status = Status::kData;
      if (writer_paused_ && buffer_.size() - taken_ < limit_ / 2) {
        writer_paused_ = false;
        on_room = on_room_;
      }
    } else {
      status = finished_ ? Status::kEnd : Status::kFailed;
    }
  }
  if (on_room) on_room();
  return status;
}

BodyChannel::Failure BodyChannel::failure() const {
  std::lock_guard lock(mu_);
  return failure_;
}

std::string BodyChannel::message() const {
  std::lock_guard lock(mu_);
  return message_;
}

uint64_t BodyChannel::pushed() const {
  std::lock_guard lock(mu_);
  return pushed_;
}

}  // namespace cppgunicorn::base
