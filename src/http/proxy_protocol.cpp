#include "http/proxy_protocol.h"

#include <arpa/inet.h>

#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

namespace cppgunicorn::http {

namespace {
constexpr std::string_view kV1Prefix = "PROXY ";
constexpr std::string_view kV2Signature("\r\n\r\n\0\r\nQUIT\n", 12);
// proxy-protocol.txt section 2.1: a v1 line is at most 107 bytes with CRLF.
constexpr size_t kV1MaxLine = 107;
// Version 2 allows 65535 bytes of addresses and TLVs; we read no TLVs and
// refuse anything far beyond what addresses need.
constexpr size_t kV2MaxLength = 4096;

bool prefix_of(std::string_view have, std::string_view full) {
  size_t n = std::min(have.size(), full.size());
  return have.substr(0, n) == full.substr(0, n);
}

bool parse_port(std::string_view s, std::string* out) {
  if (s.empty() || s.size() > 5) return false;
  unsigned v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v > 65535) return false;
  *out = std::to_string(v);
  return true;
}

bool valid_address(int family, std::string_view s) {
  char text[64];
  if (s.size() >= sizeof text) return false;
  std::memcpy(text, s.data(), s.size());
  text[s.size()] = '\0';
  unsigned char bin[16];
  return inet_pton(family, text, bin) == 1;
}
}  // namespace

bool address_allowed(const std::string& address, const std::vector<std::string>& allow_list) {
  unsigned char ip[16];
  int family = AF_INET;
  if (inet_pton(AF_INET, address.c_str(), ip) != 1) {
    family = AF_INET6;
    if (inet_pton(AF_INET6, address.c_str(), ip) != 1) return false;
  }
  size_t ip_bits = family == AF_INET ? 32 : 128;
  for (const std::string& item : allow_list) {
    if (item == "*") return true;
    size_t slash = item.find('/');
    std::string net_text = item.substr(0, slash);
    size_t prefix = ip_bits;
    if (slash != std::string::npos) prefix = std::strtoul(item.c_str() + slash + 1, nullptr, 10);
    unsigned char net[16];
    if (inet_pton(family, net_text.c_str(), net) != 1 || prefix > ip_bits) continue;
    bool match = true;
    for (size_t bit = 0; bit < prefix && match; ++bit) {
      unsigned mask = 0x80u >> (bit % 8);
      match = (ip[bit / 8] & mask) == (net[bit / 8] & mask);
    }
    if (match) return true;
  }
  return false;
}

ProxyHeaderDecoder::Status ProxyHeaderDecoder::fail(ParseError e, std::string why) {
  error_ = e;
  reason_ = std::move(why);
  return Status::kError;
}

ProxyHeaderDecoder::Status ProxyHeaderDecoder::feed(const char* data, size_t length) {
  size_t before = buf_.size();
  before_ = before;
  buf_.append(data, length);
  bool v1 = mode_ == ProxyProtocol::kV1 || mode_ == ProxyProtocol::kAuto;
  bool v2 = mode_ == ProxyProtocol::kV2 || mode_ == ProxyProtocol::kAuto;
  bool maybe_v1 = v1 && prefix_of(buf_, kV1Prefix);
  bool maybe_v2 = v2 && prefix_of(buf_, kV2Signature);
  if (!maybe_v1 && !maybe_v2) {
    buf_.resize(before);  // the caller parses these as the request
    return Status::kAbsent;
  }
  if (maybe_v1 && buf_.size() < kV1Prefix.size()) return Status::kNeedMore;
  if (maybe_v2 && !maybe_v1 && buf_.size() < kV2Signature.size()) return Status::kNeedMore;
  // gunicorn: a PROXY header from a peer outside proxy_allow_ips is refused.
  if (!allowed_) return fail(ParseError::kForbiddenProxy, "PROXY header from a peer not in proxy_allow_ips");
  return maybe_v1 ? decode_v1() : decode_v2();
}

ProxyHeaderDecoder::Status ProxyHeaderDecoder::decode_v1() {
  size_t crlf = buf_.find("\r\n");
  if (crlf == std::string::npos) {
    if (buf_.size() >= kV1MaxLine) return fail(ParseError::kInvalidProxy, "PROXY line too long");
    return Status::kNeedMore;
  }
  if (crlf + 2 > kV1MaxLine) return fail(ParseError::kInvalidProxy, "PROXY line too long");
  std::string_view line(buf_.data(), crlf);
  std::vector<std::string_view> bits;
  size_t start = 0;
  for (;;) {
    size_t sp = line.find(' ', start);
    bits.push_back(line.substr(start, sp == std::string_view::npos ? sp : sp - start));
    if (sp == std::string_view::npos) break;
    start = sp + 1;
  }
  if (bits.size() != 6) return fail(ParseError::kInvalidProxy, "PROXY line needs six fields");
  int family;
  if (bits[1] == "TCP4") family = AF_INET;
  else if (bits[1] == "TCP6") family = AF_INET6;
  else return fail(ParseError::kInvalidProxy, "PROXY protocol other than TCP4/TCP6");
  if (!valid_address(family, bits[2]) || !valid_address(family, bits[3])) {
    return fail(ParseError::kInvalidProxy, "invalid address in PROXY line");
  }
  std::string client_port, proxy_port;
  if (!parse_port(bits[4], &client_port) || !parse_port(bits[5], &proxy_port)) {
    return fail(ParseError::kInvalidProxy, "invalid port in PROXY line");
  }
  info_.seen = true;
  info_.protocol.assign(bits[1]);
  info_.client_addr.assign(bits[2]);
  info_.client_port = client_port;
  info_.proxy_addr.assign(bits[3]);
  info_.proxy_port = proxy_port;
  header_size_ = crlf + 2;
  return Status::kDone;
}

ProxyHeaderDecoder::Status ProxyHeaderDecoder::decode_v2() {
  if (buf_.size() < 16) return Status::kNeedMore;
  auto byte = [this](size_t i) { return static_cast<unsigned char>(buf_[i]); };
  unsigned version = byte(12) >> 4, command = byte(12) & 0x0F;
  unsigned family = byte(13) >> 4, protocol = byte(13) & 0x0F;
  size_t length = (static_cast<size_t>(byte(14)) << 8) | byte(15);
  if (version != 2) return fail(ParseError::kInvalidProxy, "PROXY v2 header of another version");
  if (command > 1) return fail(ParseError::kInvalidProxy, "PROXY v2 command neither LOCAL nor PROXY");
  if (length > kV2MaxLength) return fail(ParseError::kInvalidProxy, "PROXY v2 header too long");
  if (buf_.size() < 16 + length) return Status::kNeedMore;
  header_size_ = 16 + length;
  info_.seen = true;
  if (command == 0) {  // LOCAL: the proxy's own connection
    info_.protocol = "LOCAL";
    return Status::kDone;
  }
  if (protocol != 1) return fail(ParseError::kInvalidProxy, "PROXY v2 over a protocol other than TCP");
  const unsigned char* a = reinterpret_cast<const unsigned char*>(buf_.data()) + 16;
  char text[INET6_ADDRSTRLEN] = "";
  char proxy_text[INET6_ADDRSTRLEN] = "";
  if (family == 1) {
    if (length < 12) return fail(ParseError::kInvalidProxy, "PROXY v2 IPv4 addresses cut short");
    inet_ntop(AF_INET, a, text, sizeof text);
    inet_ntop(AF_INET, a + 4, proxy_text, sizeof proxy_text);
    info_.client_port = std::to_string((a[8] << 8) | a[9]);
    info_.proxy_port = std::to_string((a[10] << 8) | a[11]);
    info_.protocol = "TCP4";
  } else if (family == 2) {
    if (length < 36) return fail(ParseError::kInvalidProxy, "PROXY v2 IPv6 addresses cut short");
    inet_ntop(AF_INET6, a, text, sizeof text);
    inet_ntop(AF_INET6, a + 16, proxy_text, sizeof proxy_text);
    info_.client_port = std::to_string((a[32] << 8) | a[33]);
    info_.proxy_port = std::to_string((a[34] << 8) | a[35]);
    info_.protocol = "TCP6";
  } else if (family == 0) {
    info_.protocol = "UNSPEC";
    return Status::kDone;  // no addresses
  } else {
    return fail(ParseError::kInvalidProxy, "PROXY v2 address family not supported");
  }
  info_.client_addr = text;
  info_.proxy_addr = proxy_text;
  return Status::kDone;
}

}  // namespace cppgunicorn::http
