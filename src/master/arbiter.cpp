#include "master/arbiter.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <fstream>
#include <optional>

#include "base/proc_title.h"
#include "base/spool_file.h"
#include "log/logger.h"
#include "worker/worker.h"
#include "wsgi/app_loader.h"
#include "wsgi/application.h"
#include "wsgi/exchange.h"
#include "wsgi/interpreter.h"
#include "wsgi/python_config.h"

namespace cppgunicorn::master {

namespace {

// The handler only records the signal; the main loop acts on it (as
// gunicorn's SIG_QUEUE), so nothing unsafe runs in signal context.
int g_signal_write_fd = -1;

void on_signal(int signum) {
  int saved = errno;
  unsigned char b = static_cast<unsigned char>(signum);
  if (g_signal_write_fd >= 0) [[maybe_unused]] auto n = ::write(g_signal_write_fd, &b, 1);
  errno = saved;
}

constexpr int kHandledSignals[] = {SIGTERM, SIGINT,  SIGQUIT, SIGHUP,  SIGTTIN,
                                   SIGTTOU, SIGUSR1, SIGUSR2, SIGWINCH, SIGCHLD};

// After SIGABRT for a timeout, how long a worker has before SIGKILL.
constexpr uint64_t kAbortGraceMs = 2000;

// Crash-loop back-off (see Arbiter::back_off_after_crash).
constexpr uint64_t kShortLifeMs = 5000;
constexpr int kCrashesBeforeBackoff = 3;
constexpr uint64_t kFirstBackoffMs = 100;
constexpr uint64_t kMaxBackoffMs = 10000;

const char* signal_name(int signum) {
  switch (signum) {
    case SIGTERM: return "term";
    case SIGINT: return "int";
    case SIGQUIT: return "quit";
    case SIGHUP: return "hup";
    case SIGTTIN: return "ttin";
    case SIGTTOU: return "ttou";
    case SIGUSR1: return "usr1";
    case SIGUSR2: return "usr2";
    case SIGWINCH: return "winch";
    case SIGCHLD: return "chld";
    default: return "unknown";
  }
}

// "SIGKILL", as Python's signal.Signals(n).name.
std::string signal_constant(int signum) {
  const char* abbrev = ::sigabbrev_np(signum);
  return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(signum);
}

uint64_t now_ms() { return base::Heartbeat::now_ms(); }

// Every signal blocked across a fork, until the child has replaced the
// master's handlers (which write to the master's signal pipe, shared after
// fork): a signal meant for the child in between would reach the master.
class SignalsBlocked {
 public:
  SignalsBlocked() {
    sigset_t all;
    sigfillset(&all);
    ::pthread_sigmask(SIG_BLOCK, &all, &saved_);
  }
  ~SignalsBlocked() { unblock(); }
  SignalsBlocked(const SignalsBlocked&) = delete;
  SignalsBlocked& operator=(const SignalsBlocked&) = delete;
  void unblock() {
    if (active_) ::pthread_sigmask(SIG_SETMASK, &saved_, nullptr);
    active_ = false;
  }

 private:
  sigset_t saved_{};
  bool active_ = true;
};

struct Owner {
  bool change_uid = false, change_gid = false;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string user_name;
};

Owner resolve_owner(const config::Config& c) {
  Owner o;
  if (!c.user.empty()) {
    const passwd* pw = std::isdigit(static_cast<unsigned char>(c.user[0]))
                           ? ::getpwuid(static_cast<uid_t>(std::atol(c.user.c_str())))
                           : ::getpwnam(c.user.c_str());
    if (pw == nullptr) {
      if (!std::isdigit(static_cast<unsigned char>(c.user[0]))) {
        throw std::runtime_error("Invalid value for user: '" + c.user + "' (no such user)");
      }
      o.uid = static_cast<uid_t>(std::atol(c.user.c_str()));
    } else {
      o.uid = pw->pw_uid;
      o.user_name = pw->pw_name;
      if (c.group.empty()) {
        o.gid = pw->pw_gid;
        o.change_gid = true;
      }
    }
    o.change_uid = true;
  }
  if (!c.group.empty()) {
    const group* gr = std::isdigit(static_cast<unsigned char>(c.group[0]))
                          ? ::getgrgid(static_cast<gid_t>(std::atol(c.group.c_str())))
                          : ::getgrnam(c.group.c_str());
    if (gr == nullptr && !std::isdigit(static_cast<unsigned char>(c.group[0]))) {
      throw std::runtime_error("Invalid value for group: '" + c.group + "' (no such group)");
    }
    o.gid = gr ? gr->gr_gid : static_cast<gid_t>(std::atol(c.group.c_str()));
    o.change_gid = true;
  }
  return o;
}

// gunicorn's util.set_owner_process: group first, while we still may.
void switch_owner(const Owner& o) {
  if (o.change_gid) {
    if (!o.user_name.empty()) ::initgroups(o.user_name.c_str(), o.gid);
    else ::setgroups(1, &o.gid);
    if (::setgid(o.gid) != 0) throw std::runtime_error(std::string("setgid: ") + std::strerror(errno));
  }
  if (o.change_uid && ::setuid(o.uid) != 0) {
    throw std::runtime_error(std::string("setuid: ") + std::strerror(errno));
  }
}

// fork() in a master that may run Python (a Python config file, or
// --preload): Python's fork hooks keep its state consistent in the child.
pid_t fork_process() {
  if (!wsgi::Interpreter::running()) return ::fork();
  wsgi::ForkGuard guard;
  pid_t pid = ::fork();
  if (pid == 0) guard.in_child();
  else guard.in_parent();
  return pid;
}

wsgi::HookWorker hook_worker(pid_t pid, int age) {
  wsgi::HookWorker w;
  w.pid = pid;
  w.age = age;
  return w;
}

// Fork twice and detach from the terminal (gunicorn's util.daemonize).
// With enable_stdio_inheritance stdout and stderr stay as they are.
void daemonize(bool keep_stdio) {
  if (fork_process() != 0) ::_exit(0);
  ::setsid();
  if (fork_process() != 0) ::_exit(0);
  int null = ::open("/dev/null", O_RDWR);
  if (null >= 0) {
    ::dup2(null, 0);
    if (!keep_stdio) {
      ::dup2(null, 1);
      ::dup2(null, 2);
    }
    if (null > 2) ::close(null);
  }
}

// Whether a socket handed down to us (USR2, systemd) is the one `bind`
// names, so that HUP keeps it rather than binding the address again.
bool bind_names_socket(const std::string& bind, const net::ListenSocket& socket) {
  net::BindAddress a;
  try {
    a = net::parse_bind(bind);
  } catch (const std::exception&) {
    return false;
  }
  switch (a.kind) {
    case net::BindAddress::Kind::kUnix: return socket.is_unix && a.path == socket.server_name;
    case net::BindAddress::Kind::kFd: return a.fd == socket.fd;
    case net::BindAddress::Kind::kTcp:
      return !socket.is_unix && std::to_string(a.port) == socket.server_port &&
             a.host == socket.server_name;
  }
  return false;
}

net::ListenOptions listen_options(const config::Config& c) {
  net::ListenOptions options;
  options.backlog = c.backlog;
  options.reuse_port = c.reuse_port;
  options.umask = c.umask;
  return options;
}

// gunicorn's cfg.worker_class_str: the class as configured, "gthread" for
// sync with --threads > 1.
std::string worker_class_name(const config::Config& c) {
  bool is_sync = c.worker_class == "sync" || c.worker_class.ends_with("SyncWorker");
  return is_sync && c.threads > 1 ? "gthread" : c.worker_class;
}

}  // namespace

Arbiter::Arbiter(const config::Config& config, std::vector<std::string> exec_argv,
                 std::string start_dir)
    : config_(config), exec_argv_(std::move(exec_argv)), start_dir_(std::move(start_dir)) {}

Arbiter::~Arbiter() {
  for (int fd : signal_pipe_) {
    if (fd >= 0) ::close(fd);
  }
  g_signal_write_fd = -1;
  if (preloaded_app_) {
    wsgi::Gil gil;
    preloaded_app_.reset();
  }
}

std::string Arbiter::title(const char* role) const {
  std::string name = config_.proc_name.empty() ? config_.app_uri : config_.proc_name;
  return std::string("cppgunicorn: ") + role + " [" + name + "]";
}

void Arbiter::install_signal_handlers() {
  if (::pipe2(signal_pipe_, O_CLOEXEC | O_NONBLOCK) != 0) {
    throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  }
  g_signal_write_fd = signal_pipe_[1];
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int s : kHandledSignals) sigaction(s, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
}

void Arbiter::restore_signal_handlers() {
  // In a new worker or master: default dispositions, so that its own loop
  // can take the signals it wants and the rest behave as usual.
  struct sigaction sa {};
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  for (int s : kHandledSignals) sigaction(s, &sa, nullptr);
  g_signal_write_fd = -1;
  for (int& fd : signal_pipe_) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
}

bool Arbiter::sockets_shared() const {
  // With a USR2 upgrade under way, the other master serves from the same
  // sockets (and unix socket files): they are not ours alone to shut down or
  // unlink. That is so while the new master we started runs, or while the
  // old master that started us does (gunicorn: until we are "promoted").
  if (reexec_pid_ != 0) return true;
  return old_master_pid_ > 0 && ::kill(old_master_pid_, 0) == 0;
}

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
  try {
    heartbeat = std::make_unique<base::Heartbeat>(config_.worker_tmp_dir);
  } catch (const std::exception& e) {
    log::error_log().error(e.what());
    halt_code_ = worker::kExitWorkerBootError;
    halt_reason_ = "Worker failed to boot.";
    return;
  }
  int age = ++worker_age_;
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
    return;
  }
  if (pid == 0) {
    is_worker_ = true;
    // The master's handlers are not ours: a TERM sent to us before this
    // point waited, blocked, and now takes its default action.
    restore_signal_handlers();
    blocked.unblock();
    // gunicorn logs this before post_fork runs.
    log::error_log().info("Booting worker with pid: " + std::to_string(::getpid()));
    if (hooks) {
      hooks->set_worker(hook_worker(::getpid(), age));
      hooks->worker_hook("post_fork", hook_worker(::getpid(), age), true);
    }
    run_worker(*heartbeat);
  }
  blocked.unblock();
  if (hooks) hooks->worker_spawned(hook_worker(pid, age));
  WorkerSlot slot;
  slot.age = age;
  slot.spawned_at_ms = now_ms();
  slot.heartbeat = std::move(heartbeat);
  workers_[pid] = std::move(slot);
}

void Arbiter::run_worker(base::Heartbeat& heartbeat) {
  base::set_proc_title(title("worker"));
  int code = worker::kExitWorkerBootError;
  try {
    ::umask(static_cast<mode_t>(config_.umask));
    base::SpoolFile::use_directory(config_.tmp_upload_dir);
    base::SpoolFile::set_budget(static_cast<uint64_t>(config_.spool_budget));
    worker::Worker w(config_, listeners_, access_log_, &heartbeat, preloaded_app_.get(),
                     tls_.get());
    w.set_before_app_import([this] { switch_owner(resolve_owner(config_)); });
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
    ::kill(oldest, SIGTERM);
  }
  if (int live = live_workers(); live != last_logged_workers_) {
    last_logged_workers_ = live;
    log::error_log().debug(std::to_string(live) + " workers");
  }
}

void Arbiter::reap_workers() {
  for (;;) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) break;
    if (pid == reexec_pid_) {
      // The new master from USR2 is gone: we are the master again.
      log::error_log().info("The re-executed master (pid: " + std::to_string(pid) + ") exited");
      reexec_pid_ = 0;
      if (!config_.pidfile.empty()) {
        std::rename((config_.pidfile + ".oldbin").c_str(), config_.pidfile.c_str());
      }
      base::set_proc_title(title("master"));
      continue;
    }
    auto it = workers_.find(pid);
    if (it == workers_.end()) continue;  // not ours (as PID 1 we reap everyone)
    bool retiring = it->second.retiring;
    uint64_t spawned_at = it->second.spawned_at_ms;
    int age = it->second.age;
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
      ::kill(pid, SIGKILL);
    }
  }
}

void Arbiter::reload() {
  // gunicorn starts the new workers and stops the old ones at once, so for
  // as long as the new ones take to import the app nobody accepts. Here the
  // old workers keep serving until their successors listen (or --timeout,
  // at least 30 s, has passed), then stop gracefully; the listeners never
  // close meanwhile.
  log::error_log().info("Hang up: Master");
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

std::string Arbiter::display(const net::ListenSocket& l) const {
  // gunicorn says https:// for its TLS listeners.
  if (tls_ && l.display.rfind("http://", 0) == 0) return "https://" + l.display.substr(7);
  return l.display;
}

void Arbiter::apply_reloaded_config(config::Config fresh) {
  // The certificate and key again (renewed files take effect for the new
  // workers), then new listeners: the steps that can still fail, before
  // anything has changed.
  std::shared_ptr<const net::TlsContext> tls;
  if (fresh.tls.enabled()) tls = std::make_shared<const net::TlsContext>(fresh.tls);
  std::vector<std::string> binds = fresh.bind_or_default();
  std::vector<net::ListenSocket> added;
  std::vector<std::string> added_binds;
  try {
    for (const std::string& b : binds) {
      if (std::find(listener_binds_.begin(), listener_binds_.end(), b) != listener_binds_.end()) {
        continue;
      }
      for (net::ListenSocket& s : net::open_listeners({b}, listen_options(fresh))) {
        added.push_back(s);
        added_binds.push_back(b);
      }
    }
  } catch (...) {
    net::close_listeners(added, true);
    throw;
  }
  // Listeners no longer configured: the master lets go of them; the old
  // workers still hold theirs until they stop. Handed-down ones ("") stay.
  std::vector<net::ListenSocket> removed;
  for (size_t i = listeners_.size(); i-- > 0;) {
    const std::string& b = listener_binds_[i];
    if (b.empty() || std::find(binds.begin(), binds.end(), b) != binds.end()) continue;
    log::error_log().info("Closing listener " + listeners_[i].display + " (no longer in bind)");
    removed.push_back(listeners_[i]);
    listeners_.erase(listeners_.begin() + static_cast<std::ptrdiff_t>(i));
    listener_binds_.erase(listener_binds_.begin() + static_cast<std::ptrdiff_t>(i));
  }
  net::close_listeners(removed, !sockets_shared());
  for (size_t i = 0; i < added.size(); ++i) {
    log::error_log().info("Listening at: " + display(added[i]));  // gunicorn: no pid on HUP
    listeners_.push_back(added[i]);
    listener_binds_.push_back(added_binds[i]);
  }

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
      write_pidfile();
    } catch (const std::exception& e) {
      log::error_log().error(e.what());
    }
  }
  // What cannot change in a running master: it has daemonized (or not) and
  // imported the app (or not) already.
  fresh.daemon = config_.daemon;
  fresh.preload_app = config_.preload_app;
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
    ::kill(pid, SIGTERM);
  }
}

void Arbiter::signal_workers(int signum, bool retiring_too) {
  for (const auto& [pid, slot] : workers_) {
    if (retiring_too || !slot.retiring) ::kill(pid, signum);
  }
}

void Arbiter::stop(bool graceful) {
  stopping_ = true;
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
    ssize_t n = ::read(signal_pipe_[0], sigs, sizeof sigs);
    for (ssize_t i = 0; i < n; ++i) {
      if (graceful && (sigs[i] == SIGINT || sigs[i] == SIGQUIT)) {
        log::error_log().info(std::string("Handling signal: ") + signal_name(sigs[i]));
        graceful = false;
        signal_workers(SIGQUIT);
        deadline = std::min(deadline, now_ms() + 1000);
      }
    }
    pollfd p{signal_pipe_[0], POLLIN, 0};
    ::poll(&p, 1, 20);
  }
  if (!workers_.empty()) {
    signal_workers(SIGKILL);
    for (const auto& [pid, slot] : workers_) {
      int status;
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
    }
    workers_.clear();
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
    base::set_proc_title(title("master (old)"));
    return;
  }
  // The new master: same program, same arguments, same directory, and our
  // listening sockets, named in the environment. (The signal mask survives
  // exec: unblock once our handlers are gone.)
  restore_signal_handlers();
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

namespace {
// The pid a pid file names, if that process is alive and is a gunicorn
// (ours or gunicorn itself); 0 otherwise: no file, no number, a dead
// process, or a pid the kernel has since given to another program.
pid_t live_server_in(const std::string& path) {
  std::ifstream in(path);
  long pid = 0;
  if (!(in >> pid) || pid <= 0) return 0;
  if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno != EPERM) return 0;
  std::ifstream cmdline("/proc/" + std::to_string(pid) + "/cmdline");
  std::string text((std::istreambuf_iterator<char>(cmdline)), std::istreambuf_iterator<char>());
  return text.find("gunicorn") != std::string::npos ? static_cast<pid_t>(pid) : 0;
}
}  // namespace

void Arbiter::write_pidfile() {
  if (config_.pidfile.empty()) return;
  const std::string& path = config_.pidfile;
  // gunicorn's check and message: a second server must not take over the
  // file (and the signals sent through it) of one that runs.
  if (pid_t other = live_server_in(path); other > 0 && other != ::getpid()) {
    throw std::runtime_error("Already running on PID " + std::to_string(other) +
                             " (or pid file '" + path + "' is stale)");
  }
  // A new file of our own in the same directory, renamed over the old
  // name: a symlink planted at the name (or a predictable temporary one)
  // is replaced, never followed, and readers see the whole pid or none.
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  std::string tmp = dir + "/.pidfile-XXXXXX";
  int fd = ::mkstemp(tmp.data());
  if (fd < 0) {
    throw std::runtime_error("Invalid value for pidfile: '" + path + "': cannot create a file in " +
                             dir + ": " + std::strerror(errno));
  }
  std::string text = std::to_string(::getpid()) + "\n";
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            ::fchmod(fd, 0644) == 0;
  int saved = errno;
  ok = (::close(fd) == 0) && ok;
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    if (ok) saved = errno;
    ::unlink(tmp.c_str());
    throw std::runtime_error("Invalid value for pidfile: '" + path + "': cannot write it: " +
                             std::strerror(saved));
  }
}

void Arbiter::remove_pidfile() {
  if (config_.pidfile.empty() || is_worker_) return;
  // Only our own: after USR2 the file belongs to the new master and ours
  // is PIDFILE.oldbin (gunicorn removes that one too).
  for (const std::string& path : {config_.pidfile, config_.pidfile + ".oldbin"}) {
    std::ifstream in(path);
    long pid = 0;
    if (in >> pid && pid == static_cast<long>(::getpid())) ::unlink(path.c_str());
  }
}

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
    net::InheritedListeners inherited = net::inherited_listeners();
    if (!inherited.fds.empty()) {
      old_master_pid_ = inherited.old_master;
      listeners_ = net::adopt_listeners(inherited);
      for (const net::ListenSocket& l : listeners_) {
        std::string named_by;
        for (const std::string& b : config_.bind_or_default()) {
          if (bind_names_socket(b, l)) named_by = b;
        }
        listener_binds_.push_back(named_by);
      }
    } else {
      // One bind at a time, so that HUP knows which sockets each one opened.
      bound_here = true;
      for (const std::string& b : config_.bind_or_default()) {
        for (net::ListenSocket& s : net::open_listeners({b}, listen_options(config_))) {
          listeners_.push_back(s);
          listener_binds_.push_back(b);
        }
      }
    }
    write_pidfile();
  } catch (const std::exception& e) {
    log::error_log().error(e.what());
    if (bound_here) net::close_listeners(listeners_, true);  // the ones bound so far
    return 1;
  }
  // gunicorn's lines, word for word: log watchers and tests wait for them.
  std::string listening;
  for (const auto& l : listeners_) listening += (listening.empty() ? "" : ",") + display(l);
  log::error_log().debug("Arbiter booted");
  log::error_log().info("Listening at: " + listening + " (" + std::to_string(::getpid()) + ")");
  log::error_log().info("Using worker: " + worker_class_name(config_));
  install_signal_handlers();

  if (config_.preload_app && !preload()) {
    // gunicorn loads a preloaded app while it sets the arbiter up; the
    // exception ends the command with status 1 (no worker ever booted, so
    // neither 3 nor 4).
    net::close_listeners(listeners_, !sockets_shared());
    remove_pidfile();
    return 1;
  }

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
    pollfd p{signal_pipe_[0], POLLIN, 0};
    ::poll(&p, 1, wait_ms);
    unsigned char sigs[64];
    ssize_t n = ::read(signal_pipe_[0], sigs, sizeof sigs);
    for (ssize_t i = 0; i < n && !stopping_; ++i) handle_signal(sigs[i]);
    reap_workers();
    if (halt_code_ >= 0) {
      // gunicorn's halt(): a failure is logged at ERROR.
      log::error_log().error("Shutting down: Master");
      log::error_log().error("Reason: " + halt_reason_);
      stop(true);
      remove_pidfile();
      return halt_code_;
    }
    murder_stuck_workers();
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
  return 0;
}

}  // namespace cppgunicorn::master
