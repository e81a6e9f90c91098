// One client connection in a worker: bytes from the socket go to the HTTP
// parser; each complete request becomes a WSGI exchange whose response is
// pulled chunk by chunk and written back, in order, one request at a time.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/unique_fd.h"
#include "http/body_batch.h"
#include "http/parser.h"
#include "net/listener.h"
#include "net/tls.h"
#include "http/response_head.h"
#include "wsgi/environ.h"
#include "wsgi/response_source.h"

namespace cppgunicorn::wsgi {
class Exchange;
class ResponseSource;
}

namespace cppgunicorn::worker {

class Worker;

class Connection {
 public:
  explicit Connection(Worker& worker);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Takes `fd`, a client the worker accepted from `listener` (`peer`: the
  // address accept4 gave), and starts reading. False: the socket could not
  // be set up (closed already); the caller then closes us.
  bool adopt(int fd, const sockaddr_storage& peer, const net::ListenSocket& listener);

  // Closes now; the Worker frees us in the close callback.
  void close();
  // The periodic sweep: idle keep-alive and lingering-close deadlines.
  void sweep(uint64_t now_ms, uint64_t keepalive_ms);
  bool closing() const { return closing_; }
  // Between requests (after one was answered) with nothing in flight
  // either way: what a worker at --worker-connections may close to make
  // room (nginx does the same).
  bool idle() const;
  uint64_t last_activity_ms() const { return last_activity_ms_; }
  // Writes what send() held back while the worker was corking.
  void flush_cork();
  // Then, once every connection's cork is flushed: the response or the
  // pipelined requests that stopped to let corked bytes out go on.
  void continue_after_flush();

 private:
  // Runs `body` from a libuv callback: an exception closes this connection.
  template <typename F>
  void guarded(F&& body);
  void continue_after_flushed_cork();

  // Reads what a just-accepted client has sent already, without waiting
  // for the loop to poll its socket.
  void read_at_once();
  static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);
  static void on_write(uv_write_t* req, int status);
  static void on_shutdown(uv_shutdown_t* req, int status);
  static void on_closed(uv_handle_t* h);

  void on_data(const char* data, size_t n);
  // TLS: bytes from the socket, decrypted into on_data.
  void on_tls_data(const char* data, size_t n);
  // Sends the ciphertext the TLS session produced (handshake, alerts).
  void flush_tls_output();
  void on_eof();
  // Parses and serves requests from `data` until it is used up or a response
  // has to wait for the socket; what is left is kept in pending_input_.
  void consume(const char* data, size_t n);
  void resume_after_response();
  // Moves a large request body from memory to a temporary file; false when
  // that failed and the connection was closed.
  bool spool_body();

  // --no-request-buffering (connection_body.cpp): the request goes to the
  // app once its head is read, and its body follows through a
  // base::BodyChannel as the parser decodes it.
  bool streams_bodies() const;
  // What consume() does after the parser took a piece of a request.
  enum class StreamStep {
    kStop,         // return: the rest of the input was kept for later
    kWait,         // everything was used; wait for more input
    kNextRequest,  // a drained body ended: parse the next request
    kServe,        // a request that arrived whole: serve it as usual
  };
  StreamStep on_streamed_body(http::Parser::Status status, const char* data, size_t n);
  void start_streamed_request();
  // Hands the bytes the parser decoded to the app; stops reading when it
  // is that far behind.
  void forward_body();
  // The app took enough: reading goes on (loop thread, from the pool's wake).
  void resume_body_reading();
  // The body ended early (parse error, EOF, close, timeout): the app's read
  // learns why.
  void end_body(base::BodyChannel::Failure failure, const std::string& why);
  // A parse error in a body the app is reading.
  void reject_streamed_body(http::ParseError error);
  void start_reading();
  void start_request();
  // --static-map (connection_static.cpp): answers the request from a
  // static mount when it is under one; false leaves it to the app.
  bool serve_static();
  // Sends a static file's bytes by reading them (TLS, --no-sendfile).
  void send_file_by_reading();
  // Pulls body chunks and writes them until the body ends or the socket
  // pushes back. Holds the GIL while it runs.
  void pump();
  // Asks the response for its next chunk. While chunks are gathered and
  // the app runs on this thread, the worker's StallFlusher watches the
  // call: a batch it wrote meanwhile is accounted for here.
  wsgi::ResponseSource::Next pull(std::string_view* chunk);
  // Whether `chunk` joins the batch rather than going out on its own.
  bool gathers(std::string_view chunk) const;
  void hold(std::string_view chunk);
  // Writes the head (if not written yet), the gathered chunks and, when
  // `last`, the end of a chunked body, in one write.
  void write_batch(bool last);
  // Fixes the framing from the status, headers and what is known of the
  // body; the head goes out with the next write. False: it was refused
  // and a 500 went out instead.
  bool plan_head(std::string_view first_chunk, bool last);
  // `chunk` cut to the room Content-Length leaves; counted as sent.
  std::string_view fit_chunk(std::string_view chunk);
  void send_head_and_chunk(std::string_view chunk, bool last);
  // wsgi.file_wrapper over a regular file: the head with its size, then
  // sendfile(2) while the socket takes it. Needs the GIL.
  bool start_file_body();
  void send_file();
  void send_error_response(std::string_view response);
  void finish_request(bool keep_alive);
  // This response ends the connection whatever the request asked: the
  // client half-closed, the worker is stopping, or --keep-alive 0 turned
  // persistent connections off (as in gunicorn).
  bool must_close_after_response() const;
  void reject(http::ParseError error);

  // Response bytes: encrypted first on a TLS connection, then send_raw.
  void send(const uv_buf_t* bufs, unsigned int count);
  // Bytes as they go on the wire: written with uv_try_write; whatever the
  // kernel does not take is copied and queued behind one uv_write at a time.
  void send_raw(const uv_buf_t* bufs, unsigned int count);
  // uv_try_write: the bytes the kernel took (0 when it took none), or a
  // negative error when the peer is gone.
  int try_write(const uv_buf_t* bufs, unsigned int count);
  size_t backlog() const { return inflight_.size() + queued_.size(); }
  void flush_queue();
  // The output got below the low-water mark or empty: the response waiting
  // on it continues, a close waiting for it begins.
  void on_drained();
  void close_after_writes();
  void start_lingering_close();

  Worker& worker_;
  union {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } h_;
  bool initialised_ = false;
  bool closing_ = false;
  bool reading_ = false;
  bool peer_eof_ = false;
  bool close_when_flushed_ = false;
  bool lingering_ = false;
  bool busy_ = false;            // a request is being served
  bool answered_ = false;        // a response was completed on this connection
  bool waiting_for_drain_ = false;
  bool continue_sent_ = false;   // "100 Continue" went out for this request
  bool corked_ = false;          // queued_ holds bytes for the worker's cork flush
  bool continue_after_flush_ = false;
  bool client_closes_ = false;   // the last request asked to close, and nothing followed it

  // TLS (--certfile): the session, and the plaintext of the last read.
  std::unique_ptr<net::TlsSession> tls_;
  std::string tls_plain_;
  bool tls_first_read_ = true;
  uint64_t accepted_ms_ = 0;  // the TLS handshake deadline runs from here

  http::Parser parser_;
  std::string pending_input_;   // bytes read but not yet parsed
  wsgi::PeerInfo peer_;
  bool peer_trusted_ = false;  // forwarded_allow_ips, decided once per connection
  uint64_t last_activity_ms_ = 0;
  uint64_t head_started_ms_ = 0;    // first byte of the request being read
  uint64_t write_progress_ms_ = 0;  // last time the write queue shrank
  size_t write_queue_seen_ = 0;

  // The request being served.
  std::unique_ptr<wsgi::ResponseSource> exchange_;  // a wsgi::Exchange, or a pool thread's
  http::ResponsePlan plan_;
  bool head_sent_ = false;     // the head is fixed (planned, perhaps not written yet)
  bool head_unwritten_ = false;  // head_ goes out with the next body write
  // A streamed body's chunks gathered for one write; the response source
  // keeps them alive until it is written (http::BodyBatch has the rule).
  http::BodyBatch batch_;
  std::vector<std::string_view> batch_pieces_;
  std::vector<uv_buf_t> batch_bufs_;
  bool is_head_request_ = false;
  uint64_t body_bytes_ = 0;
  int file_fd_ = -1;             // a file body being sent (the app's wrapper's, or static_file_)
  // A static response (serve_static): its file, and its headers for the
  // access log.
  bool static_ = false;
  base::UniqueFd static_file_;
  http::HeaderList static_headers_;
  uint64_t file_offset_ = 0;
  uint64_t file_left_ = 0;
  std::string head_;
  uint64_t started_us_ = 0;
  // A streamed body still arriving, while the app may read it; then, once
  // the response is finished, the rest of it is read and dropped
  // (draining_body_) before the next request on the connection.
  std::shared_ptr<base::BodyChannel> body_;
  bool draining_body_ = false;
  std::time_t started_wall_ = 0;

  // Output: bytes in the one uv_write under way, and bytes queued behind it.
  uv_write_t write_req_{};
  uv_shutdown_t shutdown_req_{};
  std::string inflight_;
  std::string queued_;
};

}  // namespace cppgunicorn::worker
