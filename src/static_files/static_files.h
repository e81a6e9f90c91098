// Static files served by the worker without Python: --static-map
// URL_PREFIX=DIRECTORY. Given a parsed request, decides the whole answer
// (status, headers, which bytes of which open file); the connection only
// writes it. Never sees a socket or a Python object.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/unique_fd.h"
#include "http/request.h"

namespace cppgunicorn::static_files {

struct MountPoint {
  std::string url_prefix;  // "/static" (no trailing slash), or "/"
  std::string directory;   // as configured, for messages
};

struct Options {
  // A name that is not a file beneath the mount goes to the app instead
  // of a 404 (--static-fallthrough).
  bool fallthrough = false;
  // Names with a component starting with '.' are served (--static-allow-hidden).
  bool allow_hidden = false;
  // Cache-Control of names without a content hash ("": none); hashed
  // names are "public, max-age=31536000, immutable".
  std::string cache_control = "public, max-age=60";
};

struct Answer {
  enum class Kind {
    kNotStatic,  // under no mount: the app's
    kToApp,      // under a mount, no such file, and fallthrough is on
    kRespond,    // answer with what follows
  };
  Kind kind = Kind::kNotStatic;
  std::string status;          // "200 OK"
  http::HeaderList headers;    // all but Content-Length and the connection's own
  std::string_view body;       // a short text body (errors), or empty
  base::UniqueFd file;         // the file whose bytes `offset`, `length` follow
  uint64_t offset = 0;
  uint64_t length = 0;         // Content-Length: of `file`, or of `body`
  bool close_connection = false;  // out of descriptors: shed this client
};

class StaticFiles {
 public:
  // Opens each mount's directory (O_PATH): names are resolved beneath
  // these descriptors, so a directory renamed or replaced after start is
  // not followed. Throws std::runtime_error naming the directory.
  StaticFiles(std::vector<MountPoint> mounts, Options options);

  Answer answer(const http::Request& request) const;

  struct Mount {
    MountPoint point;
    base::UniqueFd dir;
  };
  const std::vector<Mount>& mounts() const { return mounts_; }

 private:
  Answer not_found_or_app(int status) const;
  void respond_with_file(const http::Request& request, const std::string& name, Answer& out,
                         struct stat st, base::UniqueFd file) const;

  std::vector<Mount> mounts_;  // longest prefix first
  Options options_;
};

}  // namespace cppgunicorn::static_files
