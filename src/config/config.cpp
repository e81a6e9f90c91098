#include "config/config.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <initializer_list>

namespace cppgunicorn::config {

WorkerKind worker_kind_of(const std::string& worker_class) {
  // gunicorn's short names, class paths and egg: spellings. gevent_wsgi and
  // gevent_pywsgi are gunicorn's gevent worker on gevent's own HTTP server:
  // the app sees the same patched, one-greenlet-per-request world.
  auto is_any = [&](std::initializer_list<const char*> names) {
    for (const char* n : names) {
      if (worker_class == n) return true;
    }
    return false;
  };
  if (is_any({"sync", "gthread", "gunicorn.workers.sync.SyncWorker",
              "gunicorn.workers.gthread.ThreadWorker", "egg:gunicorn#sync",
              "egg:gunicorn#gthread"})) {
    return WorkerKind::kLoop;
  }
  if (is_any({"gevent", "gevent_wsgi", "gevent_pywsgi", "gunicorn.workers.ggevent.GeventWorker",
              "gunicorn.workers.ggevent.GeventPyWSGIWorker", "egg:gunicorn#gevent",
              "egg:gunicorn#gevent_wsgi", "egg:gunicorn#gevent_pywsgi"})) {
    return WorkerKind::kGevent;
  }
  if (is_any({"eventlet", "gunicorn.workers.geventlet.EventletWorker", "egg:gunicorn#eventlet"})) {
    return WorkerKind::kEventlet;
  }
  return WorkerKind::kUnknown;
}

std::vector<std::string> Config::bind_or_default() const {
  if (!bind.empty()) return bind;
  // gunicorn: with no --bind, $PORT (Heroku and friends) means 0.0.0.0:$PORT.
  if (const char* port = std::getenv("PORT"); port != nullptr && *port != '\0') {
    return {std::string("0.0.0.0:") + port};
  }
  return {"127.0.0.1:8000"};
}

std::string Config::control_socket_path() const {
  std::string path = control_socket;
  if (path.empty()) {
    // gunicorn's _get_default_control_socket: $XDG_RUNTIME_DIR if it is a
    // directory, else ~/.gunicorn (made when the socket is opened).
    struct stat st {};
    const char* xdg = std::getenv("XDG_RUNTIME_DIR");
    if (xdg != nullptr && *xdg != '\0' && ::stat(xdg, &st) == 0 && S_ISDIR(st.st_mode)) {
      path = std::string(xdg) + "/gunicorn.ctl";
    } else {
      std::string home;
      if (const char* h = std::getenv("HOME"); h != nullptr && *h != '\0') {
        home = h;
      } else if (const passwd* pw = ::getpwuid(::getuid()); pw != nullptr) {
        home = pw->pw_dir;
      }
      path = home + "/.gunicorn/gunicorn.ctl";
    }
  }
  if (path[0] != '/') {
    char cwd[4096];
    if (::getcwd(cwd, sizeof cwd) != nullptr) path = std::string(cwd) + "/" + path;
  }
  return path;
}

std::string Config::worker_class_str() const {
  bool is_sync = worker_class == "sync" || worker_class.ends_with("SyncWorker");
  return is_sync && threads > 1 ? "gthread" : worker_class;
}

std::string Config::green_backend() const {
  switch (worker_kind()) {
    case WorkerKind::kGevent: return "gevent";
    case WorkerKind::kEventlet: return "eventlet";
    default: return "";
  }
}

}  // namespace cppgunicorn::config
