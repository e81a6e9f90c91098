#include "net/listener.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <stdexcept>

namespace cppgunicorn::net {

namespace {

int parse_port(std::string_view text, std::string_view whole) {
  if (text.empty() || text.size() > 5) throw std::invalid_argument("invalid bind address '" + std::string(whole) + "': bad port");
  int port = 0;
  for (char c : text) {
    if (c < '0' || c > '9') throw std::invalid_argument("invalid bind address '" + std::string(whole) + "': bad port");
    port = port * 10 + (c - '0');
  }
  if (port > 65535) throw std::invalid_argument("invalid bind address '" + std::string(whole) + "': port out of range");
  return port;
}

std::string errno_text() { return std::strerror(errno); }

}  // namespace

BindAddress parse_bind(std::string_view text) {
  BindAddress a;
  if (text.rfind("unix:", 0) == 0) {
    a.kind = BindAddress::Kind::kUnix;
    a.path = std::string(text.substr(5));
    if (a.path.rfind("//", 0) == 0) a.path = a.path.substr(2);
    if (a.path.empty()) throw std::invalid_argument("invalid bind address '" + std::string(text) + "': empty path");
    return a;
  }
  if (text.rfind("fd://", 0) == 0) {
    a.kind = BindAddress::Kind::kFd;
    a.fd = parse_port(text.substr(5), text);
    return a;
  }
  std::string_view rest = text;
  if (rest.rfind("tcp://", 0) == 0) rest.remove_prefix(6);
  if (rest.rfind("http://", 0) == 0) rest.remove_prefix(7);
  if (!rest.empty() && rest.front() == '[') {
    size_t close = rest.find(']');
    if (close == std::string_view::npos) throw std::invalid_argument("invalid bind address '" + std::string(text) + "': missing ']'");
    a.host = std::string(rest.substr(1, close - 1));
    std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') throw std::invalid_argument("invalid bind address '" + std::string(text) + "'");
      a.port = parse_port(after.substr(1), text);
    }
    return a;
  }
  size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos) {
    a.host = std::string(rest);
  } else {
    a.host = std::string(rest.substr(0, colon));
    a.port = parse_port(rest.substr(colon + 1), text);
  }
  if (a.host.empty()) a.host = "0.0.0.0";
  return a;
}

namespace {

ListenSocket bind_tcp(const BindAddress& a, std::string_view text, const ListenOptions& options) {
  int backlog = options.backlog;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  std::string port = std::to_string(a.port);
  int rc = getaddrinfo(a.host.c_str(), port.c_str(), &hints, &found);
  if (rc != 0) {
    throw std::runtime_error("cannot bind '" + std::string(text) + "': " + gai_strerror(rc));
  }
  std::string last_error = "no address";
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      last_error = errno_text();
      continue;
    }
    int on = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (options.reuse_port) ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on);
    if (ai->ai_family == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    // A connection is handed to accept() once its first bytes arrive, not at
    // the end of the handshake: the worker wakes up once per new client,
    // with the request there to read at once (Connection::read_at_once).
    // A client that sends nothing is accepted after about a second anyway
    // (the kernel's one SYN-ACK retransmission), and then meets the usual
    // request timeout. nginx's "listen ... deferred" is the same option.
    int defer_seconds = kDeferAcceptSeconds;
    ::setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer_seconds, sizeof defer_seconds);
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd, backlog) != 0) {
      last_error = errno_text();
      ::close(fd);
      continue;
    }
    ListenSocket s;
    s.fd = fd;
    s.address = a;
    char host[NI_MAXHOST], serv[NI_MAXSERV];
    sockaddr_storage bound{};
    socklen_t len = sizeof bound;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
    getnameinfo(reinterpret_cast<sockaddr*>(&bound), len, host, sizeof host, serv, sizeof serv,
                NI_NUMERICHOST | NI_NUMERICSERV);
    s.server_name = host;
    s.server_port = serv;
    s.display = ai->ai_family == AF_INET6 ? "http://[" + std::string(host) + "]:" + serv
                                          : "http://" + std::string(host) + ":" + serv;
    freeaddrinfo(found);
    return s;
  }
  freeaddrinfo(found);
  throw std::runtime_error("cannot bind '" + std::string(text) + "': " + last_error);
}

ListenSocket bind_unix(const BindAddress& a, std::string_view text, const ListenOptions& options) {
  int backlog = options.backlog;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (a.path.size() >= sizeof addr.sun_path) {
    throw std::runtime_error("cannot bind '" + std::string(text) + "': path too long");
  }
  std::memcpy(addr.sun_path, a.path.c_str(), a.path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("cannot bind '" + std::string(text) + "': " + errno_text());
  // A socket file left by a previous run that nobody listens on is stale.
  struct stat st{};
  if (::stat(a.path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
    int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool in_use = probe >= 0 && ::connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    if (probe >= 0) ::close(probe);
    if (in_use) {
      ::close(fd);
      throw std::runtime_error("cannot bind '" + std::string(text) + "': address already in use");
    }
    ::unlink(a.path.c_str());
  }
  // The socket file's mode is 0777 less the umask (gunicorn's --umask).
  mode_t old_umask = ::umask(static_cast<mode_t>(options.umask));
  int bound = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::umask(old_umask);
  if (bound != 0 || ::listen(fd, backlog) != 0) {
    std::string why = errno_text();
    ::close(fd);
    throw std::runtime_error("cannot bind '" + std::string(text) + "': " + why);
  }
  ListenSocket s;
  s.fd = fd;
  s.address = a;
  s.is_unix = true;
  s.display = "unix:" + a.path;
  s.server_name = a.path;
  s.server_port = "";
  return s;
}

ListenSocket adopt_fd(const BindAddress& a, std::string_view text) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (::getsockname(a.fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw std::runtime_error("cannot use '" + std::string(text) + "': " + errno_text());
  }
  ListenSocket s;
  s.fd = a.fd;
  s.address = a;
  s.is_unix = addr.ss_family == AF_UNIX;
  if (s.is_unix) {
    s.server_name = reinterpret_cast<sockaddr_un*>(&addr)->sun_path;
    s.display = "unix:" + s.server_name;
  } else {
    char host[NI_MAXHOST], serv[NI_MAXSERV];
    getnameinfo(reinterpret_cast<sockaddr*>(&addr), len, host, sizeof host, serv, sizeof serv,
                NI_NUMERICHOST | NI_NUMERICSERV);
    s.server_name = host;
    s.server_port = serv;
    s.display = addr.ss_family == AF_INET6 ? "http://[" + std::string(host) + "]:" + serv
                                           : "http://" + std::string(host) + ":" + serv;
  }
  return s;
}

}  // namespace

std::vector<ListenSocket> open_listeners(const std::vector<std::string>& binds,
                                         const ListenOptions& options) {
  std::vector<ListenSocket> out;
  try {
    for (const std::string& text : binds) {
      BindAddress a = parse_bind(text);
      switch (a.kind) {
        case BindAddress::Kind::kTcp: out.push_back(bind_tcp(a, text, options)); break;
        case BindAddress::Kind::kUnix: out.push_back(bind_unix(a, text, options)); break;
        case BindAddress::Kind::kFd: out.push_back(adopt_fd(a, text)); break;
      }
    }
  } catch (...) {
    close_listeners(out, true);
    throw;
  }
  return out;
}

namespace {

std::vector<int> parse_fd_list(std::string_view rest) {
  std::vector<int> fds;
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    if (!item.empty()) fds.push_back(std::atoi(std::string(item).c_str()));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
  }
  return fds;
}

}  // namespace

InheritedListeners inherited_listeners() {
  InheritedListeners out;
  if (const char* list = std::getenv(kInheritedFdsVariable); list != nullptr && *list != '\0') {
    out.fds = parse_fd_list(list);
    if (const char* foreign = std::getenv(kForeignFdsVariable)) out.foreign = parse_fd_list(foreign);
    if (const char* pid = std::getenv(kOldMasterVariable)) out.old_master = std::atoi(pid);
    ::unsetenv(kInheritedFdsVariable);
    ::unsetenv(kForeignFdsVariable);
    ::unsetenv(kOldMasterVariable);
    return out;
  }
  // systemd's sd_listen_fds(3) protocol: fds 3 .. 3+N-1, for this pid only.
  const char* pid = std::getenv("LISTEN_PID");
  const char* count = std::getenv("LISTEN_FDS");
  if (pid != nullptr && count != nullptr && std::atol(pid) == static_cast<long>(::getpid())) {
    int n = std::atoi(count);
    for (int i = 0; i < n; ++i) out.fds.push_back(3 + i);
    out.foreign = out.fds;
  }
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_FDNAMES");
  return out;
}

std::vector<ListenSocket> adopt_listeners(const InheritedListeners& inherited) {
  std::vector<ListenSocket> out;
  for (int fd : inherited.fds) {
    BindAddress a;
    a.kind = BindAddress::Kind::kFd;
    a.fd = fd;
    ListenSocket s = adopt_fd(a, "fd://" + std::to_string(fd));
    // Closed on exec like our own (USR2 names them again in the variable).
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    bool foreign = std::find(inherited.foreign.begin(), inherited.foreign.end(), fd) !=
                   inherited.foreign.end();
    if (!foreign) {
      // The old master bound it from our own --bind list.
      s.address.kind = s.is_unix ? BindAddress::Kind::kUnix : BindAddress::Kind::kTcp;
      if (s.is_unix) s.address.path = s.server_name;
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::string fd_list(const std::vector<ListenSocket>& sockets, bool only_foreign) {
  std::string out;
  for (const ListenSocket& s : sockets) {
    if (only_foreign && s.address.kind != BindAddress::Kind::kFd) continue;
    if (!out.empty()) out += ',';
    out += std::to_string(s.fd);
  }
  return out;
}

void stop_accepting(const std::vector<ListenSocket>& sockets) {
  for (const ListenSocket& s : sockets) {
    if (s.fd >= 0 && s.address.kind == BindAddress::Kind::kTcp) ::shutdown(s.fd, SHUT_RD);
  }
}

void close_listeners(std::vector<ListenSocket>& sockets, bool unlink_unix) {
  for (ListenSocket& s : sockets) {
    if (s.fd >= 0) ::close(s.fd);
    s.fd = -1;
    if (unlink_unix && s.address.kind == BindAddress::Kind::kUnix) ::unlink(s.address.path.c_str());
  }
  sockets.clear();
}

}  // namespace cppgunicorn::net
