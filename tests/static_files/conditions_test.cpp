#include "static_files/conditions.h"

#include <doctest/doctest.h>

#include "static_files/http_date.h"

using namespace cppgunicorn::static_files;

namespace {
Validators file_validators() {
  Validators v;
  v.etag = "\"17f-400\"";
  v.last_modified = 784111777;  // Sun, 06 Nov 1994 08:49:37 GMT
  return v;
}
}  // namespace

TEST_CASE("HTTP dates are read in the three forms and written as IMF-fixdate") {
  CHECK(format_http_date(784111777) == "Sun, 06 Nov 1994 08:49:37 GMT");
  CHECK(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT") == std::optional<std::time_t>(784111777));
  CHECK(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT") == std::optional<std::time_t>(784111777));
  CHECK(parse_http_date("Sun Nov  6 08:49:37 1994") == std::optional<std::time_t>(784111777));
  CHECK_FALSE(parse_http_date("yesterday"));
  CHECK_FALSE(parse_http_date("Sun, 06 Nov 1994 08:49:37 PST"));
  CHECK_FALSE(parse_http_date("Sun, 36 Nov 1994 08:49:37 GMT"));
}

TEST_CASE("validators: a strong ETag from mtime and size, Last-Modified in seconds") {
  struct stat st {};
  st.st_size = 1024;
  st.st_mtim.tv_sec = 10;
  st.st_mtim.tv_nsec = 5;
  Validators v = validators_of(st);
  CHECK(v.etag == "\"2540be405-400\"");
  CHECK(v.last_modified == 10);
}

TEST_CASE("If-None-Match answers 304 for GET and HEAD, 412 otherwise") {
  Validators v = file_validators();
  Conditions c;
  c.if_none_match = "\"17f-400\"";
  CHECK(evaluate_preconditions(c, v, true) == Precondition::kNotModified);
  CHECK(evaluate_preconditions(c, v, false) == Precondition::kFailed);
  c.if_none_match = "W/\"17f-400\"";  // weak comparison
  CHECK(evaluate_preconditions(c, v, true) == Precondition::kNotModified);
  c.if_none_match = "\"other\", \"17f-400\"";
  CHECK(evaluate_preconditions(c, v, true) == Precondition::kNotModified);
  c.if_none_match = "*";
  CHECK(evaluate_preconditions(c, v, true) == Precondition::kNotModified);
  c.if_none_match = "\"other\"";
  CHECK(evaluate_preconditions(c, v, true) == Precondition::kProceed);
}

TEST_CASE("If-Modified-Since is ignored when If-None-Match is present") {
  Validators v = file_validators();
  Conditions c;
  c.if_modified_since = "Sun, 06 Nov 1994 08:49:37 GMT";
  CHECK(evaluate_preconditions(c, v, true) == Precondition::kNotModified);
  c.if_none_match = "\"other\"";
  CHECK(evaluate_preconditions(c, v, true) == Precondition::kProceed);
  c.if_none_match = {};
  c.if_modified_since = "Sun, 06 Nov 1994 08:49:36 GMT";  // a second older
  CHECK(evaluate_preconditions(c, v, true) == Precondition::kProceed);
  c.if_modified_since = "not a date";
  CHECK(evaluate_preconditions(c, v, true) == Precondition::kProceed);
}

TEST_CASE("If-Match uses the strong comparison; If-Unmodified-Since only without it") {
  Validators v = file_validators();
  Conditions c;
  c.if_match = "\"17f-400\"";
  CHECK(evaluate_preconditions(c, v, true) == Precondition::kProceed);
  c.if_match = "W/\"17f-400\"";
  CHECK(evaluate_preconditions(c, v, true) == Precondition::kFailed);
  c.if_match = {};
  c.if_unmodified_since = "Sun, 06 Nov 1994 08:49:36 GMT";
  CHECK(evaluate_preconditions(c, v, true) == Precondition::kFailed);
  c.if_unmodified_since = "Sun, 06 Nov 1994 08:49:37 GMT";
  CHECK(evaluate_preconditions(c, v, true) == Precondition::kProceed);
}

TEST_CASE("a single byte range is served; several, or a bad one, mean the whole file") {
  Validators v = file_validators();
  RangeAnswer r = evaluate_range("bytes=0-99", "", v, 1000);
  CHECK(r.kind == RangeAnswer::Kind::kPartial);
  CHECK(r.first == 0);
  CHECK(r.last == 99);
  r = evaluate_range("bytes=900-", "", v, 1000);
  CHECK((r.kind == RangeAnswer::Kind::kPartial && r.first == 900 && r.last == 999));
  r = evaluate_range("bytes=-100", "", v, 1000);
  CHECK((r.kind == RangeAnswer::Kind::kPartial && r.first == 900 && r.last == 999));
  r = evaluate_range("bytes=-5000", "", v, 1000);
  CHECK((r.kind == RangeAnswer::Kind::kPartial && r.first == 0 && r.last == 999));
  r = evaluate_range("bytes=500-5000", "", v, 1000);
  CHECK((r.kind == RangeAnswer::Kind::kPartial && r.first == 500 && r.last == 999));
  CHECK(evaluate_range("bytes=1000-", "", v, 1000).kind == RangeAnswer::Kind::kUnsatisfiable);
  CHECK(evaluate_range("bytes=-0", "", v, 1000).kind == RangeAnswer::Kind::kUnsatisfiable);
  CHECK(evaluate_range("bytes=0-", "", v, 0).kind == RangeAnswer::Kind::kUnsatisfiable);
  CHECK(evaluate_range("bytes=0-1,5-6", "", v, 1000).kind == RangeAnswer::Kind::kWhole);
  CHECK(evaluate_range("bytes=5-1", "", v, 1000).kind == RangeAnswer::Kind::kWhole);
  CHECK(evaluate_range("items=0-1", "", v, 1000).kind == RangeAnswer::Kind::kWhole);
  CHECK(evaluate_range("bytes=x-y", "", v, 1000).kind == RangeAnswer::Kind::kWhole);
  CHECK(evaluate_range("", "", v, 1000).kind == RangeAnswer::Kind::kWhole);
}

TEST_CASE("If-Range: the range only while the validator still matches") {
  Validators v = file_validators();
  CHECK(evaluate_range("bytes=0-9", "\"17f-400\"", v, 1000).kind == RangeAnswer::Kind::kPartial);
  CHECK(evaluate_range("bytes=0-9", "\"old\"", v, 1000).kind == RangeAnswer::Kind::kWhole);
  CHECK(evaluate_range("bytes=0-9", "W/\"17f-400\"", v, 1000).kind == RangeAnswer::Kind::kWhole);
  CHECK(evaluate_range("bytes=0-9", "Sun, 06 Nov 1994 08:49:37 GMT", v, 1000).kind ==
        RangeAnswer::Kind::kPartial);
  CHECK(evaluate_range("bytes=0-9", "Sun, 06 Nov 1994 08:49:38 GMT", v, 1000).kind ==
        RangeAnswer::Kind::kWhole);
}

TEST_CASE("Accept-Encoding: a coding listed or under *, with q above 0") {
  CHECK(accepts_encoding("gzip, deflate, br", "br"));
  CHECK(accepts_encoding("gzip;q=0.5", "gzip"));
  CHECK_FALSE(accepts_encoding("gzip;q=0", "gzip"));
  CHECK_FALSE(accepts_encoding("br;q=0.000, gzip", "br"));
  CHECK(accepts_encoding("*", "br"));
  CHECK_FALSE(accepts_encoding("*, br;q=0", "br"));
  CHECK_FALSE(accepts_encoding("identity", "gzip"));
  CHECK_FALSE(accepts_encoding("", "gzip"));
  CHECK(accepts_encoding("GZIP", "gzip"));
}
