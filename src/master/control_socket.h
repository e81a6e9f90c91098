// The master's control socket: gunicorn's protocol (a 4-byte big-endian
// length, then that many bytes of JSON; one answer per request) on a unix
// socket that gunicornc and cppgunicornc connect to. What each command does
// is in control_commands.h; this file owns the socket, its file, the
// connections and their framing.
//
// The master runs no event loop: the socket and its connections are polled
// from the master's main loop (poll_fds / on_poll), never block, and hold
// no Python. A connection whose message is malformed, too large or too
// slow gets an error answer and is closed; the master carries on.
#pragma once

#include <poll.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/json.h"

namespace cppgunicorn::master {

class ControlSocket {
 public:
  // Answers one request (a JSON object) with one response object.
  using Handler = std::function<base::Json(const base::Json& request)>;

  // The longest message accepted: a command is a few dozen bytes.
  static constexpr uint32_t kMaxMessageBytes = 64 * 1024;
  // A message must arrive whole within this long of its first byte.
  static constexpr uint64_t kMessageDeadlineMs = 5000;
  // A connection that sends nothing for this long is closed (gunicorn's).
  static constexpr uint64_t kIdleMs = 300'000;
  static constexpr size_t kMaxConnections = 16;
  // A client that sends requests without reading the answers is not read
  // from while this much waits for it (an answer is up to a few KiB).
  static constexpr size_t kMaxPendingOut = 64 * 1024;
  // After an error answer, how long the client has to read it and close.
  static constexpr uint64_t kLingerMs = 1000;
  // USR2: the listening socket handed to the new master.
  static constexpr const char* kInheritedFdVariable = "CPPGUNICORN_CONTROL_FD";

  explicit ControlSocket(Handler handler) : handler_(std::move(handler)) {}
  ~ControlSocket();
  ControlSocket(const ControlSocket&) = delete;
  ControlSocket& operator=(const ControlSocket&) = delete;

  // Listens at `path` (absolute), its file created with `mode`: first the
  // socket a USR2 parent handed down for the same path, if any, else a new
  // one. A stale socket file (nobody listens) is replaced; a live one (or
  // a file that is no socket) is left alone. Returns false, having logged
  // a warning that says why, when there is no socket; the master then runs
  // without one, as gunicorn does.
  bool open(const std::string& path, int mode);
  // Stops listening, closes every connection and removes the file if it is
  // still the one we created.
  void close();
  bool is_open() const { return listen_fd_ >= 0; }
  const std::string& path() const { return path_; }
  int mode() const { return mode_; }

  // A socket handed down for a master that runs without one: closed.
  static void discard_inherited();
  // In a forked worker: closes our descriptors, removes nothing.
  void drop_after_fork();
  // USR2, in the child about to exec the new master: the listening socket
  // survives exec and is named in the environment.
  void hand_down();
  // USR2, in the old master once the new one is forked: it owns the socket
  // now; ours is closed and the file left to it.
  void let_go();

  // Appends the descriptors to poll; on_poll takes the same vector back
  // with `first` the index of the first of ours.
  void poll_fds(std::vector<pollfd>& fds) const;
  void on_poll(const std::vector<pollfd>& fds, size_t first);
  // Milliseconds until a connection's deadline (-1: none).
  int next_deadline_ms() const;

 private:
  struct Connection {
    int fd = -1;
    std::string in;
    std::string out;
    uint64_t message_started_ms = 0;  // 0: no partial message
    uint64_t last_activity_ms = 0;
    uint64_t lingering_until_ms = 0;  // set: answered with an error, closing
  };

  static uint64_t deadline_of(const Connection& c);

  bool adopt_inherited(const std::string& path);
  bool bind_new(const std::string& path, int mode);
  void remember_file();
  void accept_all();
  bool peer_allowed(int fd, std::string* refusal) const;
  // false: the connection is to be closed now.
  bool read_from(Connection& c);
  void take_messages(Connection& c);
  bool write_to(Connection& c);
  void fail(Connection& c, const std::string& error);
  void close_connections();

  Handler handler_;
  int listen_fd_ = -1;
  std::string path_;
  int mode_ = 0600;
  // The file we bound (or adopted): removed on close only if still it.
  dev_t file_dev_ = 0;
  ino_t file_ino_ = 0;
  bool own_file_ = false;
  std::vector<Connection> connections_;
};

}  // namespace cppgunicorn::master
