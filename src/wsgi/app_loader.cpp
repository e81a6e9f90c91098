#include "wsgi/app_loader.h"

#include <pybind11/embed.h>

#include "wsgi/python_package.h"

namespace py = pybind11;

namespace cppgunicorn::wsgi {

// The grammar and its messages are Python's: python/cppgunicorn/_app_loader.py.
py::object load_app(const std::string& uri) {
  py::module_ loader = package_module("_app_loader");
  try {
    return loader.attr("load")(uri);
  } catch (py::error_already_set& e) {
    if (e.matches(loader.attr("AppModuleNotFound"))) {
      throw AppModuleNotFound(py::str(e.value()).cast<std::string>());
    }
    if (e.matches(loader.attr("AppLoadError"))) {
      throw AppLoadError(py::str(e.value()).cast<std::string>());
    }
    throw;
  }
}

}  // namespace cppgunicorn::wsgi
