// Worker lifecycle: preload, spawn, reap, the crash back-off, timeouts,
// and stopping them all.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "base/proc_title.h"
#include "base/spool_file.h"
#include "log/logger.h"
#include "master/arbiter.h"
#include "master/process.h"
#include "master/signal_pipe.h"
#include "worker/worker.h"
#include "wsgi/app_loader.h"
#include "wsgi/application.h"
#include "wsgi/exchange.h"
#include "wsgi/interpreter.h"
#include "wsgi/python_config.h"

namespace cppgunicorn::master {

namespace {

// After SIGABRT for a timeout, how long a worker has before SIGKILL.
constexpr uint64_t kAbortGraceMs = 2000;

// Crash-loop back-off (see Arbiter::back_off_after_crash).
constexpr uint64_t kShortLifeMs = 5000;
constexpr int kCrashesBeforeBackoff = 3;
constexpr uint64_t kFirstBackoffMs = 100;
constexpr uint64_t kMaxBackoffMs = 10000;

wsgi::HookWorker hook_worker(pid_t pid, int age) {
  wsgi::HookWorker w;
  w.pid = pid;
  w.age = age;
  return w;
}

}  // namespace

int Arbiter::live_workers() const {
  int n = 0;
  for (const auto& [pid, slot] : workers_) {
    if (!slot.retiring && !slot.outgoing) ++n;
  }
  return n;
}

bool Arbiter::preload() {
  wsgi::InterpreterOptions options;
  options.argv = {"cppgunicorn"};
  options.pythonpath = config_.pythonpath;
  options.fault_fd = log::error_log().file().fileno();
  char cwd[4096];
  if (::getcwd(cwd, sizeof cwd) != nullptr) options.app_dir = cwd;
  // A Python config file already started the master's interpreter.
  bool inherited = wsgi::Interpreter::running();
  std::optional<wsgi::Gil> gil;
  try {
    if (inherited) {
      gil.emplace();
      wsgi::Interpreter::prepare_for_app(options);
    } else {
      preloaded_interpreter_ = std::make_unique<wsgi::Interpreter>(options);
    }
    wsgi::EnvironOptions env;
    env.multithread = config_.concurrent_app();
    env.multiprocess = config_.workers > 1;
    if (const char* sn = std::getenv("SCRIPT_NAME")) env.script_name = sn;
    preloaded_app_ = std::make_unique<wsgi::Application>(config_.app_uri, env);
  } catch (const wsgi::AppLoadError& e) {
    log::error_log().error(e.what());
    halt_code_ = worker::kExitAppLoadError;
    return false;
  } catch (pybind11::error_already_set& e) {
    e.restore();
    wsgi::log_python_error("Exception while preloading the application");
    halt_code_ = worker::kExitWorkerBootError;
    return false;
  } catch (const std::exception& e) {
    log::error_log().error(e.what());
    halt_code_ = worker::kExitWorkerBootError;
    return false;
  }
  if (preloaded_interpreter_) preloaded_interpreter_->release_gil();
  return true;
}

void Arbiter::spawn_worker() {
  std::unique_ptr<base::Heartbeat> heartbeat;
  std::unique_ptr<metrics::SharedCounters> counters;
  try {
    heartbeat = std::make_unique<base::Heartbeat>(config_.worker_tmp_dir);
    counters = std::make_unique<metrics::SharedCounters>();
    if (!accept_board_) accept_board_ = std::make_unique<base::AcceptBoard>();
  } catch (const std::exception& e) {
    log::error_log().error(e.what());
    halt_code_ = worker::kExitWorkerBootError;
    halt_reason_ = "Worker failed to boot.";
    return;
  }
  int age = ++worker_age_;
  int board_slot = accept_board_->claim();
  wsgi::PythonConfig* hooks = wsgi::PythonConfig::hooks();
  if (hooks) hooks->worker_hook("pre_fork", hook_worker(0, age), true);
  // What the worker inherits stays shared with the master only while
  // neither writes to it: frozen, the worker's collections leave it alone.
  if (config_.gc_freeze && wsgi::Interpreter::running()) wsgi::Interpreter::freeze_objects();
  // With Python in the master (--preload, a Python config), fork_process
  // runs Python's fork hooks so its locks stay consistent.
  SignalsBlocked blocked;
  pid_t pid = fork_process();
  if (pid < 0) {
    log::error_log().error(std::string("fork failed: ") + std::strerror(errno));
    accept_board_->release(board_slot);
    return;
  }
  if (pid == 0) {
    is_worker_ = true;
    // A scraper's connection must end when the master closes it, not live
    // on in a worker's copy.
    if (metrics_server_) metrics_server_->close_in_child();
    // The master's handlers are not ours: a TERM sent to us before this
    // point waited, blocked, and now takes its default action.
    signal_pipe_.restore();
    control_.drop_after_fork();
    blocked.unblock();
    // gunicorn logs this before post_fork runs.
    log::error_log().info("Booting worker with pid: " + std::to_string(::getpid()));
    if (hooks) {
      hooks->set_worker(hook_worker(::getpid(), age));
      hooks->worker_hook("post_fork", hook_worker(::getpid(), age), true);
    }
    run_worker(*heartbeat, counters->get(), board_slot);
  }
  blocked.unblock();
  ++worker_boots_;
  ++workers_spawned_;
  if (hooks) hooks->worker_spawned(hook_worker(pid, age));
  WorkerSlot slot;
  slot.age = age;
  slot.spawned_at_ms = now_ms();
  slot.heartbeat = std::move(heartbeat);
  slot.counters = std::move(counters);
  slot.board_slot = board_slot;
  workers_[pid] = std::move(slot);
}

void Arbiter::run_worker(base::Heartbeat& heartbeat, metrics::WorkerCounters& counters,
                         int board_slot) {
  base::set_proc_title(title("worker"));
  int code = worker::kExitWorkerBootError;
  try {
    ::umask(static_cast<mode_t>(config_.umask));
    base::SpoolFile::use_directory(config_.tmp_upload_dir);
    base::SpoolFile::set_budget(static_cast<uint64_t>(config_.spool_budget));
    worker::Worker w(config_, listeners_, access_log_, &heartbeat, preloaded_app_.get(),
                     tls_.get());
    w.set_before_app_import([this] { switch_owner(resolve_owner(config_)); });
    w.set_counters(&counters);
    w.set_accept_board(accept_board_.get(), board_slot);
    code = w.run();
  } catch (const std::exception& e) {
    log::error_log().error(std::string("Exception in worker process: ") + e.what());
  }
  // gunicorn logs it however the worker ends, boot failures included.
  log::error_log().info("Worker exiting (pid: " + std::to_string(::getpid()) + ")");
  std::fflush(nullptr);
  // _exit: the master's objects (listeners, pid file, preloaded
  // interpreter) are not ours to tear down.
  ::_exit(code);
}

void Arbiter::manage_workers() {
  if (stopping_ || halt_code_ >= 0) return;
  int held_back = now_ms() < spawn_not_before_ms_ ? held_back_ : 0;
  while (live_workers() + held_back < target_workers_ && halt_code_ < 0) {
    spawn_worker();
  }
  // Too many (TTOU): retire the oldest first.
  while (live_workers() > target_workers_) {
    pid_t oldest = -1;
    int oldest_age = 0;
    for (const auto& [pid, slot] : workers_) {
      if (!slot.retiring && !slot.outgoing && (oldest < 0 || slot.age < oldest_age)) {
        oldest = pid;
        oldest_age = slot.age;
      }
    }
    if (oldest < 0) break;
    workers_[oldest].retiring = true;
    kill_worker(oldest, SIGTERM);
  }
  if (int live = live_workers(); live != last_logged_workers_) {
    last_logged_workers_ = live;
    log::error_log().debug(std::to_string(live) + " workers");
  }
}

pid_t Arbiter::next_exited_child(int* status) {
  if (!in_host_) return ::waitpid(-1, status, WNOHANG);
  // A host's other children are the host's to reap.
  if (reexec_pid_ > 0) {
    if (pid_t pid = ::waitpid(reexec_pid_, status, WNOHANG); pid > 0) return pid;
  }
  for (const auto& [pid, slot] : workers_) {
    if (pid_t exited = ::waitpid(pid, status, WNOHANG); exited > 0) return exited;
  }
  return 0;
}

void Arbiter::reap_workers() {
  for (;;) {
    int status = 0;
    pid_t pid = next_exited_child(&status);
    if (pid <= 0) break;
    if (pid == reexec_pid_) {
      // The new master from USR2 is gone: we are the master again.
      log::error_log().info("The re-executed master (pid: " + std::to_string(pid) + ") exited");
      reexec_pid_ = 0;
      if (!config_.pidfile.empty()) {
        std::rename((config_.pidfile + ".oldbin").c_str(), config_.pidfile.c_str());
      }
      base::set_proc_title(title("master"));
      if (!stopping_) apply_control_settings();  // the control socket is ours again
      continue;
    }
    auto it = workers_.find(pid);
    if (it == workers_.end()) continue;  // not ours (as PID 1 we reap everyone)
    bool retiring = it->second.retiring;
    uint64_t spawned_at = it->second.spawned_at_ms;
    int age = it->second.age;
    record_worker_exit(it->second, status);
    accept_board_->release(it->second.board_slot);
    workers_.erase(it);
    if (auto* hooks = wsgi::PythonConfig::hooks()) {
      hooks->worker_reaped(pid);
      hooks->worker_hook("child_exit", hook_worker(pid, age), true);
    }
    // Only a worker that failed counts toward the crash back-off: one that
    // exited 0 retired (--max-requests, or told to stop) and its
    // replacement starts at once, however short its life.
    bool crashed = false;
    if (WIFEXITED(status)) {
      int code = WEXITSTATUS(status);
      crashed = code != 0;
      if (code != 0) {
        log::error_log().error("Worker (pid:" + std::to_string(pid) + ") exited with code " +
                               std::to_string(code) + ".");
      }
      if (code == worker::kExitWorkerBootError && halt_code_ < 0) {
        halt_code_ = worker::kExitWorkerBootError;
        halt_reason_ = "Worker failed to boot.";
      } else if (code == worker::kExitAppLoadError && halt_code_ < 0) {
        halt_code_ = worker::kExitAppLoadError;
        halt_reason_ = "App failed to load.";
      }
    } else if (WIFSIGNALED(status)) {
      int sig = WTERMSIG(status);
      // A worker told to stop before it could take SIGTERM itself (still
      // booting) dies of it: that is no crash.
      crashed = !(retiring && sig == SIGTERM);
      // gunicorn's levels: SIGKILL suggests the OOM killer, SIGTERM is
      // expected, any other signal is a surprise.
      std::string message = "Worker (pid:" + std::to_string(pid) + ") was sent " + signal_constant(sig) + "!";
      if (sig == SIGKILL) log::error_log().error(message + " Perhaps out of memory?");
      else if (sig == SIGTERM) log::error_log().info(message);
      else log::error_log().warning(message);
    }
    if (stopping_) continue;
    if (crashed && !retiring) {
      back_off_after_crash(now_ms() - spawned_at);
    } else if (!crashed) {
      crash_streak_ = 0;  // it served and retired: not a crash loop
    }
  }
}

void Arbiter::back_off_after_crash(uint64_t lived_ms) {
  // A crash loop is backed off, not spun: a worker that dies within
  // kShortLifeMs of its spawn extends the streak, and from the third one on
  // each replacement waits twice as long as the last (up to kMaxBackoffMs).
  // A worker that lived longer ends the streak.
  if (lived_ms >= kShortLifeMs) {
    crash_streak_ = 0;
    return;
  }
  ++crash_streak_;
  if (crash_streak_ < kCrashesBeforeBackoff) return;
  int doublings = std::min(crash_streak_ - kCrashesBeforeBackoff, 10);
  uint64_t delay = std::min<uint64_t>(kFirstBackoffMs << doublings, kMaxBackoffMs);
  // The delay holds back this crash's replacement only: a worker missing
  // for another reason (a clean retirement, TTIN) still starts at once.
  if (now_ms() >= spawn_not_before_ms_) held_back_ = 0;
  held_back_ = std::min(held_back_ + 1, target_workers_);
  spawn_not_before_ms_ = now_ms() + delay;
  log::error_log().warning("Workers keep dying soon after they start; waiting " +
                           std::to_string(delay) + " ms before the next one");
}

void Arbiter::murder_stuck_workers() {
  if (config_.timeout <= 0) return;
  uint64_t now = now_ms();
  uint64_t limit = static_cast<uint64_t>(config_.timeout) * 1000;
  for (auto& [pid, slot] : workers_) {
    if (now - slot.heartbeat->last_beat_ms() <= limit) continue;
    if (slot.aborted_at_ms == 0) {
      std::string request = slot.heartbeat->request();
      log::error_log().critical("WORKER TIMEOUT (pid:" + std::to_string(pid) + ")" +
                                (request.empty() ? std::string() : " while serving " + request));
      slot.aborted_at_ms = now;
      ::kill(pid, SIGABRT);
    } else if (now - slot.aborted_at_ms > kAbortGraceMs) {
      kill_worker(pid, SIGKILL);
    }
  }
}

void Arbiter::signal_workers(int signum, bool retiring_too) {
  for (const auto& [pid, slot] : workers_) {
    if (retiring_too || !slot.retiring) kill_worker(pid, signum);
  }
}

void Arbiter::stop(bool graceful) {
  stopping_ = true;
  // As gunicorn's halt: no more commands while the workers wind down.
  control_.close();
  // As gunicorn: close the listeners first, so that new connections are
  // refused at once rather than queued on a socket nobody will accept from
  // again. After USR2 the new master serves from the same sockets (and the
  // unix socket files are its).
  bool shared = sockets_shared();
  if (!shared) net::stop_accepting(listeners_);
  net::close_listeners(listeners_, !shared);
  signal_workers(graceful ? SIGTERM : SIGQUIT);
  uint64_t limit = graceful ? static_cast<uint64_t>(config_.graceful_timeout) * 1000 : 1000;
  uint64_t deadline = now_ms() + limit;
  while (!workers_.empty() && now_ms() < deadline) {
    reap_workers();
    if (workers_.empty()) break;
    // INT or QUIT during a graceful stop turns it into a quick one.
    unsigned char sigs[64];
    int n = signal_pipe_.take(sigs, sizeof sigs);
    for (int i = 0; i < n; ++i) {
      if (graceful && (sigs[i] == SIGINT || sigs[i] == SIGQUIT)) {
        log::error_log().info(std::string("Handling signal: ") + signal_name(sigs[i]));
        graceful = false;
        signal_workers(SIGQUIT);
        deadline = std::min(deadline, now_ms() + 1000);
      }
    }
    wait_for_events(20);  // /healthz says 503 meanwhile
  }
  if (!workers_.empty()) {
    signal_workers(SIGKILL);
    for (const auto& [pid, slot] : workers_) {
      int status;
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      record_worker_exit(slot, status);
    }
    workers_.clear();
  }
}

}  // namespace cppgunicorn::master
