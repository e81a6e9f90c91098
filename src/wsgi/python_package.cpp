#include "wsgi/python_package.h"

#include <pybind11/embed.h>
#include <pybind11/stl.h>

#include "wsgi/objects.h"

namespace py = pybind11;

namespace cppgunicorn::wsgi {

namespace {

std::string& package_dir() {
  static std::string dir;
  return dir;
}

// The package from package_dir(), registered as `cppgunicorn` in
// sys.modules, as importlib's recipe for importing a source file directly
// does: its submodules are then found in that directory, whatever sys.path
// holds (a venv may have another version of the package installed).
void load_package_from_dir(const std::string& dir) {
  py::module_ util = py::module_::import("importlib.util");
  py::object spec = util.attr("spec_from_file_location")(
      "cppgunicorn", dir + "/__init__.py",
      py::arg("submodule_search_locations") = std::vector<std::string>{dir});
  if (spec.is_none()) {
    throw std::runtime_error("no Python package cppgunicorn in " + dir);
  }
  py::object module = util.attr("module_from_spec")(spec);
  py::dict modules = py::module_::import("sys").attr("modules");
  modules["cppgunicorn"] = module;
  try {
    spec.attr("loader").attr("exec_module")(module);
  } catch (...) {
    modules.attr("pop")("cppgunicorn", py::none());
    throw;
  }
}

}  // namespace

void set_package_dir(std::string dir) { package_dir() = std::move(dir); }

py::module_ package_module(const char* name) {
  py::dict modules = py::module_::import("sys").attr("modules");
  if (!modules.contains("cppgunicorn") && !package_dir().empty()) {
    load_package_from_dir(package_dir());
  }
  return py::module_::import((std::string("cppgunicorn.") + name).c_str());
}

void import_worker_modules(bool standard_library) {
  // The server's own objects (wsgi.input, start_response, the log_write
  // that hooks use), made once here rather than by each worker.
  objects_module();
  // Loading the app (ast, importlib), formatting a traceback of a failed
  // load or request, and the faulthandler every worker enables.
  package_module("_app_loader");
  py::module_::import("traceback");
  py::module_::import("faulthandler");
  // What a worker that exits runs for the app (Interpreter::run_exit_functions).
  py::module_::import("atexit");
  if (standard_library) package_module("_preimport").attr("import_shared")();
}

}  // namespace cppgunicorn::wsgi
