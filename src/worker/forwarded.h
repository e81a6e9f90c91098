// gunicorn's trust rules for what a front-end proxy says: only a peer in
// forwarded_allow_ips (or on a unix socket) may set the scheme with
// secure_scheme_headers; anyone else gets the scheme of the socket.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "http/request.h"

namespace cppgunicorn::worker {

class ForwardedPolicy {
 public:
  explicit ForwardedPolicy(const config::Config& config);

  // `remote_addr` "" means a unix socket peer, trusted as in gunicorn.
  bool trusts(std::string_view remote_addr) const;

  enum class Scheme { kUnset, kHttp, kHttps, kConflict };
  // What the secure_scheme_headers of a trusted peer's request say;
  // kConflict when two of them disagree (gunicorn: InvalidSchemeHeaders).
  Scheme scheme_of(const http::HeaderList& headers) const;

 private:
  struct Network {
    int family = 0;  // AF_INET or AF_INET6
    std::array<unsigned char, 16> addr{};
    int prefix = 0;
  };
  bool any_ = false;
  std::vector<Network> networks_;
  std::vector<std::pair<std::string, std::string>> secure_headers_;
};

}  // namespace cppgunicorn::worker
