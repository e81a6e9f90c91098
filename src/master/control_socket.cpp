#include "master/control_socket.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>

#include "base/heartbeat.h"
#include "log/logger.h"

namespace cppgunicorn::master {

namespace {

uint64_t now_ms() { return base::Heartbeat::now_ms(); }

std::string errno_text() { return std::strerror(errno); }

bool fill_address(const std::string& path, sockaddr_un* addr) {
  std::memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  if (path.size() >= sizeof addr->sun_path) return false;
  std::memcpy(addr->sun_path, path.data(), path.size());
  return true;
}

// The directories above the socket, made (0700, as gunicorn makes
// ~/.gunicorn) where missing.
bool make_parent_dirs(const std::string& path) {
  for (size_t slash = path.find('/', 1); slash != std::string::npos; slash = path.find('/', slash + 1)) {
    std::string dir = path.substr(0, slash);
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return false;
  }
  return true;
}

// Whether a server listens on the unix socket at `path`; its pid if so
// (0 when the kernel does not say).
bool someone_listens(const std::string& path, pid_t* pid) {
  sockaddr_un addr;
  if (!fill_address(path, &addr)) return false;
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  bool live = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 || errno == EAGAIN;
  if (live) {
    ucred cred{};
    socklen_t len = sizeof cred;
    *pid = ::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 ? cred.pid : 0;
  }
  ::close(fd);
  return live;
}

void put_be32(std::string& out, uint32_t n) {
  out += static_cast<char>((n >> 24) & 0xFF);
  out += static_cast<char>((n >> 16) & 0xFF);
  out += static_cast<char>((n >> 8) & 0xFF);
  out += static_cast<char>(n & 0xFF);
}

std::string frame(const base::Json& message) {
  std::string payload = message.dump();
  std::string out;
  out.reserve(4 + payload.size());
  put_be32(out, static_cast<uint32_t>(payload.size()));
  out += payload;
  return out;
}

base::Json error_response(base::Json id, const std::string& error) {
  return base::Json(base::Json::Object{
      {"id", std::move(id)}, {"status", "error"}, {"error", error}});
}

}  // namespace

ControlSocket::~ControlSocket() { close(); }

bool ControlSocket::open(const std::string& path, int mode) {
  close();
  path_ = path;
  mode_ = mode;
  if (adopt_inherited(path)) return true;
  if (!bind_new(path, mode)) return false;
  log::error_log().info("Control socket listening at " + path);  // gunicorn's line
  return true;
}

bool ControlSocket::adopt_inherited(const std::string& path) {
  const char* text = std::getenv(kInheritedFdVariable);
  if (text == nullptr) return false;
  int fd = std::atoi(text);
  ::unsetenv(kInheritedFdVariable);
  // Ours only if it is a listening unix socket bound at the configured
  // path: a HUP between USR2 and the exec may have changed the setting.
  sockaddr_un addr{};
  socklen_t len = sizeof addr;
  int listening = 0;
  socklen_t optlen = sizeof listening;
  bool usable = fd > 2 && ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0 &&
                addr.sun_family == AF_UNIX &&
                ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &optlen) == 0 && listening &&
                path == addr.sun_path;
  if (!usable) {
    if (fd > 2) ::close(fd);
    return false;
  }
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  listen_fd_ = fd;
  remember_file();
  log::error_log().info("Control socket listening at " + path + " (inherited)");
  return true;
}

bool ControlSocket::bind_new(const std::string& path, int mode) {
  auto refuse = [&](const std::string& why) {
    log::error_log().warning("Failed to start control socket: " + why);
    return false;
  };
  sockaddr_un addr;
  if (!fill_address(path, &addr)) {
    return refuse("path too long for a unix socket (at most " +
                  std::to_string(sizeof addr.sun_path - 1) + " bytes): " + path);
  }
  if (!make_parent_dirs(path)) return refuse("cannot create the directory of " + path + ": " + errno_text());
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return refuse(path + " exists and is not a socket; not replacing it");
    pid_t holder = 0;
    if (someone_listens(path, &holder)) {
      return refuse(path + " is in use by " +
                    (holder > 0 ? "the server with pid " + std::to_string(holder) : "another server") +
                    "; not replacing it (set --control-socket to another path)");
    }
    ::unlink(path.c_str());  // stale: its master is gone
  }
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return refuse("socket: " + errno_text());
  // The file is created with its mode: the umask covers the bind, so
  // nobody else can connect in between (the master is the only thread
  // that creates files at this point).
  mode_t saved_umask = ::umask(static_cast<mode_t>(~mode & 0777));
  int bound = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  int bind_errno = errno;
  ::umask(saved_umask);
  if (bound != 0) {
    ::close(fd);
    errno = bind_errno;
    return refuse("bind " + path + ": " + errno_text());
  }
  // Exactly the mode asked for, as gunicorn's chmod (a umask only removes
  // bits), still before anyone may connect.
  if (::chmod(path.c_str(), static_cast<mode_t>(mode)) != 0 || ::listen(fd, 16) != 0) {
    std::string why = errno_text();
    ::close(fd);
    ::unlink(path.c_str());
    return refuse(path + ": " + why);
  }
  listen_fd_ = fd;
  remember_file();
  return true;
}

void ControlSocket::remember_file() {
  struct stat st {};
  own_file_ = ::lstat(path_.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
  file_dev_ = st.st_dev;
  file_ino_ = st.st_ino;
}

void ControlSocket::close() {
  close_connections();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = -1;
  if (own_file_) {
    // Only the file we made: another server (a second master, gunicorn)
    // may have replaced it since.
    struct stat st {};
    if (::lstat(path_.c_str(), &st) == 0 && st.st_dev == file_dev_ && st.st_ino == file_ino_) {
      ::unlink(path_.c_str());
    }
  }
  own_file_ = false;
}

void ControlSocket::discard_inherited() {
  if (const char* text = std::getenv(kInheritedFdVariable)) {
    int fd = std::atoi(text);
    if (fd > 2) ::close(fd);
    ::unsetenv(kInheritedFdVariable);
  }
}

void ControlSocket::drop_after_fork() {
  for (Connection& c : connections_) ::close(c.fd);
  connections_.clear();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = -1;
  own_file_ = false;
}

void ControlSocket::hand_down() {
  for (Connection& c : connections_) ::close(c.fd);
  connections_.clear();
  if (listen_fd_ < 0) return;
  ::fcntl(listen_fd_, F_SETFD, 0);
  ::setenv(kInheritedFdVariable, std::to_string(listen_fd_).c_str(), 1);
}

void ControlSocket::let_go() {
  close_connections();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = -1;
  own_file_ = false;
}

void ControlSocket::close_connections() {
  for (Connection& c : connections_) ::close(c.fd);
  connections_.clear();
}

void ControlSocket::poll_fds(std::vector<pollfd>& fds) const {
  if (listen_fd_ < 0) return;
  fds.push_back({listen_fd_, POLLIN, 0});
  for (const Connection& c : connections_) {
    short events = c.out.size() < kMaxPendingOut ? POLLIN : 0;
    if (!c.out.empty()) events |= POLLOUT;
    fds.push_back({c.fd, events, 0});
  }
}

uint64_t ControlSocket::deadline_of(const Connection& c) {
  if (c.lingering_until_ms) return c.lingering_until_ms;
  if (c.message_started_ms) return c.message_started_ms + kMessageDeadlineMs;
  return c.last_activity_ms + kIdleMs;
}

int ControlSocket::next_deadline_ms() const {
  if (connections_.empty()) return -1;
  uint64_t now = now_ms();
  uint64_t soonest = UINT64_MAX;
  for (const Connection& c : connections_) soonest = std::min(soonest, deadline_of(c));
  return soonest <= now ? 0 : static_cast<int>(std::min<uint64_t>(soonest - now, 60'000));
}

void ControlSocket::on_poll(const std::vector<pollfd>& fds, size_t first) {
  if (listen_fd_ < 0) return;
  std::map<int, short> ready;
  bool accept_ready = false;
  for (size_t i = first; i < fds.size(); ++i) {
    if (fds[i].fd == listen_fd_) accept_ready = fds[i].revents != 0;
    else ready[fds[i].fd] = fds[i].revents;
  }
  for (size_t i = 0; i < connections_.size();) {
    Connection& c = connections_[i];
    short revents = ready.count(c.fd) ? ready[c.fd] : 0;
    bool keep = true;
    if (revents & (POLLIN | POLLHUP | POLLERR)) keep = read_from(c);
    if (keep && !c.out.empty()) keep = write_to(c);
    if (keep) take_messages(c);  // those held back while answers waited
    if (keep && !c.out.empty()) keep = write_to(c);
    uint64_t now = now_ms();
    if (keep && now >= deadline_of(c)) {
      if (c.message_started_ms && !c.lingering_until_ms) {
        fail(c, "Incomplete message: not received whole within " +
                    std::to_string(kMessageDeadlineMs / 1000) + " s");
        keep = write_to(c);
      } else {
        keep = false;  // idle, or done lingering
      }
    }
    if (keep) {
      ++i;
    } else {
      ::close(c.fd);
      connections_.erase(connections_.begin() + static_cast<std::ptrdiff_t>(i));
    }
  }
  if (accept_ready) accept_all();
}

void ControlSocket::accept_all() {
  for (;;) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;  // EAGAIN, or a connection gone before we took it
    Connection c;
    c.fd = fd;
    c.last_activity_ms = now_ms();
    std::string refusal;
    if (!peer_allowed(fd, &refusal)) {
      log::error_log().warning("Control socket: " + refusal);
      fail(c, refusal);
    } else if (connections_.size() >= kMaxConnections) {
      fail(c, "Too many control connections (at most " + std::to_string(kMaxConnections) + ")");
    }
    // A refused client still gets its answer: it is sent now and read
    // once the client has sent its request (see fail).
    if ((c.lingering_until_ms && !write_to(c)) || connections_.size() >= 2 * kMaxConnections) {
      ::close(fd);
      continue;
    }
    connections_.push_back(std::move(c));
  }
}

bool ControlSocket::peer_allowed(int fd, std::string* refusal) const {
  // The file's mode keeps others from connecting; the peer's credentials
  // are checked as well, so that a mode opened too wide (0666) still lets
  // in nobody but the master's user, root, and with a group-writable mode
  // the master's group.
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    *refusal = "cannot read the peer's credentials: " + errno_text();
    return false;
  }
  if (cred.uid == 0 || cred.uid == ::geteuid()) return true;
  if ((mode_ & 0020) && cred.gid == ::getegid()) return true;
  *refusal = "Permission denied: uid " + std::to_string(cred.uid) + " (pid " +
             std::to_string(cred.pid) + ") may not use this server's control socket";
  return false;
}

bool ControlSocket::read_from(Connection& c) {
  char buf[16384];
  while (c.out.size() < kMaxPendingOut) {
    ssize_t n = ::read(c.fd, buf, sizeof buf);
    if (n > 0) {
      if (c.lingering_until_ms) continue;  // answered with an error: input is dropped
      if (c.in.empty()) c.message_started_ms = now_ms();
      c.in.append(buf, static_cast<size_t>(n));
      c.last_activity_ms = now_ms();
      take_messages(c);
      continue;
    }
    if (n == 0) {
      write_to(c);  // the answers to what it sent before its end
      return false;
    }
    return errno == EAGAIN || errno == EINTR;
  }
  return true;
}

void ControlSocket::take_messages(Connection& c) {
  while (!c.lingering_until_ms && c.in.size() >= 4 && c.out.size() < kMaxPendingOut) {
    auto byte = [&](size_t i) { return static_cast<uint32_t>(static_cast<unsigned char>(c.in[i])); };
    uint32_t length = byte(0) << 24 | byte(1) << 16 | byte(2) << 8 | byte(3);
    if (length > kMaxMessageBytes) {
      fail(c, "Message too large: " + std::to_string(length) + " bytes (at most " +
                  std::to_string(kMaxMessageBytes) + ")");
      return;
    }
    if (c.in.size() < 4 + static_cast<size_t>(length)) return;
    std::string_view payload(c.in.data() + 4, length);
    base::Json request;
    try {
      request = base::Json::parse(payload);
    } catch (const base::JsonError& e) {
      fail(c, std::string("Invalid JSON: ") + e.what());
      return;
    }
    c.in.erase(0, 4 + static_cast<size_t>(length));
    c.message_started_ms = c.in.empty() ? 0 : now_ms();
    if (request.type() != base::Json::Type::kObject) {
      fail(c, "Invalid message: expected a JSON object");
      return;
    }
    c.out += frame(handler_(request));
  }
}

void ControlSocket::fail(Connection& c, const std::string& error) {
  // The error answer, then a lingering close: input is read and dropped
  // until the client closes or kLingerMs pass. Closing at once could fail
  // the client's send of its request (EPIPE) before it reads why.
  c.out += frame(error_response(0, error));
  c.in.clear();
  c.message_started_ms = 0;
  c.lingering_until_ms = now_ms() + kLingerMs;
}

bool ControlSocket::write_to(Connection& c) {
  while (!c.out.empty()) {
    ssize_t n = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
    if (n > 0) {
      c.out.erase(0, static_cast<size_t>(n));
      continue;
    }
    return n < 0 && (errno == EAGAIN || errno == EINTR);
  }
  return true;
}

}  // namespace cppgunicorn::master
