// The Python the server runs lives in modules of the `cppgunicorn` package
// (python/cppgunicorn/_*.py): the app loader, the config-file executor and
// hooks, logging, the reload watcher. This finds them in every way the
// server runs:
//  * the installed command: Python imported cppgunicorn._server, so the
//    package is in sys.modules already;
//  * a program that starts its own interpreter (the `cppgunicorn`
//    executable of a CMake build, the unit tests, C++ hosts): the package
//    is loaded from the directory set_package_dir() names (the source
//    tree's python/cppgunicorn, which that executable is built to name),
//    or else imported from sys.path (a wheel installed in its Python).
#pragma once

#include <string>

namespace pybind11 { class module_; }

namespace cppgunicorn::wsgi {

// Where the package's .py files are when no Python has imported it (see
// above). Before the first package_module() call.
void set_package_dir(std::string dir);

// cppgunicorn.<name>, imported on first use. Needs the GIL; a missing
// package is a pybind11::error_already_set (ModuleNotFoundError).
pybind11::module_ package_module(const char* name);

// What a worker needs to load the app, report its errors and run hooks,
// imported now: called in the master before it forks, so that a worker
// imports none of it (each import there is time of every boot, and fails
// once --user dropped the rights to read the standard library). Needs the
// GIL. `standard_library`: also the standard-library modules gunicorn's
// master has imported before it forks (python/cppgunicorn/_preimport.py),
// which the workers then share with the master instead of each importing
// its own copy.
void import_worker_modules(bool standard_library);

}  // namespace cppgunicorn::wsgi
