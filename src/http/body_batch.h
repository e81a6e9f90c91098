// Response body chunks gathered into one write. A streamed body (a
// generator's chunks, no Content-Length) written chunk by chunk costs one
// writev, and on a fast link one TCP push and one wake-up of the client,
// per chunk; gathered, N chunks cost one. The batch only holds views: the
// caller keeps the chunks alive until the batch is written.
//
// The rule (docs/http.md, "Streamed responses"): a chunk joins the batch
// when it is bulk data (kMinChunk or more) or when the batch already holds
// some, and the batch is written
//   * when the next chunk would take it past kMaxBytes,
//   * when the body ends (with the last chunk, in the same write),
//   * when the app has nothing ready (a pool thread or greenlet has not
//     produced the next chunk yet; the loop writes what it has), and
//   * when the app, asked for the next chunk on the loop thread, has not
//     returned within a stall time: worker::StallFlusher writes it then.
// Smaller chunks (the events of an event stream) are written one by one,
// as before: each goes out before the app is asked for the next, and its
// boundaries stay where the app put them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "http/response_head.h"

namespace cppgunicorn::http {

class BodyBatch {
 public:
  // Below this a chunk is an event, written on its own (corked with what
  // the loop iteration writes); from this size on it is bulk data.
  static constexpr size_t kMinChunk = 16 * 1024;
  // A batch is written once it holds this much.
  static constexpr size_t kMaxBytes = 1024 * 1024;

  // Whether a chunk of `size` bytes joins the batch.
  bool takes(size_t size) const { return size > 0 && (size >= kMinChunk || !data_.empty()); }
  void add(std::string_view data) {
    data_.push_back(data);
    bytes_ += data.size();
  }
  // Adding `size` more would take the batch past kMaxBytes: write it
  // first. (Checked before adding, so that the last batch of a body goes
  // out with its end in one write.)
  bool full_before(size_t size) const { return !data_.empty() && bytes_ + size > kMaxBytes; }
  bool empty() const { return data_.empty(); }
  size_t bytes() const { return bytes_; }
  size_t chunks() const { return data_.size(); }

  // The pieces of one write, in order: `head` when not empty, the batch as
  // one body chunk framed for `framing` (chunked: one size line for all of
  // it and one CRLF), then the last chunk when `last` and chunked. The
  // views stay valid until the next frame() or clear() (the size line
  // lives in the batch).
  void frame(Framing framing, std::string_view head, bool last,
             std::vector<std::string_view>* out);
  void clear() {
    data_.clear();
    bytes_ = 0;
  }

 private:
  std::vector<std::string_view> data_;
  size_t bytes_ = 0;
  char size_line_[24] = {};
};

}  // namespace cppgunicorn::http
