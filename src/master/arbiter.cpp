// The master's wiring: start-up, the main loop, shut-down. What each part
// does is in its own file (docs/design.md, "The master's files").
#include "master/arbiter.h"

#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstdio>
#include <string>

#include "base/proc_title.h"
#include "log/logger.h"
#include "log/statsd.h"
#include "master/pid_file.h"
#include "master/process.h"
#include "wsgi/application.h"
#include "wsgi/exchange.h"
#include "wsgi/interpreter.h"
#include "wsgi/python_config.h"

namespace cppgunicorn::master {

Arbiter::Arbiter(const config::Config& config, std::vector<std::string> exec_argv,
                 std::string start_dir)
    : config_(config), exec_argv_(std::move(exec_argv)), start_dir_(std::move(start_dir)) {
  signal_pipe_.open();  // post_signal() works from now on
}

Arbiter::~Arbiter() {
  if (preloaded_app_) {
    wsgi::Gil gil;
    preloaded_app_.reset();
  }
}

std::string Arbiter::title(const char* role) const {
  std::string name = config_.proc_name.empty() ? config_.app_uri : config_.proc_name;
  return std::string("cppgunicorn: ") + role + " [" + name + "]";
}

void Arbiter::remove_pidfile() {
  if (!is_worker_) remove_own_pid_file(config_.pidfile);
}

void Arbiter::wait_for_events(int timeout_ms) {
  // The master's one wait: its signal pipe and the descriptors of the
  // services it runs beside the workers (the control socket, the metrics
  // server), each served when ready.
  std::vector<pollfd> fds;
  fds.push_back({signal_pipe_.read_fd(), POLLIN, 0});
  control_.poll_fds(fds);
  size_t control_end = fds.size();
  size_t metrics_fds = metrics_server_ ? metrics_server_->add_poll_fds(fds) : 0;
  if (int due = control_.next_deadline_ms(); due >= 0) timeout_ms = std::min(timeout_ms, due);
  int ready = ::poll(fds.data(), fds.size(), timeout_ms);
  // Commands first: one that signals the master (reload, shutdown) has its
  // answer sent before the signal is acted on.
  control_.on_poll(fds, 1);
  // Slow scrapers past their deadline are dropped even when nothing is ready.
  if (metrics_fds > 0) {
    metrics_server_->on_poll(fds.data() + control_end, ready > 0 ? metrics_fds : 0, now_ms());
  }
}

int Arbiter::run() {
  int code = serve();
  if (auto* hooks = wsgi::PythonConfig::hooks(); hooks && !is_worker_) hooks->server_hook("on_exit");
  return code;
}

int Arbiter::serve() {
  wsgi::PythonConfig* hooks = wsgi::PythonConfig::hooks();
  target_workers_ = config_.workers;
  if (hooks) {
    // gunicorn sets num_workers (calling nworkers_changed) while it sets
    // the arbiter up, before on_starting.
    hooks->nworkers_changed(target_workers_, -1);
    hooks->server_hook("on_starting");
  }
  try {
    resolve_owner(config_);  // a bad --user or --group stops us before binding
    // Built here, before the fork, with the master's rights to the key:
    // every worker shares it (and its session-ticket keys).
    if (config_.tls.enabled()) tls_ = std::make_shared<const net::TlsContext>(config_.tls);
    access_log_.set_format(config_.access_log_format.empty() ? log::kDefaultAccessLogFormat
                                                             : config_.access_log_format);
    if (!config_.accesslog.empty()) access_log_.file().open(config_.accesslog, stdout);
  } catch (const std::exception& e) {
    log::error_log().error(e.what());
    return 1;
  }
  if (config_.daemon) daemonize(config_.enable_stdio_inheritance);
  base::set_proc_title(title("master"));

  log::error_log().info("Starting cppgunicorn " CPPGUNICORN_VERSION);
  bool bound_here = false;
  try {
    bound_here = open_listeners_at_start();
    write_pid_file(config_.pidfile);
    start_metrics_server();
  } catch (const std::exception& e) {
    log::error_log().error(e.what());
    remove_pidfile();
    if (bound_here) net::close_listeners(listeners_, true);  // bound, but no pid file
    return 1;
  }
  // gunicorn's lines, word for word: log watchers and tests wait for them.
  std::string listening;
  for (const auto& l : listeners_) {
    if (!listening.empty()) listening += ',';
    listening += display(l);
  }
  log::error_log().debug("Arbiter booted");
  log::error_log().info("Listening at: " + listening + " (" + std::to_string(::getpid()) + ")");
  log::error_log().info("Using worker: " + config_.worker_class_str());
  signal_pipe_.install(handle_signals_);
  if (ready_) {
    std::vector<std::string> addresses;
    int port = 0;
    for (const auto& l : listeners_) {
      addresses.push_back(display(l));
      if (port == 0 && !l.is_unix && !l.server_port.empty()) port = std::atoi(l.server_port.c_str());
    }
    ready_(addresses, port);
  }

  if (config_.preload_app && !preload()) {
    // gunicorn loads a preloaded app while it sets the arbiter up; the
    // exception ends the command with status 1 (no worker ever booted, so
    // neither 3 nor 4).
    net::close_listeners(listeners_, !sockets_shared());
    remove_pidfile();
    return 1;
  }

  // Before the first fork, so that a control socket handed down by a USR2
  // parent is ours (and closed in every worker) before any worker exists.
  started_ms_ = now_ms();
  apply_control_settings();
  if (hooks) hooks->server_hook("when_ready");
  manage_workers();
  while (!stopping_) {
    // Wake at least twice a second (timeouts), and when a backed-off spawn is due.
    int wait_ms = 500;
    if (uint64_t now = now_ms(); spawn_not_before_ms_ > now) {
      wait_ms = static_cast<int>(std::min<uint64_t>(spawn_not_before_ms_ - now, 500));
    }
    for (const auto& [pid, slot] : workers_) {
      if (slot.outgoing) wait_ms = std::min(wait_ms, 50);  // retire them soon after HUP
    }
    wait_for_events(wait_ms);
    unsigned char sigs[64];
    int n = signal_pipe_.take(sigs, sizeof sigs);
    for (int i = 0; i < n && !stopping_; ++i) handle_signal(sigs[i]);
    reap_workers();
    if (halt_code_ >= 0) {
      // gunicorn's halt(): a failure is logged at ERROR.
      log::error_log().error("Shutting down: Master");
      log::error_log().error("Reason: " + halt_reason_);
      stop(true);
      remove_pidfile();
      control_.close();
      return halt_code_;
    }
    murder_stuck_workers();
    check_worker_memory();
    manage_workers();
    retire_replaced_workers();
    if (old_master_pid_ > 0 && ::kill(old_master_pid_, 0) != 0) {
      log::error_log().info("Master has been promoted.");
      old_master_pid_ = 0;
    }
    log::statsd().gauge("gunicorn.workers", live_workers());
  }
  log::error_log().info("Shutting down: Master");
  remove_pidfile();  // stop() has closed the listeners
  control_.close();
  return 0;
}

}  // namespace cppgunicorn::master
