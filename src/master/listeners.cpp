// The listeners the master holds: bound or adopted at start, changed by a
// HUP whose configuration names other addresses, shared during a USR2
// upgrade.
#include <signal.h>

#include <algorithm>
#include <stdexcept>

#include "log/logger.h"
#include "master/arbiter.h"

namespace cppgunicorn::master {

namespace {

// Whether a socket handed down to us (USR2, systemd) is the one `bind`
// names, so that HUP keeps it rather than binding the address again.
bool bind_names_socket(const std::string& bind, const net::ListenSocket& socket) {
  net::BindAddress a;
  try {
    a = net::parse_bind(bind);
  } catch (const std::exception&) {
    return false;
  }
  switch (a.kind) {
    case net::BindAddress::Kind::kUnix: return socket.is_unix && a.path == socket.server_name;
    case net::BindAddress::Kind::kFd: return a.fd == socket.fd;
    case net::BindAddress::Kind::kTcp:
      return !socket.is_unix && std::to_string(a.port) == socket.server_port &&
             a.host == socket.server_name;
  }
  return false;
}

net::ListenOptions listen_options(const config::Config& c) {
  net::ListenOptions options;
  options.backlog = c.backlog;
  options.reuse_port = c.reuse_port;
  options.umask = c.umask;
  return options;
}

}  // namespace

bool Arbiter::open_listeners_at_start() {
  net::InheritedListeners inherited = net::inherited_listeners();
  if (!inherited.fds.empty()) {
    old_master_pid_ = inherited.old_master;
    listeners_ = net::adopt_listeners(inherited);
    for (const net::ListenSocket& l : listeners_) {
      std::string named_by;
      for (const std::string& b : config_.bind_or_default()) {
        if (bind_names_socket(b, l)) named_by = b;
      }
      listener_binds_.push_back(named_by);
    }
    return false;
  }
  // One bind at a time, so that HUP knows which sockets each one opened.
  try {
    for (const std::string& b : config_.bind_or_default()) {
      for (net::ListenSocket& s : net::open_listeners({b}, listen_options(config_))) {
        listeners_.push_back(s);
        listener_binds_.push_back(b);
      }
    }
  } catch (...) {
    net::close_listeners(listeners_, true);  // the ones bound so far
    throw;
  }
  return true;
}

Arbiter::AddedListeners Arbiter::bind_added_addresses(const config::Config& fresh) {
  AddedListeners added;
  try {
    for (const std::string& b : fresh.bind_or_default()) {
      if (std::find(listener_binds_.begin(), listener_binds_.end(), b) != listener_binds_.end()) {
        continue;
      }
      for (net::ListenSocket& s : net::open_listeners({b}, listen_options(fresh))) {
        added.sockets.push_back(s);
        added.binds.push_back(b);
      }
    }
  } catch (...) {
    net::close_listeners(added.sockets, true);
    throw;
  }
  return added;
}

void Arbiter::replace_listeners(const std::vector<std::string>& binds, AddedListeners added) {
  // Listeners no longer configured: the master lets go of them; the old
  // workers still hold theirs until they stop. Handed-down ones ("") stay.
  std::vector<net::ListenSocket> removed;
  for (size_t i = listeners_.size(); i-- > 0;) {
    const std::string& b = listener_binds_[i];
    if (b.empty() || std::find(binds.begin(), binds.end(), b) != binds.end()) continue;
    log::error_log().info("Closing listener " + listeners_[i].display + " (no longer in bind)");
    removed.push_back(listeners_[i]);
    listeners_.erase(listeners_.begin() + static_cast<std::ptrdiff_t>(i));
    listener_binds_.erase(listener_binds_.begin() + static_cast<std::ptrdiff_t>(i));
  }
  net::close_listeners(removed, !sockets_shared());
  for (size_t i = 0; i < added.sockets.size(); ++i) {
    log::error_log().info("Listening at: " + display(added.sockets[i]));  // gunicorn: no pid on HUP
    listeners_.push_back(added.sockets[i]);
    listener_binds_.push_back(added.binds[i]);
  }
}

bool Arbiter::sockets_shared() const {
  // With a USR2 upgrade under way, the other master serves from the same
  // sockets (and unix socket files): they are not ours alone to shut down or
  // unlink. That is so while the new master we started runs, or while the
  // old master that started us does (gunicorn: until we are "promoted").
  if (reexec_pid_ != 0) return true;
  return old_master_pid_ > 0 && ::kill(old_master_pid_, 0) == 0;
}

std::string Arbiter::display(const net::ListenSocket& l) const {
  // gunicorn says https:// for its TLS listeners.
  if (tls_ && l.display.rfind("http://", 0) == 0) return "https://" + l.display.substr(7);
  return l.display;
}

}  // namespace cppgunicorn::master
