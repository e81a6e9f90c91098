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

#include "base/accept_board.h"
#include "base/heartbeat.h"
#include "config/config.h"
#include "log/access_log.h"
#include "master/metrics_server.h"
#include "metrics/exposition.h"
#include "metrics/worker_counters.h"
#include "net/listener.h"
#include "master/control_commands.h"
#include "master/control_socket.h"
#include "master/signal_pipe.h"
#include "net/tls.h"

namespace cppgunicorn::wsgi {
class Application;
class Interpreter;
}  // namespace cppgunicorn::wsgi

namespace cppgunicorn::master {

class Arbiter : private ControlTarget {
 public:
  // `exec_argv` is how we were started (for USR2's re-exec), `start_dir`
  // the directory we were started in.
  Arbiter(const config::Config& config, std::vector<std::string> exec_argv, std::string start_dir);
  ~Arbiter() override;
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

  // In a host program (cppgunicorn::Server) rather than the command:
  // signal handlers only with `handle_signals`, and only our own children
  // reaped (the command, maybe PID 1 in a container, reaps every child).
  void set_in_host(bool handle_signals) {
    in_host_ = true;
    handle_signals_ = handle_signals;
  }
  // Thread-safe, from the construction on: acts as if `signum` had been
  // received (SIGTERM, SIGINT, SIGHUP...).
  void post_signal(int signum) { signal_pipe_.post(signum); }
  // Runs once the listeners are bound, before the first worker is forked.
  using ReadyCallback = std::function<void(const std::vector<std::string>& addresses, int port)>;
  void set_ready_callback(ReadyCallback ready) { ready_ = std::move(ready); }

 private:
  struct WorkerSlot {
    int age = 0;
    bool retiring = false;        // told to stop; not counted towards the target
    bool outgoing = false;        // replaced by HUP: serves until its successors are ready
    uint64_t aborted_at_ms = 0;   // SIGABRT sent for a timeout
    uint64_t spawned_at_ms = 0;
    std::unique_ptr<base::Heartbeat> heartbeat;
    std::unique_ptr<metrics::SharedCounters> counters;
    int board_slot = -1;  // on accept_board_
    // Why the master retired it, when the exit status cannot tell (max-memory).
    metrics::ExitCause retire_cause = metrics::ExitCause::kNone;
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
  // The main loop's one wait (and the stop's): up to `timeout_ms` for a
  // signal, serving the metrics server's clients meanwhile.
  void wait_for_events(int timeout_ms);

  // worker_lifecycle.cpp
  bool preload();
  void spawn_worker();
  [[noreturn]] void run_worker(base::Heartbeat& heartbeat, metrics::WorkerCounters& counters,
                               int board_slot);
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

  // arbiter_control.cpp: the control socket's view of the master.
  // Opens, moves or closes the control socket as the configuration says
  // (not while a USR2 child owns it).
  void apply_control_settings();
  std::vector<ControlWorker> control_workers() const override;
  std::vector<ControlListener> control_listeners() const override;
  ControlStats control_stats() const override;
  const config::Config& control_config() const override { return config_; }
  std::string control_worker_class() const override { return config_.worker_class_str(); }
  int target_workers() const override { return target_workers_; }
  void set_target_workers(int n) override;
  bool terminate_worker(pid_t pid, std::string* error) override;
  // SIGTERM or SIGKILL to one worker, counted as gunicorn's workers_killed.
  void kill_worker(pid_t pid, int signum);

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

  // arbiter_metrics.cpp: /metrics, /healthz and --max-worker-memory.
  void start_metrics_server();
  bool any_worker_serving() const;
  MetricsResponse serve_metrics(std::string_view path);
  metrics::Snapshot metrics_snapshot() const;
  metrics::ExitCause exit_cause(const WorkerSlot& slot, int status) const;
  // Before a reaped worker's slot goes: its counts into retired_, its cause.
  void record_worker_exit(const WorkerSlot& slot, int status);
  void check_worker_memory();

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
  bool in_host_ = false;
  bool handle_signals_ = true;
  ReadyCallback ready_;
  // The next child of ours that has exited (WNOHANG), or 0 / -1.
  pid_t next_exited_child(int* status);
  ControlSocket control_{[this](const base::Json& request) {
    return answer_control_request(*this, request);
  }};
  // For show stats.
  uint64_t started_ms_ = 0;
  int workers_spawned_ = 0;
  int workers_killed_ = 0;
  int reloads_ = 0;
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

  // Every worker's connection count, mapped before the first fork, so
  // that workers share out the connections (base/accept_board.h).
  std::unique_ptr<base::AcceptBoard> accept_board_;
  std::unique_ptr<MetricsServer> metrics_server_;  // --metrics-bind
  metrics::Totals retired_;  // what reaped workers counted
  uint64_t worker_boots_ = 0;
  uint64_t worker_exits_[metrics::kExitCauseCount] = {};
  uint64_t worker_restarts_ = 0;
};

}  // namespace cppgunicorn::master
