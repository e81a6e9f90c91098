#include "wsgi/reloader.h"

#include <pybind11/embed.h>
#include <pybind11/stl.h>

#include "log/logger.h"
#include "wsgi/interpreter.h"

namespace py = pybind11;

namespace cppgunicorn::wsgi {

namespace {

constexpr const char* kWatchSource = R"PY(
import glob, os, sys


class Watch:
    def __init__(self, extra):
        self.extra = list(extra)
        self.mtimes = {}
        self.check()

    def files(self):
        out = set()
        for module in list(sys.modules.values()):
            name = getattr(module, "__file__", None)
            if isinstance(name, str):
                out.add(name[:-1] if name.endswith(".pyc") else name)
        for pattern in self.extra:
            if any(c in pattern for c in "*?["):
                out.update(glob.glob(pattern, recursive=True))
            else:
                out.add(pattern)
        return out

    def check(self):
        for name in self.files():
            try:
                mtime = os.stat(name).st_mtime
            except OSError:
                continue
            old = self.mtimes.get(name)
            if old is None:
                self.mtimes[name] = mtime
            elif mtime > old:
                return name
        return ""
)PY";

}  // namespace

struct Reloader::State {
  py::object watch;
};

Reloader::Reloader(const std::vector<std::string>& extra_files) : state_(std::make_unique<State>()) {
  Gil gil;
  py::dict scope;
  scope["__builtins__"] = py::module_::import("builtins");
  py::exec(kWatchSource, scope);
  state_->watch = scope["Watch"](extra_files);
}

Reloader::~Reloader() {
  Gil gil;
  state_.reset();
}

std::string Reloader::changed() {
  Gil gil;
  try {
    return state_->watch.attr("check")().cast<std::string>();
  } catch (py::error_already_set& e) {
    log::error_log().warning(std::string("reload check failed: ") + e.what());
    return {};
  }
}

}  // namespace cppgunicorn::wsgi
