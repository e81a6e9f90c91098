#include "master/arbiter.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>

#include "log/logger.h"
#include "worker/worker.h"

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

double monotonic_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

}  // namespace

Arbiter::Arbiter(const config::Config& config) : config_(config) {}

Arbiter::~Arbiter() {
  for (int fd : signal_pipe_) {
    if (fd >= 0) ::close(fd);
  }
  g_signal_write_fd = -1;
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
  // In a new worker: default dispositions, so that its own loop can take
  // the signals it wants and the rest behave as usual.
  struct sigaction sa {};
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  for (int s : kHandledSignals) sigaction(s, &sa, nullptr);
  g_signal_write_fd = -1;
  ::close(signal_pipe_[0]);
  ::close(signal_pipe_[1]);
  signal_pipe_[0] = signal_pipe_[1] = -1;
}

int Arbiter::live_workers() const {
  int n = 0;
  for (const auto& [pid, slot] : workers_) {
    if (!slot.retiring) ++n;
  }
  return n;
}

void Arbiter::spawn_worker() {
  int age = ++worker_age_;
  pid_t pid = ::fork();
  if (pid < 0) {
    log::error_log().error(std::string("fork failed: ") + std::strerror(errno));
    return;
  }
  if (pid > 0) {
    workers_[pid] = WorkerSlot{age, false};
    return;
  }
  // In the worker.
  restore_signal_handlers();
  log::error_log().info("Booting worker with pid: " + std::to_string(::getpid()));
  int code;
  {
    worker::Worker w(config_, listeners_, access_log_);
    code = w.run();
  }
  if (code == worker::kExitOk) {
    log::error_log().info("Worker exiting (pid: " + std::to_string(::getpid()) + ")");
  }
  std::fflush(nullptr);
  // _exit: the master's own objects (listeners, logs) are not ours to tear
  // down.
  ::_exit(code);
}

void Arbiter::manage_workers() {
  if (stopping_) return;
  while (live_workers() < target_workers_) {
    spawn_worker();
  }
  // Too many (TTOU): retire the oldest first.
  while (live_workers() > target_workers_) {
    pid_t oldest = -1;
    int oldest_age = 0;
    for (const auto& [pid, slot] : workers_) {
      if (!slot.retiring && (oldest < 0 || slot.age < oldest_age)) {
        oldest = pid;
        oldest_age = slot.age;
      }
    }
    if (oldest < 0) break;
    workers_[oldest].retiring = true;
    ::kill(oldest, SIGTERM);
  }
}

void Arbiter::reap_workers() {
  for (;;) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) break;
    auto it = workers_.find(pid);
    if (it == workers_.end()) continue;  // not ours (PID 1 reaps everyone)
    bool retiring = it->second.retiring;
    workers_.erase(it);
    if (WIFEXITED(status)) {
      int code = WEXITSTATUS(status);
      if (code == worker::kExitWorkerBootError && halt_code_ < 0) {
        halt_code_ = worker::kExitWorkerBootError;
        halt_reason_ = "Worker failed to boot.";
      } else if (code == worker::kExitAppLoadError && halt_code_ < 0) {
        halt_code_ = worker::kExitAppLoadError;
        halt_reason_ = "App failed to load.";
      } else if (code != 0 && !stopping_) {
        log::error_log().error("Worker (pid:" + std::to_string(pid) + ") exited with code " +
                               std::to_string(code));
      }
    } else if (WIFSIGNALED(status)) {
      int sig = WTERMSIG(status);
      if (!stopping_ && !retiring) {
        log::error_log().error("Worker (pid:" + std::to_string(pid) + ") was sent " +
                               (sig == SIGKILL ? std::string("SIGKILL! Perhaps out of memory?")
                                               : std::string("signal ") + std::to_string(sig) + "!"));
      }
    }
    if (!stopping_ && !retiring) {
      // Back off a crash loop instead of forking as fast as we can.
      double now = monotonic_seconds();
      rapid_failures_ = (now - last_spawn_failure_ < 1.0) ? rapid_failures_ + 1 : 0;
      last_spawn_failure_ = now;
      if (rapid_failures_ > 3) ::usleep(static_cast<useconds_t>(std::min(rapid_failures_, 10)) * 100000);
    }
  }
}

void Arbiter::signal_workers(int signum, bool retiring_too) {
  for (const auto& [pid, slot] : workers_) {
    if (retiring_too || !slot.retiring) ::kill(pid, signum);
  }
}

void Arbiter::stop(bool graceful) {
  stopping_ = true;
  signal_workers(graceful ? SIGTERM : SIGQUIT);
  double limit = graceful ? config_.graceful_timeout : 1.0;
  double deadline = monotonic_seconds() + limit;
  while (!workers_.empty() && monotonic_seconds() < deadline) {
    reap_workers();
    if (workers_.empty()) break;
    ::usleep(20000);
  }
  if (!workers_.empty()) {
    signal_workers(SIGKILL);
    while (!workers_.empty()) {
      int status;
      pid_t pid = ::waitpid(-1, &status, 0);
      if (pid < 0 && errno == ECHILD) break;
      if (pid > 0) workers_.erase(pid);
    }
  }
}

void Arbiter::handle_signal(int signum) {
  if (signum != SIGCHLD) {
    log::error_log().info(std::string("Handling signal: ") + signal_name(signum));
  }
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
      // Reload: new workers first, then the old ones stop gracefully, so
      // that some worker is always accepting.
      log::error_log().info("Hang up: Master");
      for (auto& [pid, slot] : workers_) {
        if (!slot.retiring) {
          slot.retiring = true;
          ::kill(pid, SIGTERM);
        }
      }
      break;
    case SIGTTIN:
      ++target_workers_;
      break;
    case SIGTTOU:
      if (target_workers_ > 1) --target_workers_;
      break;
    case SIGUSR1:
      log::error_log().file().reopen();
      access_log_.file().reopen();
      signal_workers(SIGUSR1, false);
      break;
    default:
      break;
  }
}

int Arbiter::run() {
  target_workers_ = config_.workers;
  if (!config_.access_log_format.empty()) {
    access_log_.set_format(config_.access_log_format);
  } else {
    access_log_.set_format(log::kDefaultAccessLogFormat);
  }
  if (!config_.accesslog.empty()) access_log_.file().open(config_.accesslog, stdout);

  log::error_log().info("Starting cppgunicorn " CPPGUNICORN_VERSION);
  try {
    listeners_ = net::open_listeners(config_.bind_or_default(), config_.backlog);
  } catch (const std::exception& e) {
    log::error_log().error(e.what());
    return 1;
  }
  for (const auto& l : listeners_) {
    log::error_log().info("Listening at: " + l.display + " (" + std::to_string(::getpid()) + ")");
  }
  log::error_log().info(std::string("Using worker: uv (") +
                        (config_.threads > 1 ? "threads" : "loop thread") + ")");
  install_signal_handlers();

  manage_workers();
  while (!stopping_) {
    pollfd p{signal_pipe_[0], POLLIN, 0};
    ::poll(&p, 1, 1000);
    unsigned char sigs[64];
    ssize_t n = ::read(signal_pipe_[0], sigs, sizeof sigs);
    for (ssize_t i = 0; i < n && !stopping_; ++i) handle_signal(sigs[i]);
    reap_workers();
    if (halt_code_ >= 0) {
      log::error_log().info("Shutting down: Master");
      log::error_log().info("Reason: " + halt_reason_);
      stop(true);
      net::close_listeners(listeners_, true);
      return halt_code_;
    }
    manage_workers();
  }
  log::error_log().info("Shutting down: Master");
  net::close_listeners(listeners_, true);
  return 0;
}

}  // namespace cppgunicorn::master
