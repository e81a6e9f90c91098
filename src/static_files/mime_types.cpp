#include "static_files/mime_types.h"

#include <utility>

namespace cppgunicorn::static_files {

namespace {

constexpr std::pair<std::string_view, std::string_view> kTypes[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"map", "application/json"},
    {"webmanifest", "application/manifest+json"},
    {"txt", "text/plain; charset=utf-8"},
    {"md", "text/markdown; charset=utf-8"},
    {"csv", "text/csv; charset=utf-8"},
    {"xml", "text/xml; charset=utf-8"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"avif", "image/avif"},
    {"ico", "image/vnd.microsoft.icon"},
    {"bmp", "image/bmp"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"ttf", "font/ttf"},
    {"otf", "font/otf"},
    {"eot", "application/vnd.ms-fontobject"},
    {"wasm", "application/wasm"},
    {"pdf", "application/pdf"},
    {"zip", "application/zip"},
    {"gz", "application/gzip"},
    {"br", "application/octet-stream"},
    {"tar", "application/x-tar"},
    {"mp4", "video/mp4"},
    {"webm", "video/webm"},
    {"mp3", "audio/mpeg"},
    {"ogg", "audio/ogg"},
    {"wav", "audio/wav"},
};

constexpr std::string_view kDefaultType = "application/octet-stream";

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

bool equal_lower(std::string_view ext, std::string_view known) {
  if (ext.size() != known.size()) return false;
  for (size_t i = 0; i < ext.size(); ++i) {
    if (lower(ext[i]) != known[i]) return false;
  }
  return true;
}

std::string_view base_name(std::string_view name) {
  size_t slash = name.rfind('/');
  return slash == std::string_view::npos ? name : name.substr(slash + 1);
}

}  // namespace

std::string_view content_type_for(std::string_view file_name) {
  std::string_view base = base_name(file_name);
  size_t dot = base.rfind('.');
  if (dot == std::string_view::npos || dot == 0) return kDefaultType;
  std::string_view ext = base.substr(dot + 1);
  for (const auto& [known, type] : kTypes) {
    if (equal_lower(ext, known)) return type;
  }
  return kDefaultType;
}

bool is_compressible(std::string_view type) {
  return type.starts_with("text/") || type.starts_with("application/json") ||
         type.starts_with("application/manifest+json") || type == "image/svg+xml" ||
         type == "application/wasm" || type == "font/ttf" || type == "font/otf" ||
         type == "application/vnd.ms-fontobject" || type == "image/vnd.microsoft.icon";
}

bool has_content_hash(std::string_view file_name) {
  std::string_view base = base_name(file_name);
  size_t ext = base.rfind('.');
  if (ext == std::string_view::npos || ext == 0) return false;
  std::string_view stem = base.substr(0, ext);
  size_t sep = stem.find_last_of(".-");
  if (sep == std::string_view::npos) return false;
  std::string_view hash = stem.substr(sep + 1);
  if (hash.size() < 8 || hash.size() > 64) return false;
  bool digit = false;
  for (char c : hash) {
    if (c >= '0' && c <= '9') digit = true;
    else if (c < 'a' || c > 'f') return false;
  }
  return digit;
}

}  // namespace cppgunicorn::static_files
