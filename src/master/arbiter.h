// The master process: binds the listeners, forks and supervises the workers,
// and turns signals into gunicorn's actions. It runs no Python on its signal
// path (with --preload it imports the app once, before forking).
//
// One class, its members defined by concept across src/master/ (see
// docs/design.md, "The master's files"): arbiter.cpp wires start-up and the
// main loop; worker_lifecycle.cpp, signal_actions.cpp and listeners.cpp
// hold the rest. Services the master runs beside its workers get a file
// of their own and are polled from the main loop's one wait.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/heartbeat.h"
#include "config/config.h"
#include "log/access_log.h"
#include "net/listener.h"
#include "master/signal_pipe.h"
#include "net/tls.h"

namespace cppgunicorn::wsgi {
class Application;
class Interpreter;
}  // namespace cppgunicorn::wsgi

namespace cppgunicorn::master {

class Arbiter {
 public:
  // `exec_argv` is how we were started (for USR2's re-exec), `start_dir`
  // the directory we were started in.
  Arbiter(const config::Config& config, std::vector<std::string> exec_argv, std::string start_dir);
  ~Arbiter();
  Arbiter(const Arbiter&) = delete;
  Arbiter& operator=(const Arbiter&) = delete;

  // HUP: builds the configuration again from every source but the command
  // line (which stays as it was), checks it and applies what the master
  // process itself holds (Python hooks, environment, directory). Throws
  // with a message naming the bad setting; the arbiter then keeps its
  // current configuration.
  using ConfigReloader = std::function<config::Config()>;
  void set_config_reloader(ConfigReloader reloader) { reload_config_ = std::move(reloader); }

  // Serves until a stop signal or a fatal worker error; returns the exit
  // status (0, 1, or gunicorn's 3 / 4 for worker boot / app load errors).
  int run();

 private:
  struct WorkerSlot {
    int age = 0;
    bool retiring = false;        // told to stop; not counted towards the target
    bool outgoing = false;        // replaced by HUP: serves until its successors are ready
    uint64_t aborted_at_ms = 0;   // SIGABRT sent for a timeout
    uint64_t spawned_at_ms = 0;
    std::unique_ptr<base::Heartbeat> heartbeat;
  };

  // Sockets a HUP's configuration binds anew, before anything else changes.
  struct AddedListeners {
    std::vector<net::ListenSocket> sockets;
    std::vector<std::string> binds;
  };

  static uint64_t now_ms() { return base::Heartbeat::now_ms(); }

  // arbiter.cpp: start-up and the main loop.
  int serve();
  void remove_pidfile();
  std::string title(const char* role) const;

  // worker_lifecycle.cpp
  bool preload();
  void spawn_worker();
  [[noreturn]] void run_worker(base::Heartbeat& heartbeat);
  void manage_workers();
  void reap_workers();
  void back_off_after_crash(uint64_t lived_ms);
  void murder_stuck_workers();
  void signal_workers(int signum, bool retiring_too = true);
  void stop(bool graceful);
  int live_workers() const;

  // signal_actions.cpp
  void handle_signal(int signum);
  void reload();
  void apply_reloaded_config(config::Config fresh);
  void retire_replaced_workers();
  void reexec();

  // listeners.cpp
  // Adopts the sockets handed down (USR2, systemd) or binds every
  // configured address; true if it bound them itself. Throws, having
  // closed what it bound, if one cannot be bound.
  bool open_listeners_at_start();
  // Throws, having closed what it bound, if one cannot be bound.
  AddedListeners bind_added_addresses(const config::Config& fresh);
  // Lets go of the listeners no longer in `binds` and takes `added`.
  void replace_listeners(const std::vector<std::string>& binds, AddedListeners added);
  bool sockets_shared() const;
  // A listener as the log names it: https:// when TLS is on.
  std::string display(const net::ListenSocket& l) const;

  config::Config config_;
  std::vector<std::string> exec_argv_;
  std::string start_dir_;
  std::vector<net::ListenSocket> listeners_;
  // The bind address each listener was opened for, "" for one handed down
  // (USR2, systemd): HUP keeps those whose address is still configured.
  std::vector<std::string> listener_binds_;
  ConfigReloader reload_config_;
  log::AccessLog access_log_;
  std::map<pid_t, WorkerSlot> workers_;
  int target_workers_ = 1;
  int last_logged_workers_ = -1;  // gunicorn's DEBUG "N workers", when it changes
  int worker_age_ = 0;
  bool stopping_ = false;
  int halt_code_ = -1;  // >= 0: stop with this exit code
  std::string halt_reason_;
  SignalPipe signal_pipe_;
  pid_t reexec_pid_ = 0;     // the new master a USR2 started
  pid_t old_master_pid_ = 0; // the master whose USR2 started us
  bool is_worker_ = false;   // set in a forked worker, which must not clean up
  int crash_streak_ = 0;  // workers in a row that died soon after spawning
  uint64_t spawn_not_before_ms_ = 0;  // crash back-off: until then...
  int held_back_ = 0;                 // ...this many replacements wait
  uint64_t reload_deadline_ms_ = 0;  // HUP: retire the old workers by then at the latest
  std::shared_ptr<const net::TlsContext> tls_;  // set when TLS is configured
  std::unique_ptr<wsgi::Interpreter> preloaded_interpreter_;
  std::unique_ptr<wsgi::Application> preloaded_app_;
};

}  // namespace cppgunicorn::master
