// The master's own small HTTP server for /metrics and /healthz, on the
// address of --metrics-bind. It runs inside the master's wait: the master
// polls the signal pipe and these sockets together (Arbiter::wait_for_events),
// so a scrape reads the master's state without a lock or a thread, and no
// Python is involved. Scrapers are untrusted: one request per connection,
// a head of at most 8 KiB, 5 s for the whole exchange, 32 connections at
// once; anything past that is closed.
#pragma once

#include <poll.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "net/listener.h"

namespace cppgunicorn::master {

struct MetricsResponse {
  int status = 200;  // 200, 404, 405, 503
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

class MetricsServer {
 public:
  // Called for each GET or HEAD, with the path (no query).
  using Handler = std::function<MetricsResponse(std::string_view path)>;

  static constexpr size_t kMaxHeadBytes = 8192;
  static constexpr uint64_t kDeadlineMs = 5000;
  static constexpr size_t kMaxClients = 32;

  // Binds and listens on `bind` (HOST:PORT). Throws std::runtime_error
  // naming the address.
  MetricsServer(const std::string& bind, Handler handler);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // "127.0.0.1:9100", with the port the kernel chose for port 0.
  const std::string& address() const { return address_; }

  // The descriptors to poll, appended to `fds`; returns how many.
  size_t add_poll_fds(std::vector<pollfd>& fds) const;
  // After poll: serves what is ready (`fds` are the entries add_poll_fds
  // appended) and closes connections past their deadline.
  void on_poll(const pollfd* fds, size_t count, uint64_t now_ms);

  // In a forked worker: its copies of the sockets, closed so that a
  // scraper's connection ends when the master closes it.
  void close_in_child();

 private:
  struct Client {
    int fd = -1;
    uint64_t deadline_ms = 0;
    std::string in;
    std::string out;
    size_t sent = 0;
  };

  void accept_clients(uint64_t now_ms);
  // false: the client is done (answered, refused or gone).
  bool read_request(Client& c);
  bool write_response(Client& c);
  void answer(Client& c, std::string_view head);
  static void respond(Client& c, int status, std::string_view content_type, std::string_view body,
                      bool head_only);

  Handler handler_;
  std::vector<net::ListenSocket> listener_;
  std::string address_;
  std::vector<Client> clients_;
};

}  // namespace cppgunicorn::master
