#include "worker/forwarded.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cstdlib>

namespace cppgunicorn::worker {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

bool parse_address(std::string_view text, int* family, std::array<unsigned char, 16>* out) {
  std::string s(text);
  if (::inet_pton(AF_INET, s.c_str(), out->data()) == 1) {
    *family = AF_INET;
    return true;
  }
  if (::inet_pton(AF_INET6, s.c_str(), out->data()) == 1) {
    *family = AF_INET6;
    return true;
  }
  return false;
}

bool in_network(const std::array<unsigned char, 16>& addr, const std::array<unsigned char, 16>& net,
                int prefix) {
  int full = prefix / 8;
  for (int i = 0; i < full; ++i) {
    if (addr[i] != net[i]) return false;
  }
  int rest = prefix % 8;
  if (rest == 0) return true;
  unsigned char mask = static_cast<unsigned char>(0xFF << (8 - rest));
  return (addr[full] & mask) == (net[full] & mask);
}

}  // namespace

ForwardedPolicy::ForwardedPolicy(const config::Config& config)
    : secure_headers_(config.secure_scheme_headers) {
  // The values were checked when the setting was read.
  for (const std::string& item : config.forwarded_allow_ips) {
    if (item == "*") {
      any_ = true;
      continue;
    }
    Network n;
    std::string_view text = item;
    auto slash = text.find('/');
    if (!parse_address(text.substr(0, slash), &n.family, &n.addr)) continue;
    int max_prefix = n.family == AF_INET ? 32 : 128;
    n.prefix = slash == std::string_view::npos ? max_prefix
                                               : std::atoi(std::string(text.substr(slash + 1)).c_str());
    networks_.push_back(n);
  }
}

bool ForwardedPolicy::trusts(std::string_view remote_addr) const {
  if (remote_addr.empty() || any_) return true;
  int family = 0;
  std::array<unsigned char, 16> addr{};
  if (!parse_address(remote_addr, &family, &addr)) return false;
  for (const Network& n : networks_) {
    if (n.family == family && in_network(addr, n.addr, n.prefix)) return true;
  }
  return false;
}

ForwardedPolicy::Scheme ForwardedPolicy::scheme_of(const http::HeaderList& headers) const {
  Scheme scheme = Scheme::kUnset;
  for (const auto& [name, value] : headers) {
    for (const auto& [secure_name, secure_value] : secure_headers_) {
      if (!iequals(name, secure_name)) continue;
      Scheme this_one = value == secure_value ? Scheme::kHttps : Scheme::kHttp;
      if (scheme != Scheme::kUnset && scheme != this_one) return Scheme::kConflict;
      scheme = this_one;
    }
  }
  return scheme;
}

}  // namespace cppgunicorn::worker
