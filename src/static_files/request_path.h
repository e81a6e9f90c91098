// From a request's path to a file name beneath a mount: percent-decoding
// done once, then the checks on the decoded bytes. Pure functions, no I/O.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace cppgunicorn::static_files {

struct DecodedPath {
  std::string path;
  // An escape decoded to a byte that separates or ends names ("%2F", "%5C",
  // "%00"): such a path is refused under a mount, where it could only be
  // an attempt to smuggle a separator past a proxy's checks.
  bool encoded_separator = false;
};

// Percent-decodes `raw` (the request path, without the query) exactly once:
// "%252e" becomes "%2e", never ".". A malformed escape stays as it is.
DecodedPath decode_request_path(std::string_view raw);

// The part of `path` beneath the mount `prefix` (no trailing slash, except
// the root mount "/"): "/static/css/a.css" under "/static" gives
// "css/a.css". nullopt when the path is not under the prefix. "/static"
// itself and "/static/" give "" (a directory: never listed).
std::optional<std::string_view> beneath_prefix(std::string_view path, std::string_view prefix);

enum class NameCheck {
  kOk,
  kRefused,  // "..", ".", an empty component, a backslash, a control byte
  kHidden,   // a component starting with '.' (".env", ".git/config")
};

// Checks a relative file name, component by component, before anything is
// opened. Refusal here is the first line; the kernel's RESOLVE_BENEATH (or
// the walk that replaces it) is the second.
NameCheck check_file_name(std::string_view name, bool allow_hidden);

}  // namespace cppgunicorn::static_files
