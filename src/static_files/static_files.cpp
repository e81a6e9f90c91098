#include "static_files/static_files.h"

#include <fcntl.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "http/response_head.h"
#include "log/logger.h"
#include "static_files/conditions.h"
#include "static_files/http_date.h"
#include "static_files/mime_types.h"
#include "static_files/open_beneath.h"
#include "static_files/request_path.h"

namespace cppgunicorn::static_files {

namespace {

constexpr std::string_view kImmutable = "public, max-age=31536000, immutable";

std::string status_line(int code) {
  return std::to_string(code) + " " + std::string(http::standard_reason(code));
}

Answer text_answer(int code, std::string_view body) {
  Answer a;
  a.kind = Answer::Kind::kRespond;
  a.status = status_line(code);
  a.headers.emplace_back("Content-Type", "text/plain; charset=utf-8");
  a.body = body;
  a.length = body.size();
  return a;
}

}  // namespace

StaticFiles::StaticFiles(std::vector<MountPoint> mounts, Options options)
    : options_(std::move(options)) {
  for (MountPoint& point : mounts) {
    int fd = ::open(point.directory.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
      throw std::runtime_error("cannot open the static directory '" + point.directory +
                               "' for " + point.url_prefix + ": " + std::strerror(errno));
    }
    mounts_.push_back(Mount{std::move(point), base::UniqueFd(fd)});
  }
  // "/static/admin" is looked at before "/static".
  std::stable_sort(mounts_.begin(), mounts_.end(), [](const Mount& a, const Mount& b) {
    return a.point.url_prefix.size() > b.point.url_prefix.size();
  });
}

Answer StaticFiles::not_found_or_app(int code) const {
  if (options_.fallthrough) {
    Answer a;
    a.kind = Answer::Kind::kToApp;
    return a;
  }
  return text_answer(code, "Not Found\n");
}

Answer StaticFiles::answer(const http::Request& request) const {
  DecodedPath decoded = decode_request_path(request.path());
  const Mount* mount = nullptr;
  std::string_view name;
  for (const Mount& m : mounts_) {
    if (auto rest = beneath_prefix(decoded.path, m.point.url_prefix)) {
      mount = &m;
      name = *rest;
      break;
    }
  }
  if (mount == nullptr) return {};
  // The directory itself, or a name for a directory ("css/"): never listed.
  if (name.empty() || name.back() == '/') {
    if (decoded.encoded_separator) return text_answer(400, "Bad Request\n");
    return not_found_or_app(404);
  }
  // Refused outright, never handed to the app: a name that tries to leave
  // the directory or hide a separator is not a request for anything.
  if (decoded.encoded_separator) return text_answer(400, "Bad Request\n");
  switch (check_file_name(name, options_.allow_hidden)) {
    case NameCheck::kOk: break;
    case NameCheck::kRefused: return text_answer(400, "Bad Request\n");
    // Not to the app either: its own static route might serve it.
    case NameCheck::kHidden: return text_answer(404, "Not Found\n");
  }
  std::string file_name(name);
  OpenedFile opened = open_beneath(mount->dir.get(), file_name);
  switch (opened.status) {
    case OpenStatus::kOpened: break;
    case OpenStatus::kNotFound:
    case OpenStatus::kNotRegular:
      return not_found_or_app(404);
    case OpenStatus::kOutOfFiles: {
      Answer a = text_answer(503, "Service Unavailable\n");
      a.headers.emplace_back("Retry-After", "1");
      a.close_connection = true;
      log::error_log().warning("Cannot open a static file for " + std::string(request.path()) +
                               ": the open-files limit is reached");
      return a;
    }
    case OpenStatus::kError:
      if (opened.error == EACCES) return text_answer(403, "Forbidden\n");
      log::error_log().error("Cannot open the static file '" + mount->point.directory + "/" +
                             file_name + "': " + std::strerror(opened.error));
      return text_answer(500, "Internal Server Error\n");
  }
  if (request.method != "GET" && request.method != "HEAD") {
    Answer a = text_answer(405, "Method Not Allowed\n");
    a.headers.emplace_back("Allow", "GET, HEAD");
    return a;
  }
  Answer out;
  out.kind = Answer::Kind::kRespond;
  std::string_view type = content_type_for(file_name);
  bool compressible = is_compressible(type);
  base::UniqueFd file = std::move(opened.fd);
  struct stat st = opened.info;
  if (compressible) {
    // A precompressed sibling ("app.js.br", "app.js.gz") made at build
    // time, when the client takes that coding: brotli first, smaller.
    std::string_view accept = request.header("Accept-Encoding");
    if (!accept.empty()) {
      for (std::string_view coding : {std::string_view("br"), std::string_view("gzip")}) {
        if (!accepts_encoding(accept, coding)) continue;
        std::string sibling = file_name + (coding == "br" ? ".br" : ".gz");
        OpenedFile encoded = open_beneath(mount->dir.get(), sibling);
        if (encoded.status != OpenStatus::kOpened) continue;
        file = std::move(encoded.fd);
        st = encoded.info;
        out.headers.emplace_back("Content-Encoding", coding);
        break;
      }
    }
  }
  out.headers.emplace_back("Content-Type", type);
  respond_with_file(request, file_name, out, st, std::move(file));
  // Vary on every response of a type that may have a compressed sibling:
  // a cache must not hand one coding to a client that asked for another.
  if (compressible) out.headers.emplace_back("Vary", "Accept-Encoding");
  return out;
}

void StaticFiles::respond_with_file(const http::Request& request, const std::string& name,
                                    Answer& out, struct stat st, base::UniqueFd file) const {
  Validators v = validators_of(st);
  uint64_t size = static_cast<uint64_t>(st.st_size);
  out.headers.emplace_back("Last-Modified", format_http_date(v.last_modified));
  out.headers.emplace_back("ETag", v.etag);
  std::string_view cache = has_content_hash(name) ? kImmutable : std::string_view(options_.cache_control);
  if (!cache.empty()) out.headers.emplace_back("Cache-Control", cache);
  Conditions c;
  c.if_match = request.header("If-Match");
  c.if_none_match = request.header("If-None-Match");
  c.if_modified_since = request.header("If-Modified-Since");
  c.if_unmodified_since = request.header("If-Unmodified-Since");
  switch (evaluate_preconditions(c, v, true)) {
    case Precondition::kProceed: break;
    case Precondition::kNotModified:
      // RFC 9110 section 15.4.5: the 304 carries the validators and the
      // fields a 200 would have for caching; no body, no Content-Type
      // needed (kept: harmless and what nginx sends).
      out.status = "304 Not Modified";
      return;
    case Precondition::kFailed: {
      out.status = "412 Precondition Failed";
      out.headers.clear();
      out.headers.emplace_back("Content-Type", "text/plain; charset=utf-8");
      out.body = "Precondition Failed\n";
      out.length = out.body.size();
      return;
    }
  }
  out.headers.emplace_back("Accept-Ranges", "bytes");
  RangeAnswer range = request.method == "GET"
                          ? evaluate_range(request.header("Range"), request.header("If-Range"), v, size)
                          : RangeAnswer{};
  switch (range.kind) {
    case RangeAnswer::Kind::kWhole:
      out.status = "200 OK";
      out.offset = 0;
      out.length = size;
      break;
    case RangeAnswer::Kind::kPartial:
      out.status = "206 Partial Content";
      out.offset = range.first;
      out.length = range.last - range.first + 1;
      out.headers.emplace_back("Content-Range", "bytes " + std::to_string(range.first) + "-" +
                                                    std::to_string(range.last) + "/" +
                                                    std::to_string(size));
      break;
    case RangeAnswer::Kind::kUnsatisfiable:
      out.status = "416 Range Not Satisfiable";
      out.headers.emplace_back("Content-Range", "bytes */" + std::to_string(size));
      out.body = "Range Not Satisfiable\n";
      out.length = out.body.size();
      // The text body replaces the file's type and coding.
      std::erase_if(out.headers, [](const auto& h) { return h.first == "Content-Encoding"; });
      for (auto& [field, value] : out.headers) {
        if (field == "Content-Type") value = "text/plain; charset=utf-8";
      }
      return;
  }
  out.file = std::move(file);
}

}  // namespace cppgunicorn::static_files
