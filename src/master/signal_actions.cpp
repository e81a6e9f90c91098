// What the master does for each signal: stop, reload (HUP), re-exec
// (USR2), more or fewer workers (TTIN, TTOU), reopen the logs (USR1).
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "base/proc_title.h"
#include "log/logger.h"
#include "master/arbiter.h"
#include "master/pid_file.h"
#include "master/process.h"
#include "master/signal_pipe.h"
#include "wsgi/python_config.h"

namespace cppgunicorn::master {

void Arbiter::handle_signal(int signum) {
  // gunicorn logs SIGCHLD at DEBUG: it is frequent.
  log::error_log().write(signum == SIGCHLD ? log::Level::kDebug : log::Level::kInfo,
                         std::string("Handling signal: ") + signal_name(signum));
  switch (signum) {
    case SIGCHLD:
      reap_workers();
      break;
    case SIGTERM:
      stop(true);
      break;
    case SIGINT:
    case SIGQUIT:
      stop(false);
      break;
    case SIGHUP:
      reload();
      break;
    case SIGTTIN:
      ++target_workers_;
      if (auto* hooks = wsgi::PythonConfig::hooks()) {
        hooks->nworkers_changed(target_workers_, target_workers_ - 1);
      }
      break;
    case SIGTTOU:
      if (target_workers_ > 1) {
        --target_workers_;
        if (auto* hooks = wsgi::PythonConfig::hooks()) {
          hooks->nworkers_changed(target_workers_, target_workers_ + 1);
        }
      }
      break;
    case SIGUSR1:
      log::error_log().file().reopen();
      access_log_.file().reopen();
      log::capture_output_into_error_log(config_.capture_output, config_.errorlog);
      signal_workers(SIGUSR1, false);
      break;
    case SIGUSR2:
      reexec();
      break;
    case SIGWINCH:
      // gunicorn: only a daemon stops its workers on WINCH (a terminal
      // sends it on every resize).
      if (config_.daemon) {
        log::error_log().info("graceful stop of workers");
        target_workers_ = 0;
        signal_workers(SIGTERM, true);
        for (auto& [pid, slot] : workers_) {
          slot.retiring = true;
          slot.outgoing = false;
        }
      } else {
        log::error_log().debug("SIGWINCH ignored. Not daemonized");
      }
      break;
    default:
      break;
  }
}

void Arbiter::reload() {
  // gunicorn starts the new workers and stops the old ones at once, so for
  // as long as the new ones take to import the app nobody accepts. Here the
  // old workers keep serving until their successors listen (or --timeout,
  // at least 30 s, has passed), then stop gracefully; the listeners never
  // close meanwhile.
  log::error_log().info("Hang up: Master");
  ++reloads_;
  if (reload_config_) {
    // As gunicorn's Arbiter.reload: the configuration is read again and the
    // new workers get it. One that no longer reads (or binds) leaves the
    // current one in force: gunicorn would exit here.
    try {
      apply_reloaded_config(reload_config_());
    } catch (const std::exception& e) {
      log::error_log().error(std::string("Configuration not reloaded (keeping the current one): ") +
                             e.what());
    }
    apply_control_settings();  // another path, mode, or none
  }
  // As gunicorn's reload: the configured count again (TTIN/TTOU/WINCH
  // undone), set as its setup() sets num_workers, before on_reload.
  int old_target = target_workers_;
  target_workers_ = config_.workers;
  if (auto* hooks = wsgi::PythonConfig::hooks()) {
    hooks->nworkers_changed(target_workers_, old_target);
    hooks->server_hook("on_reload");
  }
  for (auto& [pid, slot] : workers_) {
    if (!slot.retiring) slot.outgoing = true;
  }
  uint64_t wait_ms = std::max<uint64_t>(static_cast<uint64_t>(config_.timeout) * 1000, 30000);
  reload_deadline_ms_ = now_ms() + wait_ms;
  spawn_not_before_ms_ = 0;
}

void Arbiter::apply_reloaded_config(config::Config fresh) {
  // The certificate and key again (renewed files take effect for the new
  // workers), then new listeners: the steps that can still fail, before
  // anything has changed.
  std::shared_ptr<const net::TlsContext> tls;
  if (fresh.tls.enabled()) tls = std::make_shared<const net::TlsContext>(fresh.tls);
  AddedListeners added = bind_added_addresses(fresh);
  replace_listeners(fresh.bind_or_default(), std::move(added));

  // The logs: gunicorn makes a new logger, which (re)opens the files.
  log::Level level = log::Level::kInfo;
  log::parse_level(fresh.loglevel, &level);
  log::error_log().set_level(level);
  try {
    if (fresh.errorlog != config_.errorlog) log::error_log().file().open(fresh.errorlog, stderr);
    else log::error_log().file().reopen();
  } catch (const std::exception& e) {
    log::error_log().error(e.what());
  }
  log::capture_output_into_error_log(fresh.capture_output, fresh.errorlog);
  access_log_.set_format(fresh.access_log_format.empty() ? log::kDefaultAccessLogFormat
                                                         : fresh.access_log_format);
  try {
    if (fresh.accesslog.empty()) access_log_.file().close();
    else if (fresh.accesslog != config_.accesslog) access_log_.file().open(fresh.accesslog, stdout);
    else access_log_.file().reopen();
  } catch (const std::exception& e) {
    log::error_log().error(e.what());
  }

  if (fresh.pidfile != config_.pidfile) {
    remove_pidfile();
    config_.pidfile = fresh.pidfile;
    try {
      write_pid_file(config_.pidfile);
    } catch (const std::exception& e) {
      log::error_log().error(e.what());
    }
  }
  // What cannot change in a running master: it has daemonized (or not) and
  // imported the app (or not) already.
  fresh.daemon = config_.daemon;
  fresh.preload_app = config_.preload_app;
  // The metrics server keeps its address, and the histogram its buckets
  // (the retired totals were counted in them), until a restart.
  if (fresh.metrics_bind != config_.metrics_bind || fresh.metrics_buckets != config_.metrics_buckets) {
    log::error_log().warning("metrics_bind and metrics_buckets change only with a restart");
  }
  fresh.metrics_bind = config_.metrics_bind;
  fresh.metrics_buckets = config_.metrics_buckets;
  config_ = std::move(fresh);
  tls_ = std::move(tls);
  if (auto* hooks = wsgi::PythonConfig::hooks()) hooks->set_num_workers(config_.workers);
  base::set_proc_title(title(reexec_pid_ != 0 ? "master (old)" : "master"));
}

void Arbiter::retire_replaced_workers() {
  bool any_outgoing = false;
  int ready = 0;
  for (const auto& [pid, slot] : workers_) {
    if (slot.outgoing) any_outgoing = true;
    else if (!slot.retiring && slot.heartbeat->ready()) ++ready;
  }
  if (!any_outgoing) return;
  if (ready < target_workers_ && now_ms() < reload_deadline_ms_ && halt_code_ < 0) return;
  for (auto& [pid, slot] : workers_) {
    if (!slot.outgoing) continue;
    slot.outgoing = false;
    slot.retiring = true;
    kill_worker(pid, SIGTERM);
  }
}

void Arbiter::reexec() {
  if (reexec_pid_ != 0) {
    log::error_log().warning("USR2 signal ignored. Child exists.");
    return;
  }
  if (old_master_pid_ > 0 && ::kill(old_master_pid_, 0) == 0) {
    // gunicorn: an upgrade is finished (the old master stopped) before the
    // next one starts.
    log::error_log().warning("USR2 signal ignored. Parent exists.");
    return;
  }
  // Renamed before the fork: the new master writes PIDFILE as it starts.
  if (!config_.pidfile.empty()) {
    std::rename(config_.pidfile.c_str(), (config_.pidfile + ".oldbin").c_str());
  }
  SignalsBlocked blocked;
  pid_t pid = fork_process();
  if (pid < 0) {
    log::error_log().error(std::string("fork failed: ") + std::strerror(errno));
    if (!config_.pidfile.empty()) {
      std::rename((config_.pidfile + ".oldbin").c_str(), config_.pidfile.c_str());
    }
    return;
  }
  if (pid > 0) {
    blocked.unblock();
    reexec_pid_ = pid;
    control_.let_go();  // the new master's now (gunicornc reaches the newest)
    base::set_proc_title(title("master (old)"));
    return;
  }
  // The new master: same program, same arguments, same directory, and our
  // listening sockets, named in the environment. (The signal mask survives
  // exec: unblock once our handlers are gone.)
  signal_pipe_.restore();
  control_.hand_down();
  blocked.unblock();
  for (const auto& l : listeners_) ::fcntl(l.fd, F_SETFD, 0);
  ::setenv(net::kInheritedFdsVariable, net::fd_list(listeners_, false).c_str(), 1);
  ::setenv(net::kForeignFdsVariable, net::fd_list(listeners_, true).c_str(), 1);
  ::setenv(net::kOldMasterVariable, std::to_string(::getppid()).c_str(), 1);
  if (auto* hooks = wsgi::PythonConfig::hooks()) hooks->server_hook("pre_exec");
  if (!start_dir_.empty() && ::chdir(start_dir_.c_str()) != 0) {
    // Stay where we are; relative paths may then not resolve.
  }
  std::vector<char*> argv;
  for (auto& a : exec_argv_) argv.push_back(a.data());
  argv.push_back(nullptr);
  ::execvp(argv[0], argv.data());
  log::error_log().error(std::string("re-exec of ") + exec_argv_[0] + " failed: " + std::strerror(errno));
  ::_exit(1);
}

}  // namespace cppgunicorn::master
