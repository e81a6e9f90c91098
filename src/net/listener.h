// Listening sockets: bind addresses parsed with gunicorn's syntax, bound and
// listening before any worker is forked, then shared by every worker.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

namespace cppgunicorn::net {

struct BindAddress {
  enum class Kind { kTcp, kUnix, kFd };
  Kind kind = Kind::kTcp;
  std::string host;  // "127.0.0.1", "::1", "0.0.0.0"
  int port = 8000;
  std::string path;  // unix socket path
  int fd = -1;       // fd://N
};

// "HOST:PORT", "[V6]:PORT", "HOST" (port 8000), "unix:PATH", "fd://N".
// Throws std::invalid_argument naming the address.
BindAddress parse_bind(std::string_view text);

struct ListenSocket {
  int fd = -1;
  BindAddress address;
  bool is_unix = false;
  std::string display;      // "http://127.0.0.1:8000" or "unix:/tmp/x.sock"
  std::string server_name;  // for SERVER_NAME when a request has no Host
  std::string server_port;
};

// TCP_DEFER_ACCEPT on the TCP sockets we bind: how long a connection that
// has sent nothing waits before it is accepted anyway (docs/http.md).
inline constexpr int kDeferAcceptSeconds = 1;

struct ListenOptions {
  int backlog = 2048;
  bool reuse_port = false;  // SO_REUSEPORT
  int umask = 0;            // applied while creating unix socket files
};

// Binds and listens on every address. Throws std::runtime_error naming the
// address that failed (and why).
std::vector<ListenSocket> open_listeners(const std::vector<std::string>& binds,
                                         const ListenOptions& options);

// Listening sockets handed down by a parent instead of bound here: by an
// old master re-executing us (USR2, $CPPGUNICORN_FD="3,4") or by systemd
// socket activation ($LISTEN_FDS with $LISTEN_PID our pid). Empty when there
// are none. The variables are removed so that children do not see them.
struct InheritedListeners {
  std::vector<int> fds;
  std::vector<int> foreign;  // of those, the ones the old master was handed itself
  pid_t old_master = 0;      // USR2: the master that re-executed us, else 0
};
InheritedListeners inherited_listeners();

// Sockets from an old master (USR2) that it bound itself are ours to shut
// down and unlink once it is gone; sockets from systemd, and the ones the
// old master was handed (fd://, systemd), never are.
std::vector<ListenSocket> adopt_listeners(const InheritedListeners& inherited);

// The environment variables a re-executed master finds its sockets (all,
// and the foreign ones among them) and the old master's pid in.
inline constexpr const char* kInheritedFdsVariable = "CPPGUNICORN_FD";
inline constexpr const char* kForeignFdsVariable = "CPPGUNICORN_FOREIGN_FD";
inline constexpr const char* kOldMasterVariable = "CPPGUNICORN_PID";

// "3,4" for the sockets; with `only_foreign`, only those not bound here.
std::string fd_list(const std::vector<ListenSocket>& sockets, bool only_foreign);

// Makes the TCP sockets this process bound itself refuse new connections
// at once, in every process that shares them (shutdown(2) acts on the
// socket, not on one descriptor), even in a worker stuck in a request that
// has not closed its copy yet. Sockets handed down to us (fd://, USR2,
// systemd) are left alone: another process may still serve from them.
void stop_accepting(const std::vector<ListenSocket>& sockets);

// Closes the sockets; `unlink_unix` removes unix socket files (the master
// does, on exit).
void close_listeners(std::vector<ListenSocket>& sockets, bool unlink_unix);

}  // namespace cppgunicorn::net
