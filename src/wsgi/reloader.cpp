#include "wsgi/reloader.h"

#include <pybind11/embed.h>
#include <pybind11/stl.h>

#include "log/logger.h"
#include "wsgi/interpreter.h"
#include "wsgi/python_package.h"

namespace py = pybind11;

namespace cppgunicorn::wsgi {

struct Reloader::State {
  py::object watch;
};

Reloader::Reloader(const std::vector<std::string>& extra_files) : state_(std::make_unique<State>()) {
  Gil gil;
  // python/cppgunicorn/_reloader.py
  state_->watch = package_module("_reloader").attr("Watch")(extra_files);
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
