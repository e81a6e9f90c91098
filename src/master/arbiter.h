// The master process: binds the listeners, forks and supervises the workers,
// and turns signals into gunicorn's actions. It runs no Python.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "config/config.h"
#include "log/access_log.h"
#include "net/listener.h"

namespace cppgunicorn::master {

class Arbiter {
 public:
  explicit Arbiter(const config::Config& config);
  ~Arbiter();
  Arbiter(const Arbiter&) = delete;
  Arbiter& operator=(const Arbiter&) = delete;

  // Serves until a stop signal or a fatal worker error; returns the exit
  // status (0, 1, or gunicorn's 3 / 4 for worker boot / app load errors).
  int run();

 private:
  struct WorkerSlot {
    int age = 0;
    bool retiring = false;  // told to stop; not counted towards the target
  };

  void install_signal_handlers();
  void restore_signal_handlers();
  void handle_signal(int signum);
  void spawn_worker();
  void manage_workers();
  void reap_workers();
  void signal_workers(int signum, bool retiring_too = true);
  void stop(bool graceful);
  int live_workers() const;

  config::Config config_;
  std::vector<net::ListenSocket> listeners_;
  log::AccessLog access_log_;
  std::map<pid_t, WorkerSlot> workers_;
  int target_workers_ = 1;
  int worker_age_ = 0;
  bool stopping_ = false;
  int halt_code_ = -1;  // >= 0: stop with this exit code
  std::string halt_reason_;
  int signal_pipe_[2] = {-1, -1};
  double last_spawn_failure_ = 0;
  int rapid_failures_ = 0;
};

}  // namespace cppgunicorn::master
