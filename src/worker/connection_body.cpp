// Request bodies streamed to the app as they arrive (--no-request-buffering).
//
// The request goes to a pool thread as soon as its head is parsed; the body
// bytes the parser decodes follow through a base::BodyChannel that the
// app's wsgi.input reads. The loop stops reading the socket while the app
// is more than a channel's limit behind and reads again when the pool says
// the app made room. A body the app does not read to its end is read and
// dropped once the response is finished, as gunicorn does; one that stops
// arriving for --timeout closes the connection (the app's read raises
// TimeoutError).
#include "log/logger.h"
#include "worker/connection.h"
#include "worker/worker.h"
#include "wsgi/response_source.h"

namespace cppgunicorn::worker {

namespace {
// The most body bytes waiting for the app before reading stops: what a
// buffered body keeps in memory before it is spooled to a file.
constexpr size_t kStreamedBodyLimit = 1024 * 1024;

uv_buf_t continue_buf() {
  static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
  return uv_buf_init(const_cast<char*>(kContinue.data()), static_cast<unsigned int>(kContinue.size()));
}
}  // namespace

bool Connection::streams_bodies() const { return !worker_.config().request_buffering; }

Connection::StreamStep Connection::on_streamed_body(http::Parser::Status status, const char* data,
                                                    size_t n) {
  using Status = http::Parser::Status;
  http::Request& request = parser_.request();
  if (draining_body_) {
    request.body.clear();
    if (status == Status::kNeedMore) return StreamStep::kWait;
    draining_body_ = false;
    parser_.next();
    return StreamStep::kNextRequest;
  }
  if (body_) {
    forward_body();
    if (status == Status::kNeedMore) return StreamStep::kWait;
    body_->finish();
    body_.reset();
    // The request is being served: what follows it waits, as pipelined
    // requests do.
    pending_input_.assign(data, n);
    return StreamStep::kStop;
  }
  if (status == Status::kRequestReady) return StreamStep::kServe;
  if (parser_.awaiting_body()) start_streamed_request();
  return StreamStep::kWait;
}

void Connection::start_streamed_request() {
  http::Request& request = parser_.request();
  body_ = std::make_shared<base::BodyChannel>(kStreamedBodyLimit);
  forward_body();
  request.body_stream = body_;
  if (request.expect_continue) {
    // As gunicorn: "100 Continue" goes out when the app is called (RFC 9110
    // section 10.1.1 lets a server send it before it reads the body).
    uv_buf_t buf = continue_buf();
    send(&buf, 1);
  }
  start_request();
  // Refused before the app was called (contradictory scheme headers).
  if (!busy_) end_body(base::BodyChannel::Failure::kError, "the request was refused");
}

void Connection::forward_body() {
  std::string& bytes = parser_.request().body;
  if (bytes.empty()) return;
  bool room = body_->push(bytes);
  bytes.clear();
  if (!room && reading_) {
    // The app is a channel's limit behind: the socket waits (TCP then
    // pushes back on the client) until it has taken half of it.
    uv_read_stop(&h_.stream);
    reading_ = false;
  }
}

void Connection::resume_body_reading() {
  if (!body_ || reading_ || peer_eof_ || closing_ || !body_->has_room()) return;
  start_reading();
  // The client was not idle while we did not read.
  last_activity_ms_ = uv_now(worker_.loop());
}

void Connection::start_reading() {
  if (reading_ || peer_eof_ || closing_) return;
  if (uv_read_start(&h_.stream, on_alloc, on_read) == 0) reading_ = true;
}

void Connection::end_body(base::BodyChannel::Failure failure, const std::string& why) {
  if (!body_) return;
  body_->fail(failure, why);
  body_.reset();
}

void Connection::reject_streamed_body(http::ParseError error) {
  log::error_log().debug("Invalid request body from " + peer_.remote_addr + ": " +
                         parser_.error_reason());
  end_body(base::BodyChannel::Failure::kError, "invalid request body: " + parser_.error_reason());
  if (busy_ && !head_sent_) {
    // The app has not answered yet: the client gets the refusal (413 past
    // limit_request_body, 400 for bad chunking) and the app's response,
    // whenever it comes, goes nowhere.
    exchange_->close();  // a pool's response: no GIL needed
    exchange_.reset();
    worker_.counters().requests_abandoned.inc();  // refused, never answered
    busy_ = false;
    reject(error);
    return;
  }
  close();  // answered already (or being answered): nothing else to say
}

}  // namespace cppgunicorn::worker
