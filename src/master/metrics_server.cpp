#include "master/metrics_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>

namespace cppgunicorn::master {

namespace {

std::string_view reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    default: return "Error";
  }
}

// "127.0.0.1:9100" / "[::1]:9100" for the socket's local address.
std::string local_address(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
  char host[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    port = ntohs(a->sin_port);
    return std::string(host) + ":" + std::to_string(port);
  }
  auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
  ::inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
  port = ntohs(a->sin6_port);
  std::string out = "[";
  out += host;
  out += "]:";
  out += std::to_string(port);
  return out;
}

}  // namespace

MetricsServer::MetricsServer(const std::string& bind, Handler handler)
    : handler_(std::move(handler)) {
  net::ListenOptions options;
  options.backlog = 64;
  // USR2: the new master binds the same address while the old one still
  // serves it (either answers a scrape until the old one is gone).
  options.reuse_port = true;
  try {
    listener_ = net::open_listeners({bind}, options);
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("Invalid value for metrics_bind: '") + bind + "': " + e.what());
  }
  for (const net::ListenSocket& l : listener_) {
    ::fcntl(l.fd, F_SETFL, ::fcntl(l.fd, F_GETFL) | O_NONBLOCK);
    if (!address_.empty()) address_ += ',';
    address_ += local_address(l.fd);
  }
}

MetricsServer::~MetricsServer() {
  for (Client& c : clients_) ::close(c.fd);
  net::close_listeners(listener_, false);
}

void MetricsServer::close_in_child() {
  for (Client& c : clients_) ::close(c.fd);
  clients_.clear();
  net::close_listeners(listener_, false);
}

size_t MetricsServer::add_poll_fds(std::vector<pollfd>& fds) const {
  for (const net::ListenSocket& l : listener_) fds.push_back({l.fd, POLLIN, 0});
  for (const Client& c : clients_) {
    fds.push_back({c.fd, static_cast<short>(c.out.empty() ? POLLIN : POLLOUT), 0});
  }
  return listener_.size() + clients_.size();
}

void MetricsServer::on_poll(const pollfd* fds, size_t count, uint64_t now_ms) {
  // Clients first, by position (add_poll_fds put them after the listeners);
  // new ones are accepted after, so the positions still match.
  size_t listeners = listener_.size();
  std::vector<Client> kept;
  kept.reserve(clients_.size());
  for (size_t i = 0; i < clients_.size(); ++i) {
    Client& c = clients_[i];
    short events = listeners + i < count ? fds[listeners + i].revents : 0;
    bool alive = true;
    if (events & (POLLERR | POLLNVAL)) {
      alive = false;
    } else if (events & (POLLIN | POLLHUP)) {
      alive = c.out.empty() ? read_request(c) : write_response(c);
    } else if (events & POLLOUT) {
      alive = write_response(c);
    }
    if (alive && now_ms >= c.deadline_ms) alive = false;  // slow or silent: dropped
    if (alive) kept.push_back(std::move(c));
    else ::close(c.fd);
  }
  clients_.swap(kept);
  bool readable = false;
  for (size_t i = 0; i < listeners && i < count; ++i) readable |= (fds[i].revents & POLLIN) != 0;
  if (readable) accept_clients(now_ms);
}

void MetricsServer::accept_clients(uint64_t now_ms) {
  for (const net::ListenSocket& l : listener_) {
    for (;;) {
      int fd = ::accept4(l.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) break;  // EAGAIN: none left (or the peer gave up already)
      if (clients_.size() >= kMaxClients) {
        ::close(fd);  // more scrapers at once than anyone needs: refused
        continue;
      }
      Client c;
      c.fd = fd;
      c.deadline_ms = now_ms + kDeadlineMs;
      clients_.push_back(std::move(c));
      // Often the request is there already: answer without another poll.
      Client& added = clients_.back();
      if (!read_request(added)) {
        ::close(added.fd);
        clients_.pop_back();
      }
    }
  }
}

bool MetricsServer::read_request(Client& c) {
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
    if (n > 0) {
      c.in.append(buf, static_cast<size_t>(n));
      size_t end = c.in.find("\r\n\r\n");
      if (end == std::string::npos) end = c.in.find("\n\n");
      if (end != std::string::npos) {
        answer(c, std::string_view(c.in).substr(0, end));
        return write_response(c);
      }
      if (c.in.size() > kMaxHeadBytes) {
        respond(c, 431, "text/plain", "request head too large\n", false);
        return write_response(c);
      }
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (n < 0 && errno == EINTR) continue;
    return false;  // closed before a whole head, or an error
  }
}

void MetricsServer::answer(Client& c, std::string_view head) {
  // "GET /metrics?x HTTP/1.1": the method and the path are all we look at.
  size_t sp1 = head.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : head.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) {
    respond(c, 400, "text/plain", "bad request\n", false);
    return;
  }
  std::string_view method = head.substr(0, sp1);
  std::string_view target = head.substr(sp1 + 1, sp2 - sp1 - 1);
  target = target.substr(0, target.find('?'));
  bool head_only = method == "HEAD";
  if (method != "GET" && !head_only) {
    respond(c, 405, "text/plain", "only GET and HEAD\n", false);
    return;
  }
  MetricsResponse r = handler_(target);
  respond(c, r.status, r.content_type, r.body, head_only);
}

void MetricsServer::respond(Client& c, int status, std::string_view content_type,
                            std::string_view body, bool head_only) {
  c.out = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason_phrase(status)) +
          "\r\nContent-Type: " + std::string(content_type) +
          "\r\nContent-Length: " + std::to_string(body.size()) +
          "\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n";
  if (status == 405) c.out.insert(c.out.size() - 2, "Allow: GET, HEAD\r\n");
  if (!head_only) c.out += body;
  c.sent = 0;
  c.in.clear();
}

bool MetricsServer::write_response(Client& c) {
  while (c.sent < c.out.size()) {
    ssize_t n = ::send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
    if (n > 0) {
      c.sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;  // POLLOUT again
    if (n < 0 && errno == EINTR) continue;
    return false;
  }
  // All sent: close (Connection: close). What the client may still send is
  // dropped with the socket; a scraper sends nothing after its request.
  ::shutdown(c.fd, SHUT_WR);
  return false;
}

}  // namespace cppgunicorn::master
