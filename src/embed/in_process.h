// The no-fork server (cppgunicorn::Mode::kInProcess): one worker's loop
// (worker::Worker, the one the master forks) run in the host's process on
// the calling thread, on listeners bound here, with the app imported in (or
// handed over from) the interpreter of this process.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "cppgunicorn/config.h"

namespace cppgunicorn::worker {
class Worker;
}

namespace cppgunicorn::embed {

// Puts back what a server set process-wide while it ran (the error log's
// level, file and sinks; the spool directory and budget). The hooks and
// Python logging sinks go with their wsgi::PythonConfig.
void reset_process_state();

class InProcessServer {
 public:
  // `program`: sys.argv of an interpreter the library starts.
  InProcessServer(const Config& config, std::vector<std::string> program);
  InProcessServer(const InProcessServer&) = delete;
  InProcessServer& operator=(const InProcessServer&) = delete;

  // Serves until stop(); the exit status (0, 1 bad settings or bind, 3
  // boot error, 4 app load error). `on_ready` runs once, on this thread,
  // with the bound addresses ("http://127.0.0.1:41523") and the first TCP
  // port, once connections are served. The calling thread may hold the GIL
  // (a Python host): it is released while serving and taken back at the end.
  using ReadyCallback = std::function<void(const std::vector<std::string>& addresses, int port)>;
  int run(const ReadyCallback& on_ready);

  // Thread-safe; before or during run(). grace_ms < 0: graceful_timeout.
  void stop(int64_t grace_ms);
  // Thread-safe: the configuration again, then a fresh worker.
  void reload();

  // Why run() returned before serving (for Server::start() to throw):
  // what the error log got, and what kind of failure it was.
  enum class FailureKind { kNone, kSetting, kListen, kOther };
  struct StartFailure {
    FailureKind kind = FailureKind::kNone;
    std::string message;
  };
  const StartFailure& start_failure() const { return failure_; }

 private:
  int serve(const ReadyCallback& on_ready);
  // Logs `message` as an error and keeps the first one as the reason.
  void fail(FailureKind kind, const std::string& message);

  Config config_;
  std::vector<std::string> program_;
  std::mutex mu_;  // guards what follows
  worker::Worker* worker_ = nullptr;  // the one serving now
  bool stop_asked_ = false;
  int64_t stop_grace_ms_ = -1;
  bool reload_asked_ = false;
  int graceful_timeout_ms_ = 30000;
  StartFailure failure_;  // run()'s thread only, read after it returns
};

}  // namespace cppgunicorn::embed
