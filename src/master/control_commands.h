// The control socket's commands, gunicorn's (gunicorn/ctl/handlers.py):
// show all|workers|dirty|config|stats|listeners, worker add|remove|kill,
// dirty add|remove, reload, reopen, shutdown [graceful|quick], help. Each
// answers with the fields gunicorn's does; what the master knows and may
// do is behind ControlTarget, which the arbiter implements.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "base/json.h"
#include "config/config.h"

namespace cppgunicorn::master {

struct ControlWorker {
  pid_t pid = 0;
  int age = 0;
  bool booted = false;    // its loop listens
  bool aborted = false;   // sent SIGABRT for a timeout
  double last_heartbeat_s = 0;
};

struct ControlListener {
  std::string address;  // as gunicorn's str(listener): http://host:port, unix:/path
  int fd = -1;
  std::string type;     // tcp, tcp6, unix
};

struct ControlStats {
  double uptime_s = 0;
  int workers_spawned = 0;
  int workers_killed = 0;
  int reloads = 0;
};

class ControlTarget {
 public:
  virtual ~ControlTarget() = default;
  virtual std::vector<ControlWorker> control_workers() const = 0;
  virtual std::vector<ControlListener> control_listeners() const = 0;
  virtual ControlStats control_stats() const = 0;
  virtual const config::Config& control_config() const = 0;
  virtual std::string control_worker_class() const = 0;
  virtual int target_workers() const = 0;
  // As TTIN/TTOU: the master spawns or retires workers on its next turn.
  virtual void set_target_workers(int n) = 0;
  // SIGTERM to one of our workers; false if `pid` is none of them.
  virtual bool terminate_worker(pid_t pid, std::string* error) = 0;
};

// One request object in, one response object out (with the request's id).
base::Json answer_control_request(ControlTarget& target, const base::Json& request);

// gunicorn's shlex.split of a command line: whitespace-separated words,
// single and double quotes, backslash escapes. Throws std::invalid_argument
// for an unterminated quote.
std::vector<std::string> split_command(const std::string& line);

}  // namespace cppgunicorn::master
