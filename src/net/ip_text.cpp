#include "net/ip_text.h"

#include <cstdint>

namespace cppgunicorn::net {

size_t ipv4_text(const in_addr& addr, char (&out)[kIpv4TextSize]) {
  uint32_t host = ntohl(addr.s_addr);
  size_t n = 0;
  for (int shift = 24; shift >= 0; shift -= 8) {
    unsigned octet = (host >> shift) & 0xffu;
    if (octet >= 100) out[n++] = static_cast<char>('0' + octet / 100);
    if (octet >= 10) out[n++] = static_cast<char>('0' + octet / 10 % 10);
    out[n++] = static_cast<char>('0' + octet % 10);
    if (shift != 0) out[n++] = '.';
  }
  out[n] = '\0';
  return n;
}

}  // namespace cppgunicorn::net
