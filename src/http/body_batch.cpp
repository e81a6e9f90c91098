#include "http/body_batch.h"

namespace cppgunicorn::http {

void BodyBatch::frame(Framing framing, std::string_view head, bool last,
                      std::vector<std::string_view>* out) {
  out->clear();
  if (!head.empty()) out->push_back(head);
  bool chunked = framing == Framing::kChunked;
  if (!data_.empty() && framing != Framing::kNoBody) {
    if (chunked) {
      // RFC 9112 section 7.1: chunk boundaries carry no meaning, so the
      // app's chunks may go out as one.
      out->emplace_back(size_line_, format_chunk_header(bytes_, size_line_));
    }
    out->insert(out->end(), data_.begin(), data_.end());
    if (chunked) out->emplace_back("\r\n");
  }
  if (last && chunked) out->push_back(kLastChunk);
}

}  // namespace cppgunicorn::http
