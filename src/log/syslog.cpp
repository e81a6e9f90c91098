#include "log/syslog.h"

#include <netdb.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

namespace cppgunicorn::log {

namespace {

struct Address {
  enum Kind { kUdp, kTcp, kUnix } kind = kUdp;
  std::string host = "localhost";
  std::string port = "514";
  std::string path;
  bool unix_dgram = true;
};

bool parse_address(const std::string& text, Address* out) {
  std::string rest;
  if (text.rfind("unix://", 0) == 0) {
    out->kind = Address::kUnix;
    out->path = text.substr(7);
    auto hash = out->path.find('#');
    if (hash != std::string::npos) {
      out->unix_dgram = out->path.substr(hash + 1) != "stream";
      out->path.resize(hash);
    }
    return !out->path.empty();
  }
  if (text.rfind("udp://", 0) == 0) {
    out->kind = Address::kUdp;
    rest = text.substr(6);
  } else if (text.rfind("tcp://", 0) == 0) {
    out->kind = Address::kTcp;
    rest = text.substr(6);
  } else {
    return false;
  }
  if (rest.empty()) return true;
  if (rest[0] == '[') {
    auto close = rest.find(']');
    if (close == std::string::npos) return false;
    out->host = rest.substr(1, close - 1);
    if (close + 1 < rest.size() && rest[close + 1] == ':') out->port = rest.substr(close + 2);
  } else {
    auto colon = rest.find(':');
    out->host = rest.substr(0, colon);
    if (colon != std::string::npos) out->port = rest.substr(colon + 1);
  }
  if (out->host.empty() || out->port.empty()) return false;
  return out->port.find_first_not_of("0123456789") == std::string::npos;
}

int priority_of(Level level) {
  switch (level) {
    case Level::kDebug: return 7;
    case Level::kInfo: return 6;
    case Level::kWarning: return 4;
    case Level::kError: return 3;
    case Level::kCritical: return 2;
  }
  return 6;
}

}  // namespace

int syslog_facility_code(std::string_view name) {
  static constexpr std::pair<std::string_view, int> kFacilities[] = {
      {"auth", 4},   {"authpriv", 10}, {"cron", 9},    {"daemon", 3},  {"ftp", 11},
      {"kern", 0},   {"lpr", 6},       {"mail", 2},    {"news", 7},    {"security", 4},
      {"syslog", 5}, {"user", 1},      {"uucp", 8},    {"local0", 16}, {"local1", 17},
      {"local2", 18}, {"local3", 19},  {"local4", 20}, {"local5", 21}, {"local6", 22},
      {"local7", 23}};
  std::string lower;
  for (char c : name) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const auto& [n, code] : kFacilities) {
    if (n == lower) return code;
  }
  return -1;
}

bool valid_syslog_address(const std::string& address) {
  Address a;
  return parse_address(address, &a);
}

Syslog::~Syslog() {
  if (fd_ >= 0) ::close(fd_);
}

void Syslog::open(const std::string& address, const std::string& facility,
                  const std::string& prefix, bool access_too) {
  Address a;
  if (!parse_address(address, &a)) {
    throw std::runtime_error("Invalid value for syslog_addr: '" + address + "'");
  }
  facility_ = syslog_facility_code(facility);
  if (facility_ < 0) {
    throw std::runtime_error("Invalid value for syslog_facility: '" + facility + "'");
  }
  prefix_ = prefix;
  access_too_ = access_too;
  int fd = -1;
  if (a.kind == Address::kUnix) {
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    if (a.path.size() >= sizeof sun.sun_path) throw std::runtime_error("syslog_addr: path too long");
    std::memcpy(sun.sun_path, a.path.c_str(), a.path.size() + 1);
    stream_ = !a.unix_dgram;
    fd = ::socket(AF_UNIX, (stream_ ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
    if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun) != 0) {
      ::close(fd);
      throw std::runtime_error("Invalid value for syslog_addr: '" + address + "': " +
                               std::strerror(errno));
    }
  } else {
    stream_ = a.kind == Address::kTcp;
    addrinfo hints{};
    hints.ai_socktype = stream_ ? SOCK_STREAM : SOCK_DGRAM;
    addrinfo* res = nullptr;
    if (::getaddrinfo(a.host.c_str(), a.port.c_str(), &hints, &res) != 0 || res == nullptr) {
      throw std::runtime_error("Invalid value for syslog_addr: '" + address + "' (cannot resolve " +
                               a.host + ")");
    }
    fd = ::socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, 0);
    if (fd >= 0 && ::connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
      ::close(fd);
      fd = -1;
    }
    ::freeaddrinfo(res);
    if (fd < 0) throw std::runtime_error("Invalid value for syslog_addr: '" + address + "' (cannot connect)");
  }
  fd_ = fd;
}

void Syslog::send(int priority, std::string_view channel, std::string_view message) {
  if (fd_ < 0) return;
  std::string m;
  m.reserve(message.size() + prefix_.size() + 48);
  m += '<';
  m += std::to_string(facility_ * 8 + priority);
  m += ">gunicorn.";
  m += prefix_;
  m += '.';
  m += channel;
  m += ": [";
  m += std::to_string(::getpid());
  m += "] ";
  m += message;
  while (!m.empty() && m.back() == '\n') m.pop_back();
  m += '\0';
  [[maybe_unused]] ssize_t n = ::send(fd_, m.data(), m.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
}

void Syslog::error_line(Level level, std::string_view message) {
  send(priority_of(level), "error", message);
}

void Syslog::access_line(std::string_view line) {
  if (access_too_) send(priority_of(Level::kInfo), "access", line);
}

Syslog& syslog_sink() {
  static Syslog sink;
  return sink;
}

}  // namespace cppgunicorn::log
