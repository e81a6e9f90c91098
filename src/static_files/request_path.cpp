#include "static_files/request_path.h"

namespace cppgunicorn::static_files {

namespace {
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

DecodedPath decode_request_path(std::string_view raw) {
  DecodedPath out;
  out.path.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c == '%' && i + 2 < raw.size()) {
      int hi = hex_value(raw[i + 1]);
      int lo = hex_value(raw[i + 2]);
      if (hi >= 0 && lo >= 0) {
        char decoded = static_cast<char>(hi * 16 + lo);
        if (decoded == '/' || decoded == '\\' || decoded == '\0') out.encoded_separator = true;
        out.path.push_back(decoded);
        i += 2;
        continue;
      }
    }
    out.path.push_back(c);
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
