#include "worker/connection.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

#include "http/errors.h"
#include "log/logger.h"
#include "net/ip_text.h"
#include "worker/app_pool.h"
#include "worker/stall_flusher.h"
#include "worker/worker.h"
#include "wsgi/application.h"
#include "wsgi/exchange.h"
#include "wsgi/interpreter.h"
#include "wsgi/python_config.h"

namespace cppgunicorn::worker {

namespace {
// Pull no further chunk from the app while this much is queued for the socket.
constexpr size_t kHighWater = 1024 * 1024;
constexpr size_t kLowWater = 256 * 1024;
// Responses up to this size are corked (Worker::corking); a larger one is
// written at once rather than copied.
constexpr size_t kCorkBytes = 16 * 1024;
// sendfile(2) at most this much per call; when the socket is full, this
// much is read and queued instead, to learn when it drains.
constexpr size_t kSendfileMax = 4 * 1024 * 1024;
constexpr size_t kFilePieceSize = 64 * 1024;
// The most one uv_buf_t carries here (its length is an unsigned int).
constexpr size_t kMaxBufBytes = size_t{1} << 30;
// Request body bytes kept in memory; the rest is spooled to a file.
constexpr size_t kBodyInMemory = 1024 * 1024;
// Stop reading when this much pipelined input waits behind a response.
constexpr size_t kMaxPendingInput = 1024 * 1024;
// How long a closing connection may drain the client's unread bytes.
constexpr uint64_t kLingerMs = 2000;
// Deadlines for a request head, an idle body and a stalled write use
// --timeout; with --timeout 0 (no worker timeout) they are this long.
constexpr uint64_t kDefaultRequestTimeoutMs = 30000;

constexpr std::string_view kInternalErrorBody =
    "<html><head><title>Internal Server Error</title></head><body><h1><p>"
    "Internal Server Error</p></h1></body></html>";

wsgi::PeerInfo peer_of(const sockaddr_storage& addr) {
  wsgi::PeerInfo p;
  if (addr.ss_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
    char ip[net::kIpv4TextSize];
    p.remote_addr.assign(ip, net::ipv4_text(in->sin_addr, ip));
    p.remote_port = std::to_string(ntohs(in->sin_port));
  } else if (addr.ss_family == AF_INET6) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    char ip[INET6_ADDRSTRLEN] = "";
    uv_ip6_name(in6, ip, sizeof ip);
    p.remote_addr = ip;
    p.remote_port = std::to_string(ntohs(in6->sin6_port));
  }
  return p;
}

uv_buf_t buf_of(std::string_view s) {
  return uv_buf_init(const_cast<char*>(s.data()), static_cast<unsigned int>(s.size()));
}
}  // namespace

template <typename F>
void Connection::guarded(F&& body) {
  // Called from libuv's C frames, which nothing may unwind through: a
  // failure ends this connection, logged, and the worker goes on.
  try {
    body();
  } catch (const std::exception& e) {
    log::error_log().error("Error on a connection from " + peer_.remote_addr + ": " + e.what());
    close();
  } catch (...) {
    log::error_log().error("Error on a connection from " + peer_.remote_addr +
                           ": unknown exception");
    close();
  }
}

Connection::Connection(Worker& worker) : worker_(worker), parser_(worker.parser_options()) {
  std::memset(&h_, 0, sizeof h_);
}

Connection::~Connection() {
  if (corked_) worker_.uncork(this);
}

bool Connection::adopt(int fd, const sockaddr_storage& peer, const net::ListenSocket& info) {
  bool is_unix = info.is_unix;
  int rc = is_unix ? uv_pipe_init(worker_.loop(), &h_.pipe, 0) : uv_tcp_init(worker_.loop(), &h_.tcp);
  if (rc == 0) {
    initialised_ = true;
    h_.handle.data = this;
    rc = is_unix ? uv_pipe_open(&h_.pipe, fd) : uv_tcp_open(&h_.tcp, fd);
  }
  if (rc != 0) {
    ::close(fd);  // not the handle's yet
    return false;
  }
  // TCP_NODELAY is not set here: the accepted socket inherits it from the
  // listener (Worker::listen), one setsockopt per worker, not per connection.
  // Nor is the peer asked for: accept4 said who it is.
  if (!is_unix) peer_ = peer_of(peer);
  if (worker_.parser_options().proxy_protocol != http::ProxyProtocol::kOff) {
    // gunicorn: a unix socket peer may always send a PROXY header.
    parser_.set_proxy_peer_allowed(
        is_unix || http::address_allowed(peer_.remote_addr, worker_.config().proxy_allow_ips));
  }
  if (worker_.parser_options().uwsgi) {
    // gunicorn: a unix socket peer may always send uwsgi packets.
    parser_.set_uwsgi_peer_allowed(
        is_unix || http::address_allowed(peer_.remote_addr, worker_.config().uwsgi_allow_ips));
  }
  peer_.server_name = info.server_name;
  peer_.server_port = info.server_port;
  peer_.unix_socket = is_unix;
  peer_trusted_ = worker_.forwarded().trusts(peer_.remote_addr);
  parser_.set_forwarder_trusted(peer_trusted_);
  last_activity_ms_ = uv_now(worker_.loop());
  accepted_ms_ = last_activity_ms_;
  if (const net::TlsContext* tls = worker_.tls()) {
    tls_ = std::make_unique<net::TlsSession>(*tls);
    peer_.url_scheme = "https";
  }
  if (uv_read_start(&h_.stream, on_alloc, on_read) != 0) return false;
  reading_ = true;
  read_at_once();
  return true;
}

void Connection::read_at_once() {
  // A new client has usually sent its request by the time it is accepted
  // (with TCP_DEFER_ACCEPT, always: see net::open_listeners). Reading it now
  // rather than from the next poll saves a loop iteration, and a connection
  // answered and closed within this iteration is never added to epoll at
  // all (libuv registers a started read at its next poll): one epoll_ctl
  // and one epoll_wait fewer per new connection. Nothing there yet
  // (EAGAIN) costs one read; the started read takes over as before.
  int fd = -1;
  if (uv_fileno(&h_.handle, &fd) != 0) return;
  ssize_t n;
  do {
    n = ::read(fd, worker_.read_buffer(), worker_.read_buffer_size());
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
  ssize_t status = n > 0 ? n : n == 0 ? UV_EOF : -errno;
  uv_buf_t buf = uv_buf_init(worker_.read_buffer(), static_cast<unsigned int>(worker_.read_buffer_size()));
  on_read(&h_.stream, status, &buf);
}

void Connection::on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  // One read buffer per worker: every read is parsed before the next one,
  // and bytes that must wait are copied out.
  Worker& w = static_cast<Connection*>(h->data)->worker_;
  *buf = uv_buf_init(w.read_buffer(), static_cast<unsigned int>(w.read_buffer_size()));
}

void Connection::on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
  auto* c = static_cast<Connection*>(s->data);
  c->guarded([&] {
    if (n > 0) {
      c->worker_.counters().bytes_in.add(static_cast<uint64_t>(n));
      if (c->tls_) {
        c->on_tls_data(buf->base, static_cast<size_t>(n));
      } else {
        c->on_data(buf->base, static_cast<size_t>(n));
      }
    } else if (n == UV_EOF) {
      c->on_eof();
    } else if (n < 0) {
      c->close();
    }
  });
}

void Connection::on_data(const char* data, size_t n) {
  // Only bytes that advance a request refresh the idle deadline (consume
  // decides): empty lines before a request line, or what a lingering
  // client still sends, hold no connection open.
  if (lingering_ || closing_) return;  // draining: the linger ends on time
  if (close_when_flushed_) {
    client_closes_ = false;  // more after "close": the close must linger
    return;
  }
  // A body streamed to the app goes on being parsed while it is served.
  if ((busy_ && !body_) || !pending_input_.empty()) {
    pending_input_.append(data, n);
    if (pending_input_.size() > kMaxPendingInput && reading_) {
      uv_read_stop(&h_.stream);
      reading_ = false;
    }
    return;
  }
  consume(data, n);
}

void Connection::on_tls_data(const char* data, size_t n) {
  if (lingering_ || closing_ || close_when_flushed_) return;  // draining: nothing to decrypt
  if (tls_first_read_) {
    tls_first_read_ = false;
    if (!net::looks_like_tls(std::string_view(data, n))) {
      // Plain HTTP to the TLS port: say so in plain HTTP, as nginx does.
      log::error_log().debug("Plain HTTP request from " + peer_.remote_addr + " to a TLS port");
      worker_.counters().parse_errors[static_cast<size_t>(http::ParseError::kPlainHttpToTls)].inc();
      std::string_view response = http::canned_response(http::ParseError::kPlainHttpToTls);
      uv_buf_t buf = buf_of(response);
      send_raw(&buf, 1);
      close_after_writes();  // no close_notify: no TLS session began
      return;
    }
  }
  // Handshake bytes are progress too; the handshake deadline in sweep()
  // bounds how long they may trickle. Later records count by what they
  // decrypt to (on_data).
  if (!tls_->established()) last_activity_ms_ = uv_now(worker_.loop());
  tls_plain_.clear();
  bool ok = tls_->feed(data, n, &tls_plain_);
  flush_tls_output();
  if (!ok) {
    log::error_log().debug("TLS error with " + peer_.remote_addr + ": " + tls_->error());
    // The alert OpenSSL made (if any) goes out first; nothing else will.
    client_closes_ = false;
    close_after_writes();
    return;
  }
  if (!tls_plain_.empty()) on_data(tls_plain_.data(), tls_plain_.size());
  if (tls_ && tls_->peer_closed() && !closing_) on_eof();  // close_notify: the end of the stream
}

void Connection::flush_tls_output() {
  if (!tls_) return;
  std::string& out = tls_->output();
  if (out.empty()) return;
  uv_buf_t buf = buf_of(out);
  send_raw(&buf, 1);  // copies what the kernel does not take at once
  out.clear();
}

void Connection::consume(const char* data, size_t n) {
  while (n > 0 && !closing_ && !close_when_flushed_) {
    // The head deadline runs from a request's first byte (slowloris).
    if (!parser_.in_request()) head_started_ms_ = uv_now(worker_.loop());
    http::Parser::Result r = parser_.feed(data, n);
    data += r.consumed;
    n -= r.consumed;
    if (parser_.in_request() || r.status == http::Parser::Status::kRequestReady) {
      last_activity_ms_ = uv_now(worker_.loop());
    }
    if (r.status == http::Parser::Status::kError) {
      if (body_ || draining_body_) {
        reject_streamed_body(parser_.error());
      } else {
        reject(parser_.error());
      }
      return;
    }
    if (streams_bodies()) {
      StreamStep step = on_streamed_body(r.status, data, n);
      if (step == StreamStep::kStop) return;
      if (step == StreamStep::kWait) break;
      if (step == StreamStep::kNextRequest) continue;
      // kServe: the whole request is here already; served as a buffered one.
    } else if (!spool_body()) {
      return;
    }
    if (r.status == http::Parser::Status::kNeedMore) {
      // RFC 9110 section 10.1.1: a client that sent "Expect: 100-continue"
      // waits for this before its body. The body is read before the app
      // runs, so it is asked for as soon as the head is accepted.
      if (parser_.awaiting_body() && parser_.request().expect_continue && !continue_sent_) {
        continue_sent_ = true;
        uv_buf_t buf = buf_of("HTTP/1.1 100 Continue\r\n\r\n");
        send(&buf, 1);
      }
      break;
    }
    continue_sent_ = false;
    start_request();
    if (busy_) {
      // The response waits for the socket: keep the rest for later.
      pending_input_.assign(data, n);
      return;
    }
    if (corked_ && n > 0) {
      // The next pipelined request's app call may take its time: this
      // response goes out first, the rest is served after the cork flush.
      pending_input_.assign(data, n);
      continue_after_flush_ = true;
      return;
    }
  }
  if (peer_eof_ && !busy_ && !closing_ && !close_when_flushed_) {
    if (parser_.finish().status == http::Parser::Status::kError) {
      reject(parser_.error());
    } else {
      close_after_writes();
    }
  }
}

bool Connection::spool_body() {
  // A body past this size goes to a temporary file, so an upload costs at
  // most this much memory (plus one read) whatever its size.
  http::Request& request = parser_.request();
  if (request.body.size() < kBodyInMemory) return true;
  int err = 0;
  try {
    if (!request.body_file) request.body_file = base::SpoolFile::create();
    err = request.body_file->append(request.body);
    if (err == 0) {
      worker_.counters().spooled_bytes.add(request.body.size());
      request.body.clear();
      return true;
    }
  } catch (const std::exception& e) {
    err = errno != 0 ? errno : EIO;  // the file could not be made
    log::error_log().error("Cannot spool the request body from " + peer_.remote_addr + ": " +
                           e.what());
  }
  // Refused with a status the client can act on, before the close; the
  // spool file (and its space) goes with the request.
  http::ParseError answer;
  if (err == base::SpoolFile::kOverBudget) {
    answer = http::ParseError::kSpoolBudgetExceeded;
    log::error_log().warning("Request body from " + peer_.remote_addr +
                             " refused: this worker's spool_budget is used up by other uploads");
  } else {
    answer = err == ENOSPC || err == EDQUOT ? http::ParseError::kInsufficientStorage
                                            : http::ParseError::kSpoolFailed;
    log::error_log().error("Cannot spool the request body from " + peer_.remote_addr + " to " +
                           base::SpoolFile::directory() + ": " + std::strerror(err) +
                           " (errno " + std::to_string(err) + ")");
  }
  request.body.clear();
  request.body_file.reset();
  reject(answer);
  return false;
}

void Connection::on_eof() {
  if (tls_ && !tls_->peer_closed() && !worker_.config().tls.suppress_ragged_eofs && !lingering_) {
    // suppress_ragged_eofs=False: an EOF without close_notify may be a
    // truncation attack, so it ends nothing gracefully.
    log::error_log().debug("TLS connection from " + peer_.remote_addr +
                           " ended without close_notify");
    close();
    return;
  }
  peer_eof_ = true;
  if (reading_) {
    uv_read_stop(&h_.stream);
    reading_ = false;
  }
  if (lingering_ || draining_body_) {
    close();
    return;
  }
  if (body_) {
    // gunicorn: a Content-Length body cut short reads short (its
    // LengthReader returns what arrived, then b""); a chunked one raises
    // (NoMoreData, an IOError).
    end_body(parser_.request().chunked ? base::BodyChannel::Failure::kError
                                       : base::BodyChannel::Failure::kTruncated,
             "the client closed the connection before the end of the request body");
  }
  if (busy_ || close_when_flushed_) return;  // answered (or closed) when done
  consume(nullptr, 0);
}

void Connection::resume_after_response() {
  if (closing_ || close_when_flushed_) return;
  if (!reading_ && !peer_eof_) {
    if (uv_read_start(&h_.stream, on_alloc, on_read) == 0) reading_ = true;
  }
  std::string input;
  input.swap(pending_input_);
  consume(input.data(), input.size());
}

void Connection::start_request() {
  busy_ = true;
  head_sent_ = false;
  head_unwritten_ = false;
  file_fd_ = -1;
  body_bytes_ = 0;
  started_us_ = uv_hrtime() / 1000;
  started_wall_ = std::time(nullptr);
  http::Request& request = parser_.request();
  if (const http::ProxyInfo& proxy = parser_.proxy_info(); !proxy.client_addr.empty()) {
    // REMOTE_ADDR/REMOTE_PORT are the client the PROXY header names.
    peer_.remote_addr = proxy.client_addr;
    peer_.remote_port = proxy.client_port;
  }
  if (const http::ProxyInfo& proxy = parser_.proxy_info(); proxy.seen) {
    peer_.proxy_protocol = proxy.protocol;
    peer_.proxy_addr = proxy.proxy_addr;
    peer_.proxy_port = proxy.proxy_port;
  }
  is_head_request_ = request.method == "HEAD";
  // Static mounts first: a request under one never reaches the app (nor
  // its hooks), unless it names no file and --static-fallthrough is set.
  if (serve_static()) return;
  if (log::error_log().enabled(log::Level::kDebug)) {
    // gunicorn's default pre_request hook logs "GET /path"; a pre_request
    // of the user's replaces it.
    wsgi::PythonConfig* hooks = wsgi::PythonConfig::hooks();
    if (hooks == nullptr || !hooks->has("pre_request")) {
      log::error_log().debug(request.method + " " + std::string(request.path()));
    }
  }
  if (base::Heartbeat* hb = worker_.heartbeat()) hb->set_request(request.method, request.target);
  // A trusted front-end's secure_scheme_headers set wsgi.url_scheme; two
  // that disagree make the request invalid (gunicorn: InvalidSchemeHeaders).
  // The connection's own peer unless a front-end changes the scheme: no
  // copy of its strings per request.
  const wsgi::PeerInfo* peer = &peer_;
  std::optional<wsgi::PeerInfo> forwarded;
  // A uwsgi packet says the scheme itself (HTTPS), as gunicorn reads it.
  if (peer_trusted_ && !request.uwsgi) {
    switch (worker_.forwarded().scheme_of(request.headers)) {
      case ForwardedPolicy::Scheme::kConflict:
        log::error_log().warning("Invalid request from ip=" + peer_.remote_addr +
                                 ": contradictory scheme headers");
        busy_ = false;
        if (base::Heartbeat* hb = worker_.heartbeat()) hb->clear_request();
        reject(http::ParseError::kInvalidHeader);
        return;
      case ForwardedPolicy::Scheme::kHttps:
        peer = &forwarded.emplace(peer_);
        forwarded->url_scheme = "https";
        break;
      case ForwardedPolicy::Scheme::kHttp:
        peer = &forwarded.emplace(peer_);
        forwarded->url_scheme = "http";
        break;
      case ForwardedPolicy::Scheme::kUnset: break;
    }
  }
  // In flight from here until finish_request (answered) or close (abandoned).
  worker_.counters().requests_started.inc();
  if (AppPool* pool = worker_.app_pool()) {
    // --threads > 1: a pool thread calls the app; pump() takes what it has
    // produced and is called again when there is more.
    exchange_ = pool->submit(request, *peer, [this] {
      guarded([this] {
        if (!busy_ || closing_) return;
        resume_body_reading();
        pump();
        if (!busy_) resume_after_response();
      });
    });
    pump();
    return;
  }
  worker_.hold_gil();
  exchange_ = worker_.app().exchange();
  if (!static_cast<wsgi::Exchange&>(*exchange_).call(request, *peer)) {
    send_error_response(kInternalErrorBody);
    return;
  }
  pump();
}

void Connection::pump() {
  if (file_fd_ >= 0) {
    send_file();  // no GIL: the file is ours until the exchange closes
    return;
  }
  worker_.hold_gil();
  // sendfile(2) is for the direct path, where the loop thread owns the
  // iterable; a pool thread iterates a file wrapper like any other body.
  // Over TLS the file goes through the encrypting writer like any body.
  if (!head_sent_ && busy_ && !worker_.app_pool() && worker_.config().sendfile && !tls_ &&
      exchange_->responded() && start_file_body()) {
    return;
  }
  while (busy_ && !closing_) {
    if (backlog() > kHighWater) {
      write_batch(false);
      waiting_for_drain_ = true;
      return;
    }
    std::string_view chunk;
    wsgi::Exchange::Next next = pull(&chunk);
    if (closing_) return;  // the stall flusher found the peer gone
    if (next == wsgi::Exchange::Next::kPending) {
      write_batch(false);  // nothing more is ready: what is, goes
      return;  // the pool calls back
    }
    if (next == wsgi::Exchange::Next::kError) {
      if (!head_sent_) {
        send_error_response(kInternalErrorBody);
      } else {
        // Mid-body there is no way to tell the client but to cut the
        // response short (a chunked body then lacks its last chunk).
        worker_.counters().app_exceptions.inc();
        write_batch(false);
        close();
      }
      return;
    }
    if (!head_sent_ && !exchange_->responded()) {
      log::error_log().error("Error handling request " + parser_.request().method + " " + parser_.request().target +
                             ": the application returned without calling start_response()");
      send_error_response(kInternalErrorBody);
      return;
    }
    bool done = next == wsgi::Exchange::Next::kDone;
    if (!head_sent_) {
      if (!plan_head(done ? std::string_view() : chunk, done)) return;
      if (!done && gathers(chunk)) {
        hold(chunk);
      } else {
        send_head_and_chunk(done ? std::string_view() : chunk, done);
        if (closing_ || !busy_) return;
      }
    } else if (!done) {
      if (gathers(chunk)) {
        hold(chunk);
      } else {
        write_batch(false);
        if (closing_) return;
        send_head_and_chunk(chunk, false);
      }
    }
    if (closing_) return;  // a write found the peer gone: closed, exchange and all
    if (done) {
      // The last chunk goes out with what is gathered, in the same write.
      write_batch(plan_.framing == http::Framing::kChunked);
      if (closing_) return;
      bool keep_alive = plan_.keep_alive;
      if (plan_.framing == http::Framing::kContentLength && body_bytes_ < plan_.length) {
        log::error_log().error("Response to " + parser_.request().target + " ended after " +
                               std::to_string(body_bytes_) + " of " +
                               std::to_string(plan_.length) +
                               " bytes its Content-Length promised; closing the connection");
        keep_alive = false;
      }
      exchange_->close();
      finish_request(keep_alive);
      return;
    }
    if (corked_ && !(plan_.framing == http::Framing::kContentLength && body_bytes_ >= plan_.length)) {
      // More may follow and the app may take its time making it (a stream
      // of events): what is corked goes out before the next chunk is asked
      // for, and the cork flush carries on from here. A body that has all
      // its Content-Length bytes is complete for the client; the iterable
      // is expected to end now, so it is finished while it is still in the
      // caches (the common case: a framework's response).
      write_batch(false);
      continue_after_flush_ = true;
      return;
    }
  }
}

wsgi::ResponseSource::Next Connection::pull(std::string_view* chunk) {
  // Only a batch that could go straight to the socket is watched: with
  // bytes queued before it, it would have to wait for them anyway.
  StallFlusher* flusher = nullptr;
  int fd = -1;
  if ((!batch_.empty() || head_unwritten_) && exchange_->runs_app() && !tls_ && backlog() == 0 &&
      uv_fileno(&h_.handle, &fd) == 0) {
    flusher = worker_.stall_flusher();
  }
  if (flusher == nullptr) return exchange_->next(chunk);
  batch_.frame(plan_.framing, head_unwritten_ ? std::string_view(head_) : std::string_view(), false,
               &batch_pieces_);
  StallWatch watch(flusher, fd, batch_pieces_);
  wsgi::ResponseSource::Next next = exchange_->next(chunk);
  StallFlusher::Outcome flushed = watch.disarm();
  if (flushed.error != 0) {
    close();  // the peer is gone
    return next;
  }
  if (flushed.written == 0) return next;
  // The batch went out while the app was busy, all of it or (the socket
  // full) a part: the rest is queued, in order, and a new batch begins.
  size_t skip = flushed.written;
  for (std::string_view piece : batch_pieces_) {
    if (skip >= piece.size()) {
      skip -= piece.size();
      continue;
    }
    queued_.append(piece.substr(skip));
    skip = 0;
  }
  batch_.clear();
  head_unwritten_ = false;
  exchange_->release_held_chunks();  // not the chunk next() just handed out
  flush_queue();
  return next;
}

bool Connection::gathers(std::string_view chunk) const {
  // The stall flusher writes plaintext only: over TLS, a generator on the
  // loop thread has its chunks written one by one, as they come.
  bool app_here = exchange_->runs_app();
  if (app_here && tls_) return false;
  return plan_.body_allowed && chunk.size() <= kMaxBufBytes && batch_.takes(chunk.size());
}

void Connection::hold(std::string_view chunk) {
  if (batch_.full_before(chunk.size())) {
    write_batch(false);
    if (closing_) return;  // the peer is gone; the exchange with it
  }
  chunk = exchange_->hold_chunk();
  batch_.add(fit_chunk(chunk));
}

void Connection::write_batch(bool last) {
  if (batch_.empty() && !head_unwritten_ && !last) return;
  batch_.frame(plan_.framing, head_unwritten_ ? std::string_view(head_) : std::string_view(), last,
               &batch_pieces_);
  batch_bufs_.clear();
  for (std::string_view piece : batch_pieces_) batch_bufs_.push_back(buf_of(piece));
  head_unwritten_ = false;
  if (!batch_bufs_.empty()) send(batch_bufs_.data(), static_cast<unsigned int>(batch_bufs_.size()));
  // send() took the bytes (written, or copied into the queue).
  bool held = !batch_.empty();
  batch_.clear();
  if (held && exchange_) exchange_->release_held_chunks();
}

bool Connection::start_file_body() {
  // PEP 3333 "Optional Platform-Specific File Handling": the body is a
  // regular file, so its size is known (Content-Length, no chunking) and
  // the kernel can copy it straight to the socket.
  wsgi::FileBody file;
  if (!static_cast<const wsgi::Exchange&>(*exchange_).file_body(&file)) return false;
  try {
    plan_ = http::plan_response(parser_.request(), exchange_->status(), exchange_->headers(),
                                is_head_request_, &file.size, must_close_after_response());
  } catch (const std::invalid_argument& e) {
    log::error_log().error("Error handling request " + parser_.request().method + " " + parser_.request().target + ": " + e.what());
    send_error_response(kInternalErrorBody);
    return true;
  }
  head_.clear();
  http::append_response_head(head_, parser_.request(), exchange_->status(), exchange_->headers(),
                             plan_, worker_.http_date());
  exchange_->mark_headers_sent();
  head_sent_ = true;
  uv_buf_t buf = buf_of(head_);
  send(&buf, 1);
  file_fd_ = file.fd;
  file_offset_ = file.offset;
  file_left_ = plan_.body_allowed ? std::min<uint64_t>(file.size, plan_.length) : 0;
  send_file();
  return true;
}

void Connection::send_file() {
  // sendfile(2) writes past the TLS session: a static file over TLS (or
  // with --no-sendfile) is read and sent through send() instead.
  if (static_ && (tls_ || !worker_.config().sendfile)) {
    send_file_by_reading();
    return;
  }
  while (busy_ && !closing_ && file_left_ > 0) {
    // Only straight to the socket when nothing else is queued for it.
    if (backlog() > 0) {
      waiting_for_drain_ = true;
      return;
    }
    int sock = -1;
    if (uv_fileno(&h_.handle, &sock) != 0) {
      close();
      return;
    }
    off_t offset = static_cast<off_t>(file_offset_);
    size_t want = static_cast<size_t>(std::min<uint64_t>(file_left_, kSendfileMax));
    ssize_t n = ::sendfile(sock, file_fd_, &offset, want);
    if (n > 0) {
      worker_.counters().bytes_out.add(static_cast<uint64_t>(n));
      file_offset_ += static_cast<uint64_t>(n);
      file_left_ -= static_cast<uint64_t>(n);
      body_bytes_ += static_cast<uint64_t>(n);
      continue;
    }
    if (n == 0) break;  // the file is shorter than it was: finish short
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      close();  // the peer is gone
      return;
    }
    // The socket is full. One ordinary queued write of the next piece
    // tells us (in on_write) when it drains; sendfile resumes then.
    std::string piece(static_cast<size_t>(std::min<uint64_t>(file_left_, kFilePieceSize)), '\0');
    ssize_t got = ::pread(file_fd_, piece.data(), piece.size(), static_cast<off_t>(file_offset_));
    if (got <= 0) break;
    file_offset_ += static_cast<uint64_t>(got);
    file_left_ -= static_cast<uint64_t>(got);
    body_bytes_ += static_cast<uint64_t>(got);
    uv_buf_t buf = uv_buf_init(piece.data(), static_cast<unsigned int>(got));
    send(&buf, 1);
    if (backlog() == 0) continue;  // the kernel took it after all
    waiting_for_drain_ = true;
    return;
  }
  if (!busy_ || closing_) return;
  file_fd_ = -1;
  bool keep_alive = plan_.keep_alive;
  if (plan_.framing == http::Framing::kContentLength && body_bytes_ < plan_.length) {
    log::error_log().error("Response to " + parser_.request().target + " ended after " +
                           std::to_string(body_bytes_) + " of " + std::to_string(plan_.length) +
                           " bytes its Content-Length promised; closing the connection");
    keep_alive = false;
  }
  if (static_) {
    static_file_.reset();
    finish_request(keep_alive);
    return;
  }
  worker_.hold_gil();
  exchange_->close();  // the wrapper's close() closes the file
  finish_request(keep_alive);
}

bool Connection::must_close_after_response() const {
  // With --keep-alive 0 a connection left open would be closed by the next
  // idle sweep, possibly as a proxy's pool sends its next request on it
  // (test_keep_alive_0_closes_after_each_response_and_says_so).
  return peer_eof_ || worker_.stopping() || worker_.config().keepalive == 0;
}

bool Connection::plan_head(std::string_view first_chunk, bool last) {
  uint64_t known = first_chunk.size();
  // An empty body in answer to HEAD says nothing of the GET body's
  // length: frameworks (Werkzeug) leave it out themselves, and a
  // "Content-Length: 0" would tell clients and caches the resource is
  // empty. A non-empty one is the GET body, so its length stands.
  // (test_head_answered_with_an_empty_body_claims_no_length)
  bool length_known = (last || exchange_->body_is_single_chunk()) &&
                      !(is_head_request_ && first_chunk.empty());
  try {
    plan_ = http::plan_response(parser_.request(), exchange_->status(), exchange_->headers(),
                                is_head_request_, length_known ? &known : nullptr,
                                must_close_after_response());
  } catch (const std::invalid_argument& e) {
    log::error_log().error("Error handling request " + parser_.request().method + " " + parser_.request().target + ": " +
                           e.what());
    send_error_response(kInternalErrorBody);
    return false;
  }
  head_.clear();
  http::append_response_head(head_, parser_.request(), exchange_->status(),
                             exchange_->headers(), plan_, worker_.http_date());
  exchange_->mark_headers_sent();
  head_sent_ = true;
  head_unwritten_ = true;
  return true;
}

std::string_view Connection::fit_chunk(std::string_view chunk) {
  if (plan_.framing == http::Framing::kContentLength) {
    uint64_t room = plan_.length - body_bytes_;
    if (chunk.size() > room) {
      log::error_log().error("Response to " + parser_.request().target +
                             " is longer than its Content-Length; truncated and closing");
      chunk = chunk.substr(0, room);
      plan_.keep_alive = false;
    }
  }
  body_bytes_ += chunk.size();
  return chunk;
}

void Connection::send_head_and_chunk(std::string_view chunk, bool last) {
  uv_buf_t bufs[4];
  unsigned int count = 0;
  if (!head_sent_ && !plan_head(chunk, last)) return;
  if (head_unwritten_) {
    head_unwritten_ = false;
    bufs[count++] = buf_of(head_);
  }
  char chunk_header[24];
  if (!chunk.empty() && plan_.body_allowed) {
    chunk = fit_chunk(chunk);
    bool chunked = plan_.framing == http::Framing::kChunked;
    if (chunked) {
      size_t n = http::format_chunk_header(chunk.size(), chunk_header);
      bufs[count++] = buf_of(std::string_view(chunk_header, n));
    }
    if (chunk.size() > kMaxBufBytes) {
      // Past what one uv_buf_t can say (its length is 32 bits): in pieces.
      std::vector<uv_buf_t> pieces(bufs, bufs + count);
      for (size_t at = 0; at < chunk.size(); at += kMaxBufBytes) {
        pieces.push_back(buf_of(chunk.substr(at, kMaxBufBytes)));
      }
      if (chunked) pieces.push_back(buf_of("\r\n"));
      send(pieces.data(), static_cast<unsigned int>(pieces.size()));
      return;
    }
    bufs[count++] = buf_of(chunk);
    if (chunked) bufs[count++] = buf_of("\r\n");
  }
  if (count > 0) send(bufs, count);
}

void Connection::send_error_response(std::string_view body) {
  // Only before the head went out. The connection closes after it: the app
  // may have left its state half-done.
  worker_.counters().app_exceptions.inc();
  http::HeaderList headers = {{"Content-Type", "text/html"}};
  http::ResponsePlan plan;
  plan.status_code = 500;
  plan.has_length = true;
  plan.length = body.size();
  plan.keep_alive = false;
  plan.framing = is_head_request_ ? http::Framing::kNoBody : http::Framing::kContentLength;
  plan.body_allowed = !is_head_request_;
  plan_ = plan;
  head_.clear();
  http::append_response_head(head_, parser_.request(), "500 Internal Server Error", headers, plan,
                             worker_.http_date());
  head_sent_ = true;
  uv_buf_t bufs[2] = {buf_of(head_), buf_of(body)};
  send(bufs, plan.body_allowed ? 2 : 1);
  if (plan.body_allowed) body_bytes_ = body.size();
  if (exchange_) exchange_->close();
  finish_request(false);
}

void Connection::finish_request(bool keep_alive) {
  http::Request& request = parser_.request();
  uint64_t duration_us = uv_hrtime() / 1000 - started_us_;
  log::AccessLog& access = worker_.access_log();
  if (access.enabled()) {
    log::AccessRecord r;
    r.remote_addr = peer_.remote_addr;
    r.method = request.method;
    r.raw_uri = request.target;
    r.path = request.path();
    r.query = request.query();
    r.protocol = request.protocol;
    r.status = plan_.status_code;
    r.response_bytes = body_bytes_;
    r.started = started_wall_;
    r.duration_s = static_cast<double>(duration_us) / 1e6;
    r.request_headers = &request.headers;
    http::HeaderList none;
    r.response_headers = static_ ? &static_headers_ : exchange_ ? &exchange_->headers() : &none;
    r.static_file = static_;
    std::vector<std::pair<std::string, std::string>> environ_values;
    if (exchange_ && !access.environ_keys().empty()) {
      std::string value;
      for (const std::string& key : access.environ_keys()) {
        if (exchange_->environ_text(key, &value)) environ_values.emplace_back(key, value);
      }
      r.environ_values = &environ_values;
    }
    access.log(r);
  }
  // Counted right after the access-log line is written (a worker killed
  // between the two is the only way they can differ, by one): /metrics
  // and the access log agree request for request.
  metrics::WorkerCounters& counters = worker_.counters();
  size_t status_class = metrics::status_class_index(plan_.status_code);
  counters.requests[metrics::method_index(request.method)][status_class].inc();
  if (static_) counters.static_requests[status_class].inc();
  counters.duration_buckets[worker_.duration_bucket(duration_us)].inc();
  counters.duration_sum_us.add(duration_us);
  exchange_.reset();  // the caller holds the GIL
  static_ = false;
  static_file_.reset();
  static_headers_.clear();
  if (base::Heartbeat* hb = worker_.heartbeat()) hb->clear_request();
  busy_ = false;
  waiting_for_drain_ = false;
  // RFC 9112 section 9.6: a client that asked to close sends nothing more
  // (on_data notes one that does).
  client_closes_ = request.close_requested;
  if (parser_.in_request()) {
    // A streamed body the app did not read to its end (it answered first):
    // as gunicorn, the rest is read and dropped before the next request.
    end_body(base::BodyChannel::Failure::kError, "the response ended before the request body");
    if (peer_eof_) keep_alive = false;  // nothing more can come
    draining_body_ = keep_alive;
    if (draining_body_) start_reading();
  } else {
    parser_.next();
  }
  last_activity_ms_ = uv_now(worker_.loop());
  answered_ = true;
  worker_.request_done();
  if (!keep_alive) {
    log::error_log().debug("Closing connection.");  // gunicorn's gthread worker
    close_after_writes();
  }
}

void Connection::reject(http::ParseError error) {
  worker_.counters().parse_errors[static_cast<size_t>(error)].inc();
  client_closes_ = false;  // refused, not asked for: the client may still be sending
  // gunicorn's handle_error: a bad request is a WARNING (a bad uwsgi
  // packet, from a misconfigured front-end, too).
  log::error_log().warning("Invalid request from ip=" + peer_.remote_addr + ": " +
                           parser_.error_reason());
  std::string_view response = http::canned_response(error);
  uv_buf_t buf = buf_of(response);
  send(&buf, 1);
  close_after_writes();
}

int Connection::try_write(const uv_buf_t* bufs, unsigned int count) {
  int rc = uv_try_write(&h_.stream, bufs, count);
  return rc == UV_EAGAIN || rc == UV_ENOSYS ? 0 : rc;
}

void Connection::send(const uv_buf_t* bufs, unsigned int count) {
  if (!tls_) {
    send_raw(bufs, count);
    return;
  }
  if (closing_) return;
  // One TLS record for the pieces of one response write (head, chunk
  // header, chunk, CRLF) rather than one each.
  size_t total = 0;
  for (unsigned int i = 0; i < count; ++i) total += bufs[i].len;
  if (count > 1 && total <= kCorkBytes) {
    std::string joined;
    joined.reserve(total);
    for (unsigned int i = 0; i < count; ++i) joined.append(bufs[i].base, bufs[i].len);
    tls_->write(joined);
  } else {
    for (unsigned int i = 0; i < count; ++i) tls_->write(std::string_view(bufs[i].base, bufs[i].len));
  }
  flush_tls_output();
}

void Connection::send_raw(const uv_buf_t* bufs, unsigned int count) {
  if (closing_) return;
  size_t total = 0;
  for (unsigned int i = 0; i < count; ++i) total += bufs[i].len;
  worker_.counters().bytes_out.add(total);
  if (worker_.corking() && inflight_.empty() && queued_.size() + total <= kCorkBytes) {
    for (unsigned int i = 0; i < count; ++i) queued_.append(bufs[i].base, bufs[i].len);
    if (!corked_) {
      corked_ = true;
      worker_.cork(this);
    }
    return;
  }
  size_t written = 0;
  if (backlog() == 0) {
    int rc = try_write(bufs, count);
    if (rc < 0) {
      close();  // the peer is gone
      return;
    }
    written = static_cast<size_t>(rc);
  }
  if (written == total) return;
  for (unsigned int i = 0; i < count; ++i) {
    size_t len = bufs[i].len;
    if (written >= len) {
      written -= len;
      continue;
    }
    queued_.append(bufs[i].base + written, len - written);
    written = 0;
  }
  flush_queue();
}

void Connection::flush_queue() {
  if (!inflight_.empty() || queued_.empty() || closing_) return;
  inflight_.swap(queued_);
  uv_buf_t buf = buf_of(inflight_);
  write_req_.data = this;
  if (uv_write(&write_req_, &h_.stream, &buf, 1, on_write) != 0) {
    inflight_.clear();
    close();
  }
}

void Connection::on_write(uv_write_t* req, int status) {
  auto* c = static_cast<Connection*>(req->data);
  if (status < 0) {
    c->inflight_.clear();
    c->close();
    return;
  }
  c->inflight_.clear();
  c->guarded([c] {
    c->flush_queue();
    c->on_drained();
  });
}

void Connection::flush_cork() {
  corked_ = false;
  // A uv_write under way (the cork overflowed): on_write carries on.
  if (closing_ || !inflight_.empty() || queued_.empty()) return;
  uv_buf_t buf = buf_of(queued_);
  int rc = try_write(&buf, 1);
  if (rc < 0) {
    close();  // the peer is gone
    return;
  }
  queued_.erase(0, static_cast<size_t>(rc));
  if (!queued_.empty()) {
    flush_queue();  // on_write carries on
    return;
  }
  on_drained();
}

void Connection::continue_after_flush() {
  guarded([this] { continue_after_flushed_cork(); });
}

void Connection::continue_after_flushed_cork() {
  if (!continue_after_flush_) return;
  continue_after_flush_ = false;
  if (closing_) return;
  if (busy_) {
    if (waiting_for_drain_) return;  // on_write carries on
    pump();
    if (busy_) return;
  }
  resume_after_response();
}

void Connection::on_drained() {
  if (waiting_for_drain_ && backlog() < kLowWater) {
    waiting_for_drain_ = false;
    pump();
    if (!busy_) resume_after_response();
  }
  if (close_when_flushed_ && backlog() == 0) start_lingering_close();
}

void Connection::close_after_writes() {
  if (tls_ && !close_when_flushed_) {
    tls_->shutdown();  // close_notify behind the response
    flush_tls_output();
  }
  close_when_flushed_ = true;
  if (backlog() == 0) start_lingering_close();
}

void Connection::start_lingering_close() {
  if (lingering_ || closing_) return;
  if (client_closes_ && pending_input_.empty()) {
    // Nothing is left unread that could turn the close into a reset, and a
    // client that said "close" sends no more: a plain close sends the FIN
    // behind the response (three syscalls fewer than shutdown, read to the
    // client's FIN, close).
    close();
    return;
  }
  lingering_ = true;
  last_activity_ms_ = uv_now(worker_.loop());
  // Half-close, then read and drop what the client still sends: closing a
  // socket with unread input makes the kernel send RST, which can destroy
  // the response before the client reads it.
  shutdown_req_.data = this;
  if (uv_shutdown(&shutdown_req_, &h_.stream, on_shutdown) != 0) {
    close();
    return;
  }
  if (peer_eof_) return;  // closed in on_shutdown
  if (!reading_ && uv_read_start(&h_.stream, on_alloc, on_read) == 0) reading_ = true;
}

void Connection::on_shutdown(uv_shutdown_t* req, int status) {
  auto* c = static_cast<Connection*>(req->data);
  if (status < 0 || c->peer_eof_) c->close();
}

void Connection::close() {
  if (closing_) return;
  if (corked_ && initialised_ && inflight_.empty() && !queued_.empty()) {
    // What was corked had been "sent" as far as the response is concerned
    // (a body cut short mid-way keeps its first chunks): hand it to the
    // kernel before the socket goes, as an uncorked send would have.
    uv_buf_t buf = buf_of(queued_);
    (void)try_write(&buf, 1);
  }
  closing_ = true;
  file_fd_ = -1;  // closed by the exchange's close(), or with static_file_
  static_file_.reset();
  batch_.clear();  // its chunks go with the exchange
  head_unwritten_ = false;
  // First, so that an app waiting for body bytes wakes up (with an error).
  end_body(base::BodyChannel::Failure::kError,
           "the connection closed before the end of the request body");
  if (static_ && busy_) {
    // A static file cut short by the client: started, never answered (nor
    // logged), as an app request the client leaves.
    worker_.counters().requests_abandoned.inc();
  }
  if (exchange_) {
    worker_.counters().requests_abandoned.inc();  // started, never answered
    worker_.hold_gil();
    exchange_->close();
    exchange_.reset();
    busy_ = false;
  }
  if (initialised_) {
    uv_close(&h_.handle, on_closed);
  } else {
    worker_.connection_closed(this);
  }
}

void Connection::on_closed(uv_handle_t* h) {
  auto* c = static_cast<Connection*>(h->data);
  c->worker_.connection_closed(c);  // destroys c
}

bool Connection::idle() const {
  // A connection not answered yet is a client on its way: its request is
  // likely in the socket already, unread only because it was accepted in
  // this loop iteration (at --worker-connections, a burst of new clients
  // would otherwise close each other's connections before their first
  // request). The slowloris deadlines end those that send nothing.
  return answered_ && !closing_ && !busy_ && !lingering_ && !close_when_flushed_ && pending_input_.empty() &&
         backlog() == 0 && !parser_.in_request() && (!tls_ || tls_->established());
}

void Connection::sweep(uint64_t now_ms, uint64_t keepalive_ms) {
  if (closing_) return;
  uint64_t idle = now_ms - last_activity_ms_;
  if (lingering_) {
    if (idle > kLingerMs) close();
    return;
  }
  uint64_t timeout_ms = worker_.config().timeout > 0
                            ? static_cast<uint64_t>(worker_.config().timeout) * 1000
                            : kDefaultRequestTimeoutMs;
  // A client that stops reading: the bytes libuv holds for it have not
  // shrunk for a whole timeout.
  size_t queued = uv_stream_get_write_queue_size(&h_.stream);
  if (queued == 0 || write_queue_seen_ == 0 || queued < write_queue_seen_) write_progress_ms_ = now_ms;
  write_queue_seen_ = queued;
  if (queued > 0 && now_ms - write_progress_ms_ > timeout_ms) {
    log::error_log().debug("Closing a connection from " + peer_.remote_addr +
                           " that read nothing for " + std::to_string(timeout_ms / 1000) + " s");
    close();
    return;
  }
  if (tls_ && !tls_->established()) {
    // The handshake, like a request head, must finish within the timeout
    // however its bytes trickle (a silent client goes at keep-alive, below).
    if (now_ms - accepted_ms_ > timeout_ms) {
      log::error_log().debug("TLS handshake from " + peer_.remote_addr + " timed out");
      close();
      return;
    }
  }
  if (body_ && reading_ && idle > timeout_ms) {
    // The app waits for body bytes that do not come (time spent while the
    // app is behind, with reading stopped, is not the client's).
    log::error_log().debug("No request body bytes from " + peer_.remote_addr + " for " +
                           std::to_string(timeout_ms / 1000) + " s; closing");
    end_body(base::BodyChannel::Failure::kTimedOut,
             "no request body bytes for " + std::to_string(timeout_ms / 1000) + " s");
    close();
    return;
  }
  if (busy_) return;
  if (draining_body_) {
    if (idle > timeout_ms) close();  // answered already: nothing more to say
    return;
  }
  if (parser_.reading_head()) {
    // The whole head must arrive within the timeout, however it trickles.
    if (now_ms - head_started_ms_ > timeout_ms) reject(http::ParseError::kRequestTimeout);
    return;
  }
  if (parser_.in_request()) {
    if (idle > timeout_ms) reject(http::ParseError::kRequestTimeout);
    return;
  }
  // With --keep-alive 0 every response closes its connection, so the only
  // wait left here is a new connection's for its first request: it gets the
  // request timeout, as under gunicorn's sync worker. Closing it at the
  // next sweep would reset connections whose request is already in the
  // socket (test_keep_alive_0_still_waits_for_a_first_request).
  uint64_t idle_limit = keepalive_ms > 0 ? keepalive_ms : timeout_ms;
  if (backlog() == 0 && pending_input_.empty() && idle >= idle_limit) close();
}

}  // namespace cppgunicorn::worker
