#include <doctest/doctest.h>

#include <string>

#include "metrics/exposition.h"
#include "metrics/worker_counters.h"

using namespace cppgunicorn::metrics;

TEST_CASE("metrics: a duration falls in the first bucket whose bound it does not pass") {
  DurationBuckets b({0.005, 0.1, 1});
  CHECK(b.index(0) == 0);
  CHECK(b.index(5000) == 0);  // at the bound: le="0.005"
  CHECK(b.index(5001) == 1);
  CHECK(b.index(1000000) == 2);
  CHECK(b.index(1000001) == 3);  // past every bound: +Inf only
}

TEST_CASE("metrics: method and status class labels") {
  CHECK(method_index("GET") == 0);
  CHECK(method_index("OPTIONS") == 6);
  CHECK(method_index("PROPFIND") == 7);  // other
  CHECK(method_index("get") == 7);       // methods are case-sensitive
  CHECK(status_class_index(200) == 1);
  CHECK(status_class_index(599) == 4);
  CHECK(status_class_index(99) == 5);
  CHECK(status_class_index(600) == 5);
}

TEST_CASE("metrics: a worker's counts and the retired totals add up") {
  SharedCounters block;
  WorkerCounters& c = block.get();
  c.requests[0][1].inc();
  c.requests[0][1].inc();
  c.static_requests[1].inc();
  c.parse_errors[static_cast<size_t>(cppgunicorn::http::ParseError::kBadRequest)].add(3);
  Totals retired;
  retired.add(c);
  Totals total;
  total.add(retired);
  total.add(c);
  CHECK(total.request_count() == 4);
  CHECK(total.parse_errors[1] == 6);
  CHECK(total.static_requests[1] == 2);
}

TEST_CASE("metrics: static requests by status class, only the classes seen") {
  Snapshot s;
  s.totals.requests[0][1] = 5;
  s.totals.static_requests[1] = 3;
  s.totals.static_requests[2] = 1;
  std::string text = render_prometheus(s);
  CHECK(text.find("# TYPE cppgunicorn_static_requests_total counter\n") != std::string::npos);
  CHECK(text.find("cppgunicorn_static_requests_total{status=\"2xx\"} 3\n") != std::string::npos);
  CHECK(text.find("cppgunicorn_static_requests_total{status=\"3xx\"} 1\n") != std::string::npos);
  CHECK(text.find("cppgunicorn_static_requests_total{status=\"4xx\"}") == std::string::npos);
}

TEST_CASE("metrics: the histogram is cumulative and its count is the request count") {
  Snapshot s;
  s.bucket_bounds = {0.01, 0.1};
  s.totals.duration_buckets[0] = 2;
  s.totals.duration_buckets[1] = 3;
  s.totals.duration_buckets[2] = 1;  // past 0.1 s
  s.totals.duration_sum_us = 1500000;
  s.totals.requests[0][1] = 6;
  std::string text = render_prometheus(s);
  CHECK(text.find("cppgunicorn_request_duration_seconds_bucket{le=\"0.01\"} 2\n") != std::string::npos);
  CHECK(text.find("cppgunicorn_request_duration_seconds_bucket{le=\"0.1\"} 5\n") != std::string::npos);
  CHECK(text.find("cppgunicorn_request_duration_seconds_bucket{le=\"+Inf\"} 6\n") != std::string::npos);
  CHECK(text.find("cppgunicorn_request_duration_seconds_count 6\n") != std::string::npos);
  CHECK(text.find("cppgunicorn_request_duration_seconds_sum 1.5\n") != std::string::npos);
  CHECK(text.find("cppgunicorn_requests_total{method=\"GET\",status=\"2xx\"} 6\n") != std::string::npos);
  CHECK(text.find("# TYPE cppgunicorn_request_duration_seconds histogram\n") != std::string::npos);
}

TEST_CASE("metrics: label values are escaped") {
  CHECK(escape_label("a\"b\\c\nd") == "a\\\"b\\\\c\\nd");
}
