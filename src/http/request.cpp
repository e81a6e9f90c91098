#include "http/request.h"

namespace cppgunicorn::http {

std::string_view Request::path() const {
  std::string_view t = target;
  size_t end = t.find_first_of("?#");
  return end == std::string_view::npos ? t : t.substr(0, end);
}

std::string_view Request::query() const {
  std::string_view t = target;
  size_t q = t.find('?');
  if (q == std::string_view::npos) return {};
  std::string_view rest = t.substr(q + 1);
  size_t hash = rest.find('#');
  return hash == std::string_view::npos ? rest : rest.substr(0, hash);
}

std::string_view Request::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) return v;
  }
  return {};
}

void Request::clear() {
  method.clear();
  target.clear();
  protocol.clear();
  http_major = 1;
  http_minor = 1;
  headers.clear();
  // A large body's buffer is not kept for the next request.
  if (body.capacity() > 64 * 1024) std::string().swap(body);
  body.clear();
  body_file.reset();
  body_stream.reset();
  has_content_length = false;
  content_length = 0;
  chunked = false;
  keep_alive = true;
  close_requested = false;
  upgrade = false;
  expect_continue = false;
  has_script_name = false;
  script_name.clear();
  uwsgi = false;
  cgi_vars.clear();
}

namespace {
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

std::string percent_decode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size()) {
      int hi = hex_value(in[i + 1]);
      int lo = hex_value(in[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += in[i];
  }
  return out;
}

}  // namespace cppgunicorn::http
