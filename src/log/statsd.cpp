#include "log/statsd.h"

#include <netdb.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace cppgunicorn::log {

namespace {

struct HostPort {
  std::string host;
  std::string port = "8125";
};

bool split_host_port(const std::string& address, HostPort* out) {
  if (address.empty()) return false;
  if (address[0] == '[') {
    auto close = address.find(']');
    if (close == std::string::npos) return false;
    out->host = address.substr(1, close - 1);
    if (close + 1 < address.size()) {
      if (address[close + 1] != ':') return false;
      out->port = address.substr(close + 2);
    }
  } else {
    auto colon = address.rfind(':');
    if (colon != std::string::npos && address.find(':') == colon) {
      out->host = address.substr(0, colon);
      out->port = address.substr(colon + 1);
    } else {
      out->host = address;
    }
  }
  if (out->host.empty() || out->port.empty()) return false;
  for (char c : out->port) {
    if (c < '0' || c > '9') return false;
  }
  return std::stol(out->port) > 0 && std::stol(out->port) < 65536;
}

// gunicorn: "app" and "app..." both become "app.".
std::string normalise_prefix(std::string prefix) {
  while (!prefix.empty() && prefix.back() == '.') prefix.pop_back();
  if (!prefix.empty()) prefix += '.';
  return prefix;
}

}  // namespace

bool valid_statsd_address(const std::string& address) {
  if (address.rfind("unix:", 0) == 0) return address.size() > 5;
  HostPort hp;
  return split_host_port(address, &hp);
}

Statsd::~Statsd() {
  if (fd_ >= 0) ::close(fd_);
}

void Statsd::open(const std::string& address, const std::string& prefix, const std::string& tags) {
  prefix_ = normalise_prefix(prefix);
  tags_ = tags;
  if (address.rfind("unix:", 0) == 0) {
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::string path = address.substr(5);
    if (path.size() >= sizeof sun.sun_path) throw std::runtime_error("statsd_host: path too long");
    std::memcpy(sun.sun_path, path.c_str(), path.size() + 1);
    int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun) != 0) {
      // gunicorn carries on without metrics when the socket is not there.
    }
    fd_ = fd;
    return;
  }
  HostPort hp;
  if (!split_host_port(address, &hp)) {
    throw std::runtime_error("Invalid value for statsd_host: '" + address + "' (expected host:port)");
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* res = nullptr;
  if (::getaddrinfo(hp.host.c_str(), hp.port.c_str(), &hints, &res) != 0 || res == nullptr) {
    throw std::runtime_error("Invalid value for statsd_host: '" + address + "' (cannot resolve " +
                             hp.host + ")");
  }
  int fd = ::socket(res->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd >= 0 && ::connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
    ::close(fd);
    fd = -1;
  }
  ::freeaddrinfo(res);
  fd_ = fd;
}

void Statsd::send(const std::string& metric) {
  if (fd_ < 0) return;
  std::string datagram = prefix_ + metric;
  if (!tags_.empty()) datagram += "|#" + tags_;
  // A full buffer or an absent collector loses the metric, never a request.
  [[maybe_unused]] ssize_t n = ::send(fd_, datagram.data(), datagram.size(), MSG_DONTWAIT);
}

void Statsd::gauge(std::string_view name, long value) {
  send(std::string(name) + ":" + std::to_string(value) + "|g");
}

void Statsd::increment(std::string_view name, long value) {
  send(std::string(name) + ":" + std::to_string(value) + "|c|@1.0");
}

void Statsd::timer(std::string_view name, double milliseconds) {
  char buf[64];
  std::snprintf(buf, sizeof buf, ":%.3f|ms", milliseconds);
  send(std::string(name) + buf);
}

void Statsd::request(int status, double duration_s, bool static_file) {
  if (fd_ < 0) return;
  timer("gunicorn.request.duration", duration_s * 1000.0);
  increment("gunicorn.requests", 1);
  increment("gunicorn.request.status." + std::to_string(status), 1);
  if (static_file) increment("cppgunicorn.requests.static", 1);
}

Statsd& statsd() {
  static Statsd client;
  return client;
}

}  // namespace cppgunicorn::log
