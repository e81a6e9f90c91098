#include "http/body_batch.h"

#include <doctest/doctest.h>

#include <string>

using namespace cppgunicorn::http;

namespace {
std::string joined(const std::vector<std::string_view>& pieces) {
  std::string out;
  for (std::string_view p : pieces) out += p;
  return out;
}
}  // namespace

TEST_CASE("batch: small chunks are events, written on their own; bulk chunks are gathered") {
  BodyBatch batch;
  CHECK_FALSE(batch.takes(100));
  CHECK_FALSE(batch.takes(BodyBatch::kMinChunk - 1));
  CHECK(batch.takes(BodyBatch::kMinChunk));
  CHECK_FALSE(batch.takes(0));
}

TEST_CASE("once the batch holds bulk data, any chunk joins it, until it is full") {
  BodyBatch batch;
  std::string bulk(BodyBatch::kMinChunk, 'b');
  batch.add(bulk);
  CHECK(batch.takes(3));
  std::string big(BodyBatch::kMaxBytes - bulk.size(), 'c');
  CHECK_FALSE(batch.full_before(big.size()));
  batch.add(big);
  CHECK(batch.full_before(1));
  CHECK_FALSE(BodyBatch().full_before(BodyBatch::kMaxBytes + 1));
  CHECK(batch.chunks() == 2);
  CHECK(batch.bytes() == BodyBatch::kMaxBytes);
}

TEST_CASE("a chunked batch is one chunk: one size line, the data, one CRLF, then the last chunk") {
  BodyBatch batch;
  batch.add("hello ");
  batch.add("world");
  std::vector<std::string_view> pieces;
  batch.frame(Framing::kChunked, "HEAD\r\n\r\n", false, &pieces);
  CHECK(joined(pieces) == "HEAD\r\n\r\nb\r\nhello world\r\n");
  batch.frame(Framing::kChunked, "", true, &pieces);
  CHECK(joined(pieces) == "b\r\nhello world\r\n0\r\n\r\n");
  batch.clear();
  batch.frame(Framing::kChunked, "", true, &pieces);
  CHECK(joined(pieces) == "0\r\n\r\n");
}

TEST_CASE("a Content-Length or close-delimited batch is the data as it is") {
  BodyBatch batch;
  batch.add("abc");
  batch.add("def");
  std::vector<std::string_view> pieces;
  batch.frame(Framing::kContentLength, "H", true, &pieces);
  CHECK(joined(pieces) == "Habcdef");
  batch.frame(Framing::kCloseDelimited, "", true, &pieces);
  CHECK(joined(pieces) == "abcdef");
  batch.frame(Framing::kNoBody, "H", true, &pieces);
  CHECK(joined(pieces) == "H");
}
