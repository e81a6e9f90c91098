// What the control socket's commands see of the master and may do to it
// (ControlTarget), and when the socket is opened, moved or closed.
#include <signal.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "log/logger.h"
#include "master/arbiter.h"
#include "wsgi/python_config.h"

namespace cppgunicorn::master {

void Arbiter::apply_control_settings() {
  // During a USR2 upgrade the new master holds the socket; we take it back
  // only if that master dies (reap_workers).
  if (reexec_pid_ != 0) return;
  if (config_.control_socket_disable) {
    control_.close();
    ControlSocket::discard_inherited();
    log::error_log().debug("Control socket disabled");
    return;
  }
  std::string path = config_.control_socket_path();
  if (control_.is_open() && control_.path() == path && control_.mode() == config_.control_socket_mode) {
    return;
  }
  control_.open(path, config_.control_socket_mode);
}

std::vector<ControlWorker> Arbiter::control_workers() const {
  std::vector<ControlWorker> out;
  uint64_t now = now_ms();
  for (const auto& [pid, slot] : workers_) {
    ControlWorker w;
    w.pid = pid;
    w.age = slot.age;
    w.booted = slot.heartbeat->ready();
    w.aborted = slot.aborted_at_ms != 0;
    uint64_t beat = slot.heartbeat->last_beat_ms();
    w.last_heartbeat_s = beat == 0 || beat > now ? 0.0 : static_cast<double>(now - beat) / 1000.0;
    out.push_back(w);
  }
  return out;
}

std::vector<ControlListener> Arbiter::control_listeners() const {
  std::vector<ControlListener> out;
  for (const net::ListenSocket& l : listeners_) {
    ControlListener c;
    c.address = display(l);
    c.fd = l.fd;
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    if (::getsockname(l.fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) c.type = "unknown";
    else if (addr.ss_family == AF_UNIX) c.type = "unix";
    else if (addr.ss_family == AF_INET6) c.type = "tcp6";
    else if (addr.ss_family == AF_INET) c.type = "tcp";
    else c.type = "unknown";
    out.push_back(std::move(c));
  }
  return out;
}

ControlStats Arbiter::control_stats() const {
  ControlStats s;
  s.uptime_s = static_cast<double>(now_ms() - started_ms_) / 1000.0;
  s.workers_spawned = workers_spawned_;
  s.workers_killed = workers_killed_;
  s.reloads = reloads_;
  return s;
}

void Arbiter::set_target_workers(int n) {
  // As TTIN/TTOU; manage_workers spawns or retires on this loop turn.
  int old = target_workers_;
  target_workers_ = n;
  if (auto* hooks = wsgi::PythonConfig::hooks(); hooks && n != old) hooks->nworkers_changed(n, old);
}

bool Arbiter::terminate_worker(pid_t pid, std::string* error) {
  if (workers_.count(pid) == 0) {
    *error = "Worker " + std::to_string(pid) + " not found";
    return false;
  }
  if (::kill(pid, SIGTERM) != 0) {
    *error = std::strerror(errno);
    return false;
  }
  ++workers_killed_;
  return true;
}

void Arbiter::kill_worker(pid_t pid, int signum) {
  if (::kill(pid, signum) == 0 && (signum == SIGTERM || signum == SIGKILL)) ++workers_killed_;
}

}  // namespace cppgunicorn::master
