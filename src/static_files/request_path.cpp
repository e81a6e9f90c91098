#include "static_files/request_path.h"

#include "http/request.h"

namespace cppgunicorn::static_files {

DecodedPath decode_request_path(std::string_view raw) {
  DecodedPath out{http::percent_decode(raw)};
  // Every '%' followed by two hex digits is an escape that percent_decode
  // decoded (an escape's own digits are never '%'), so the escapes of '/',
  // backslash and NUL show in `raw` itself.
  for (size_t i = 0; i + 2 < raw.size() && !out.encoded_separator; ++i) {
    if (raw[i] != '%') continue;
    char hi = raw[i + 1], lo = raw[i + 2];
    out.encoded_separator = (hi == '2' && (lo == 'f' || lo == 'F')) ||
                            (hi == '5' && (lo == 'c' || lo == 'C')) || (hi == '0' && lo == '0');
  }
  return out;
}

std::optional<std::string_view> beneath_prefix(std::string_view path, std::string_view prefix) {
  if (prefix == "/") {
    if (path.empty() || path[0] != '/') return std::nullopt;
    return path.substr(1);
  }
  if (path.size() < prefix.size() || path.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  std::string_view rest = path.substr(prefix.size());
  if (rest.empty()) return rest;
  if (rest[0] != '/') return std::nullopt;  // "/staticfoo" is not under "/static"
  return rest.substr(1);
}

NameCheck check_file_name(std::string_view name, bool allow_hidden) {
  if (name.empty()) return NameCheck::kRefused;
  bool hidden = false;
  size_t start = 0;
  while (start <= name.size()) {
    size_t slash = name.find('/', start);
    if (slash == std::string_view::npos) slash = name.size();
    std::string_view part = name.substr(start, slash - start);
    // An empty component ("a//b", a trailing slash, a leading one that
    // would make the name absolute), "." and "..".
    if (part.empty() || part == "." || part == "..") return NameCheck::kRefused;
    for (char c : part) {
      auto u = static_cast<unsigned char>(c);
      if (c == '\\' || u < 0x20 || u == 0x7f) return NameCheck::kRefused;
    }
    if (part[0] == '.') hidden = true;
    start = slash + 1;
  }
  return hidden && !allow_hidden ? NameCheck::kHidden : NameCheck::kOk;
}

}  // namespace cppgunicorn::static_files
