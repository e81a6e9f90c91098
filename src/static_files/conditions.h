// The HTTP rules a file response follows, as pure functions of request
// fields and the file's validators: conditional requests (RFC 9110 section
// 13), ranges (section 14) and content coding (section 12.5.3).
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>

namespace cppgunicorn::static_files {

struct Validators {
  std::string etag;            // strong: "<mtime in ns, hex>-<size, hex>"
  std::time_t last_modified = 0;
};

Validators validators_of(const struct stat& st);

// The request fields that make a request conditional (empty: absent).
struct Conditions {
  std::string_view if_match;
  std::string_view if_none_match;
  std::string_view if_modified_since;
  std::string_view if_unmodified_since;
};

enum class Precondition {
  kProceed,      // serve the file (a Range may still apply)
  kNotModified,  // 304
  kFailed,       // 412
};

// RFC 9110 section 13.2.2's order: If-Match, else If-Unmodified-Since; then
// If-None-Match, else If-Modified-Since (the date ones only when valid).
// `get_or_head`: a failed If-None-Match is 304 for GET and HEAD only.
Precondition evaluate_preconditions(const Conditions& c, const Validators& v, bool get_or_head);

// Whether `list` (an If-Match / If-None-Match value: "*" or entity tags)
// matches `etag`; `weak` selects the weak comparison (section 8.8.3.2).
bool etag_list_matches(std::string_view list, std::string_view etag, bool weak);

struct RangeAnswer {
  enum class Kind {
    kWhole,          // no usable Range (or If-Range did not match): 200
    kPartial,        // 206 with `first`..`last` (inclusive)
    kUnsatisfiable,  // 416 with "Content-Range: bytes */size"
  } kind = Kind::kWhole;
  uint64_t first = 0;
  uint64_t last = 0;
};

// A GET's Range and If-Range against a file of `size` bytes. One range is
// served; a request for several, a unit other than bytes or a malformed
// value is answered with the whole file (section 14.2: a server may ignore
// Range). If-Range (section 13.1.5) holds a strong entity tag or the exact
// Last-Modified date; anything else means the whole file.
RangeAnswer evaluate_range(std::string_view range, std::string_view if_range, const Validators& v,
                           uint64_t size);

// Whether Accept-Encoding accepts `coding` ("br", "gzip"): listed, or
// covered by "*", with a q-value above 0.
bool accepts_encoding(std::string_view accept_encoding, std::string_view coding);

}  // namespace cppgunicorn::static_files
