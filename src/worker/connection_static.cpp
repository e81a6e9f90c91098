// Static files (--static-map): the answer comes from static_files::StaticFiles
// (no Python, no GIL); this writes it, the file's bytes by sendfile(2) as
// for a wsgi.file_wrapper, or read and sent through the TLS session.
#include <unistd.h>

#include <algorithm>

#include "log/logger.h"
#include "static_files/static_files.h"
#include "worker/connection.h"
#include "worker/worker.h"

namespace cppgunicorn::worker {

namespace {
// A file up to this size goes out with its head in one write (read, not
// sendfile'd): one syscall fewer, and the pair is corked like any small
// response.
constexpr uint64_t kInlineFileBytes = 16 * 1024;
// Pieces read for TLS, and how much may wait for the socket before the
// next is read.
constexpr size_t kReadPieceBytes = 64 * 1024;
constexpr size_t kReadAheadBytes = 256 * 1024;

uv_buf_t buf_of(std::string_view s) {
  return uv_buf_init(const_cast<char*>(s.data()), static_cast<unsigned int>(s.size()));
}
}  // namespace

bool Connection::serve_static() {
  const static_files::StaticFiles* files = worker_.static_files();
  if (files == nullptr) return false;
  http::Request& request = parser_.request();
  static_files::Answer answer = files->answer(request);
  if (answer.kind != static_files::Answer::Kind::kRespond) return false;
  static_ = true;
  // In flight until finish_request, as an app's request (requests_total
  // counts it there): the master's in-flight gauge is started - answered.
  worker_.counters().requests_started.inc();
  static_headers_ = std::move(answer.headers);
  uint64_t length = answer.length;
  plan_ = http::plan_response(request, answer.status, static_headers_, is_head_request_, &length,
                              must_close_after_response() || answer.close_connection);
  head_.clear();
  http::append_response_head(head_, request, answer.status, static_headers_, plan_,
                             worker_.http_date());
  head_sent_ = true;
  if (!answer.file || !plan_.body_allowed || answer.length == 0) {
    if (plan_.body_allowed && !answer.body.empty()) {
      head_.append(answer.body);
      body_bytes_ = answer.body.size();
    }
    uv_buf_t buf = buf_of(head_);
    send(&buf, 1);
    finish_request(plan_.keep_alive);
    return true;
  }
  if (answer.length <= kInlineFileBytes) {
    size_t head_size = head_.size();
    head_.resize(head_size + answer.length);
    ssize_t got = ::pread(answer.file.get(), head_.data() + head_size, answer.length,
                          static_cast<off_t>(answer.offset));
    if (got < 0) got = 0;
    // Shorter than fstat said (it shrank since): sent short, and the
    // connection closes, as the Content-Length promised more.
    head_.resize(head_size + static_cast<size_t>(got));
    body_bytes_ = static_cast<uint64_t>(got);
    uv_buf_t buf = buf_of(head_);
    send(&buf, 1);
    bool complete = body_bytes_ == answer.length;
    if (!complete) {
      log::error_log().error("Static file for " + request.target + " ended after " +
                             std::to_string(body_bytes_) + " of " + std::to_string(answer.length) +
                             " bytes its Content-Length promised; closing the connection");
    }
    finish_request(plan_.keep_alive && complete);
    return true;
  }
  uv_buf_t buf = buf_of(head_);
  send(&buf, 1);
  static_file_ = std::move(answer.file);
  file_fd_ = static_file_.get();
  file_offset_ = answer.offset;
  file_left_ = answer.length;
  send_file();
  return true;
}

void Connection::send_file_by_reading() {
  while (busy_ && !closing_ && file_left_ > 0) {
    if (backlog() >= kReadAheadBytes) {
      // on_drained calls pump() (and so this) below the low-water mark.
      waiting_for_drain_ = true;
      return;
    }
    std::string piece(static_cast<size_t>(std::min<uint64_t>(file_left_, kReadPieceBytes)), '\0');
    ssize_t got = ::pread(file_fd_, piece.data(), piece.size(), static_cast<off_t>(file_offset_));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;  // the file is shorter than it was: finish short
    file_offset_ += static_cast<uint64_t>(got);
    file_left_ -= static_cast<uint64_t>(got);
    body_bytes_ += static_cast<uint64_t>(got);
    uv_buf_t buf = uv_buf_init(piece.data(), static_cast<unsigned int>(got));
    send(&buf, 1);
  }
  if (!busy_ || closing_) return;
  file_fd_ = -1;
  static_file_.reset();
  bool keep_alive = plan_.keep_alive;
  if (body_bytes_ < plan_.length) {
    log::error_log().error("Static file for " + parser_.request().target + " ended after " +
                           std::to_string(body_bytes_) + " of " + std::to_string(plan_.length) +
                           " bytes its Content-Length promised; closing the connection");
    keep_alive = false;
  }
  finish_request(keep_alive);
}

}  // namespace cppgunicorn::worker
