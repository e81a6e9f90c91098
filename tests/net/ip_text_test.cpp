#include "net/ip_text.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>

#include <string>

using cppgunicorn::net::ipv4_text;
using cppgunicorn::net::kIpv4TextSize;

namespace {
// What inet_ntop says, and what ipv4_text says, for the same address.
void same_as_inet_ntop(uint32_t host_order) {
  in_addr a{};
  a.s_addr = htonl(host_order);
  char ours[kIpv4TextSize];
  size_t n = ipv4_text(a, ours);
  char theirs[INET_ADDRSTRLEN];
  REQUIRE(inet_ntop(AF_INET, &a, theirs, sizeof theirs) != nullptr);
  CHECK(std::string(ours) == std::string(theirs));
  CHECK(n == std::string(theirs).size());
}
}  // namespace

TEST_CASE("ipv4_text: a dotted quad, as inet_ntop writes it") {
  same_as_inet_ntop(0x7f000001);  // 127.0.0.1
  same_as_inet_ntop(0);           // 0.0.0.0
  same_as_inet_ntop(0xffffffff);  // 255.255.255.255 (the longest)
  same_as_inet_ntop(0x0a006409);  // 10.0.100.9
  same_as_inet_ntop(0xc0a80a63);  // 192.168.10.99
  // Every octet value in every position.
  for (uint32_t v = 0; v < 256; ++v) same_as_inet_ntop(v << 24 | v << 16 | (255 - v) << 8 | (v * 7 % 256));
}
