// The PROXY protocol header a load balancer may put before the first
// request of a connection (haproxy's proxy-protocol.txt, versions 1 and 2),
// with gunicorn's rules: v1 needs TCP4/TCP6 and six fields, v2 needs
// version 2, LOCAL or PROXY over TCP.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "http/errors.h"
#include "http/limits.h"

namespace cppgunicorn::http {

// What the header said. `client_addr` is empty for LOCAL and UNSPEC, which
// carry no addresses: the connection's own peer stays the client.
struct ProxyInfo {
  bool seen = false;
  std::string protocol;  // "TCP4", "TCP6", "LOCAL" or "UNSPEC" (gunicorn's PROXY_PROTOCOL)
  std::string client_addr;
  std::string client_port;
  std::string proxy_addr;  // where the client connected to, at the proxy
  std::string proxy_port;
};

// Whether `address` (text, as from the socket) is in an allow list of
// addresses, address/prefix networks and '*' (gunicorn's proxy_allow_ips).
bool address_allowed(const std::string& address, const std::vector<std::string>& allow_list);

class ProxyHeaderDecoder {
 public:
  enum class Status {
    kNeedMore,  // every byte so far may still start a PROXY header
    kDone,      // a header was read: `consumed` bytes of the stream were it
    kAbsent,    // the stream does not start with a PROXY header
    kError,     // error() says why
  };

  ProxyHeaderDecoder(ProxyProtocol mode, bool peer_allowed) : mode_(mode), allowed_(peer_allowed) {}

  // Takes the next bytes of the stream; keeps what it needs. For kDone,
  // header_size() is the size of the header from the stream's first byte.
  Status feed(const char* data, size_t length);
  size_t header_size() const { return header_size_; }
  // For kDone: how many bytes of the last feed's data were header.
  size_t used_of_last_feed() const { return header_size_ - before_; }
  // Bytes held from before the current feed (at most 15).
  const std::string& held() const { return buf_; }
  const ProxyInfo& info() const { return info_; }
  ParseError error() const { return error_; }
  const std::string& reason() const { return reason_; }

 private:
  Status fail(ParseError e, std::string why);
  Status decode_v1();
  Status decode_v2();

  ProxyProtocol mode_;
  bool allowed_;
  std::string buf_;
  size_t header_size_ = 0;
  size_t before_ = 0;
  ProxyInfo info_;
  ParseError error_ = ParseError::kNone;
  std::string reason_;
};

}  // namespace cppgunicorn::http
