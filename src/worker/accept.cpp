// The worker's listeners and accept path: which worker takes a connection
// waiting in the kernel's queue, and when a worker leaves it to another.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "log/logger.h"
#include "worker/connection.h"
#include "worker/worker.h"

namespace cppgunicorn::worker {

namespace {
// A worker that yielded to a peer takes the queue itself when no peer has
// accepted anything for this long. A peer busy in the app is not waited
// for at all (AcceptBoard::set_busy); this covers one that is runnable but
// not yet scheduled, which on a machine whose CPUs are all busy (the
// workers and the load generator) takes a few milliseconds.
constexpr uint64_t kYieldMs = 5;
// Out of descriptors: look at the queue again this soon even if no
// connection of ours has closed (nginx waits 500 ms).
constexpr uint64_t kOutOfFilesRetryMs = 100;
}  // namespace

void Worker::ListenerHandle::close() {
  watching = false;
  poll.close();  // stops polling at once (epoll_ctl DEL), frees later
  if (socket != nullptr) ::close(socket->fd);
  socket = nullptr;
}

bool Worker::listen() {
  uv_timer_init(&loop_, accept_retry_timer_.get());
  accept_retry_timer_.mark_initialised();
  accept_retry_timer_initialised_ = true;
  for (const net::ListenSocket& s : sockets_) {
    auto l = std::make_unique<ListenerHandle>();
    l->socket = &s;
    if (!s.is_unix) {
      // Linux copies TCP_NODELAY from a listening socket to each socket it
      // accepts: set once here, it costs no setsockopt per connection.
      int on = 1;
      ::setsockopt(s.fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    }
    int rc = uv_poll_init_socket(&loop_, l->poll.get(), s.fd);
    if (rc == 0) {
      l->poll.mark_initialised();
      l->poll.get()->data = l.get();
      rc = uv_poll_start(l->poll.get(), UV_READABLE, on_listener_readable);
      l->watching = rc == 0;
    }
    listeners_.push_back(std::move(l));
    if (rc != 0) {
      log::error_log().error("cannot listen on " + s.display + ": " + uv_strerror(rc));
      return false;
    }
  }
  publish_connection_count();
  return true;
}

void Worker::publish_connection_count() {
  if (accept_board_ != nullptr) accept_board_->publish(board_slot_, connections_.size());
}

void Worker::on_listener_readable(uv_poll_t* poll, int status, int) {
  auto* self = static_cast<Worker*>(poll->loop->data);
  auto* l = static_cast<ListenerHandle*>(poll->data);
  if (status < 0) {
    log::error_log().error("polling " + l->socket->display + " failed: " + uv_strerror(status));
    return;
  }
  self->accept_from(*l);
}

Worker::AcceptHold Worker::admission() const {
  if (connections_.size() >= max_connections_) return AcceptHold::kFull;
  if (accept_board_ == nullptr || accept_insist_) return AcceptHold::kNone;
  // Ahead of the least loaded peer by more than one: leave the connection
  // in the queue, where that peer (woken by it too) takes it. Within one,
  // either may take it, and a lone connection is never kept waiting.
  std::optional<uint32_t> fewest = accept_board_->fewest_besides(board_slot_);
  if (fewest && connections_.size() > static_cast<size_t>(*fewest) + 1) return AcceptHold::kYield;
  return AcceptHold::kNone;
}

void Worker::accept_from(ListenerHandle& l) {
  const net::ListenSocket& socket = *l.socket;
  // Until the queue is empty, as libuv's own accept loop: the board says
  // when to leave the rest to a peer.
  bool client_waiting = true;  // the poll said so; after an accept, unknown
  while (!stopping_ && l.watching) {
    if (AcceptHold why = admission(); why != AcceptHold::kNone) {
      // Hold back only for a client known to wait (the hold closes an idle
      // connection to make room, or starts a peer's deadline). Else stay
      // watching: the level-triggered poll says at once if one waits.
      if (client_waiting) hold_accepting(why);
      return;
    }
    sockaddr_storage peer{};
    socklen_t peer_len = sizeof peer;
    int fd = ::accept4(socket.fd, reinterpret_cast<sockaddr*>(&peer), &peer_len,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      int e = errno;
      switch (e) {
        case EAGAIN:
#if EAGAIN != EWOULDBLOCK
        case EWOULDBLOCK:
#endif
          accept_insist_ = false;  // the queue is empty
          return;
        case EINTR:
        // accept(2), Linux: errors already pending on the new connection
        // are reported here; that client is gone, the next may be fine.
        case ECONNABORTED:
        case EPROTO:
        case ENETDOWN:
        case ENOPROTOOPT:
        case EHOSTDOWN:
        case ENONET:
        case EHOSTUNREACH:
        case EOPNOTSUPP:
        case ENETUNREACH:
        case EPERM:  // a firewall rule refused it
          continue;
        case EINVAL:
          // The master shut the socket down (net::stop_accepting): it will
          // never accept again, and would stay readable.
          l.close();
          return;
        case EMFILE:
        case ENFILE:
        case ENOBUFS:
        case ENOMEM: {
          // Clients wait in the backlog (none is dropped) until a
          // connection of ours closes, or a moment passes; say so once a
          // second, not per attempt.
          uint64_t now = uv_now(&loop_);
          if (now - last_emfile_log_ms_ >= 1000) {
            last_emfile_log_ms_ = now;
            log::error_log().warning(std::string("accept() failed: ") + std::strerror(e) +
                                     "; lower --worker-connections or raise the open-files limit");
          }
          hold_accepting(AcceptHold::kOutOfFiles);
          return;
        }
        default:
          log::error_log().error("accept() on " + socket.display + " failed: " + std::strerror(e));
          hold_accepting(AcceptHold::kOutOfFiles);
          return;
      }
    }
    client_waiting = false;
    auto conn = std::make_unique<Connection>(*this);
    Connection* raw = conn.get();
    counters_->connections_accepted.inc();
    connections_.emplace(raw, std::move(conn));
    if (accept_board_ != nullptr) {
      accept_board_->count_accept(board_slot_);
      publish_connection_count();
    }
    // (Reading at once may answer and close it within this call.)
    if (!raw->adopt(fd, peer, socket)) raw->close();
  }
}

void Worker::hold_accepting(AcceptHold why) {
  for (auto& l : listeners_) {
    if (l->watching) uv_poll_stop(l->poll.get());
    l->watching = false;
  }
  AcceptHold before = accept_hold_;
  accept_hold_ = why;
  switch (why) {
    case AcceptHold::kFull:
      counters_->connections_rejected.inc();
      // As nginx does when it runs out: the idle connection that waited
      // longest makes room (its client reconnects when it has a request),
      // rather than a new client waiting out every keep-alive.
      close_longest_idle();
      break;
    case AcceptHold::kYield:
      // The deadline runs from the first yield, not from each.
      if (before != AcceptHold::kYield) {
        peer_accepts_at_yield_ = accept_board_->accepts_besides(board_slot_);
        uv_timer_start(accept_retry_timer_.get(), on_accept_retry, kYieldMs, 0);
      }
      break;
    case AcceptHold::kOutOfFiles:
      uv_timer_start(accept_retry_timer_.get(), on_accept_retry, kOutOfFilesRetryMs, 0);
      break;
    case AcceptHold::kNone:
      break;
  }
}

void Worker::resume_accepting() {
  if (stopping_) return;
  accept_hold_ = AcceptHold::kNone;
  uv_timer_stop(accept_retry_timer_.get());
  // Level-triggered: a queue that filled meanwhile is reported at the next poll.
  for (auto& l : listeners_) {
    if (!l->watching && l->poll) {  // (a listener the master shut is closed)
      l->watching = uv_poll_start(l->poll.get(), UV_READABLE, on_listener_readable) == 0;
    }
  }
}

void Worker::on_accept_retry(uv_timer_t* timer) {
  auto* self = static_cast<Worker*>(timer->loop->data);
  if (self->accept_hold_ == AcceptHold::kYield &&
      self->accept_board_->accepts_besides(self->board_slot_) == self->peer_accepts_at_yield_) {
    // No peer took anything while we held back: they are busy (in the app,
    // or not scheduled). Waiting longer would only delay the client.
    self->accept_insist_ = true;
  }
  self->resume_accepting();
}

}  // namespace cppgunicorn::worker
