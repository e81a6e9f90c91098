// The in-process server's entry for a host that holds its WSGI app as a
// Python object (cppgunicorn.serve(app) in src/python/module.cpp) rather
// than an import string.
#pragma once

#include <pybind11/pybind11.h>

#include "cppgunicorn/config.h"

namespace cppgunicorn::embed {

// The server calls `app` instead of importing Config::set_app's module.
// Call with the GIL held. Only for Mode::kInProcess (the server refuses it
// for prefork: the object lives in this process's interpreter).
void set_app_object(Config& config, pybind11::object app);

}  // namespace cppgunicorn::embed
