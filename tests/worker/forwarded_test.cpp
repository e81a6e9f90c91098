#include <doctest/doctest.h>

#include "config/config.h"
#include "worker/forwarded.h"

using cppgunicorn::config::Config;
using cppgunicorn::worker::ForwardedPolicy;

TEST_CASE("forwarded_allow_ips: addresses, networks, any, unix peers") {
  Config c;
  ForwardedPolicy defaults(c);
  CHECK(defaults.trusts("127.0.0.1"));
  CHECK(defaults.trusts("::1"));
  CHECK(defaults.trusts(""));  // a unix socket peer
  CHECK_FALSE(defaults.trusts("10.0.0.1"));

  c.forwarded_allow_ips = {"10.0.0.0/8", "2001:db8::/32", "192.168.1.7"};
  ForwardedPolicy networks(c);
  CHECK(networks.trusts("10.200.3.4"));
  CHECK_FALSE(networks.trusts("11.0.0.1"));
  CHECK(networks.trusts("2001:db8:1::5"));
  CHECK_FALSE(networks.trusts("2001:db9::5"));
  CHECK(networks.trusts("192.168.1.7"));
  CHECK_FALSE(networks.trusts("192.168.1.8"));
  CHECK_FALSE(networks.trusts("127.0.0.1"));

  c.forwarded_allow_ips = {"*"};
  CHECK(ForwardedPolicy(c).trusts("203.0.113.1"));
}

TEST_CASE("secure_scheme_headers: https, http, unset, conflict") {
  Config c;
  ForwardedPolicy p(c);
  using S = ForwardedPolicy::Scheme;
  CHECK(p.scheme_of({{"X-Forwarded-Proto", "https"}}) == S::kHttps);
  CHECK(p.scheme_of({{"x-forwarded-ssl", "on"}}) == S::kHttps);
  CHECK(p.scheme_of({{"X-Forwarded-Proto", "http"}}) == S::kHttp);
  CHECK(p.scheme_of({{"Host", "a"}}) == S::kUnset);
  CHECK(p.scheme_of({{"X-Forwarded-Proto", "https"}, {"X-Forwarded-Ssl", "off"}}) == S::kConflict);
  CHECK(p.scheme_of({{"X-Forwarded-Proto", "https"}, {"X-Forwarded-Ssl", "on"}}) == S::kHttps);
}
