// The text of an IPv4 address (REMOTE_ADDR), written by hand: libuv's
// uv_ip4_name formats it with snprintf, which showed in the profile of the
// new-connection path (docs/performance.md, "The new-connection path").
#pragma once

#include <netinet/in.h>

#include <cstddef>

namespace cppgunicorn::net {

// Longest text: "255.255.255.255" and its NUL.
constexpr size_t kIpv4TextSize = 16;

// Writes `addr` (network byte order) as a dotted quad and a NUL into
// `out`; returns the length, without the NUL.
size_t ipv4_text(const in_addr& addr, char (&out)[kIpv4TextSize]);

}  // namespace cppgunicorn::net
