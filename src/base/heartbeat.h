// A page of memory shared by the master and one worker, mapped before fork:
// the worker stamps it while its loop runs and notes the request it is
// serving; the master reads it to find workers stuck past --timeout and to
// say which request they were stuck in.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

namespace cppgunicorn::base {

class Heartbeat {
 public:
  // Maps the page; with `tmp_dir`, backed by an unlinked file in it (as
  // gunicorn's --worker-tmp-dir), else anonymous. Throws std::runtime_error.
  explicit Heartbeat(const std::string& tmp_dir);
  ~Heartbeat();
  Heartbeat(const Heartbeat&) = delete;
  Heartbeat& operator=(const Heartbeat&) = delete;

  void beat();
  // The worker has booted and listens (so HUP can retire its predecessors).
  void set_ready();
  bool ready() const;
  // Stamps an earlier moment (a now_ms() value): with --threads the loop
  // is alive, but the app call that started at `ms` may be stuck.
  void beat_at(uint64_t ms);
  uint64_t last_beat_ms() const;
  void set_request(std::string_view method, std::string_view target);
  void clear_request();
  std::string request() const;

  static uint64_t now_ms();

 private:
  struct Page {
    std::atomic<uint64_t> beat_ms;
    std::atomic<uint32_t> request_length;
    std::atomic<uint32_t> ready;
    char request[244];
  };
  Page* page_ = nullptr;
};

}  // namespace cppgunicorn::base
