// Imports the WSGI application named by an app URI, with gunicorn's grammar:
// "module", "module:name", "pkg.module:obj.attr", "module:factory()",
// "module:factory('arg', key=1)" (literal arguments only).
#pragma once

#include <stdexcept>
#include <string>

namespace pybind11 { class object; }

namespace cppgunicorn::wsgi {

// The URI could not be turned into a callable; what() is one line for the
// user naming what is missing. Exit code 4 follows, as in gunicorn.
struct AppLoadError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The app's module itself does not exist. gunicorn lets that ImportError
// through as a worker boot error, so the exit code is 3, not 4.
struct AppModuleNotFound : AppLoadError {
  using AppLoadError::AppLoadError;
};

// Needs the GIL. Throws AppLoadError (AppModuleNotFound); other Python errors propagate as
// pybind11::error_already_set (their traceback is worth showing).
pybind11::object load_app(const std::string& uri);

}  // namespace cppgunicorn::wsgi
