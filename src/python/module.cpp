// cppgunicorn._server: the extension module that the installed `cppgunicorn`
// command runs. The Python that imported it is the interpreter the server
// uses: the master runs under it and every worker inherits it across fork,
// so a wheel needs no libpython of its own and nothing to find at run time
// (docs/packaging.md says why this and not a launcher).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "base/proc_title.h"
#include "cppgunicorn/server.h"

namespace py = pybind11;

namespace {

// Serves with gunicorn-style arguments until the master stops; returns its
// exit status. `program` is the command a USR2 upgrade re-executes.
int serve(std::vector<std::string> args, std::vector<std::string> program) {
  cppgunicorn::Server server(std::move(args));
  if (!program.empty()) server.set_program(std::move(program));
  // The title goes where the kernel put this process's argv (Python has its
  // own copy of the arguments).
  cppgunicorn::base::init_proc_title_from_kernel();
  // The master takes the GIL only to run Python (a config file, hooks,
  // --preload); its loop and the workers' run without it.
  py::gil_scoped_release released;
  return server.run();
}

}  // namespace

PYBIND11_MODULE(_server, m) {
  m.doc() = "The cppgunicorn server, run by the cppgunicorn command.";
  m.attr("__version__") = CPPGUNICORN_VERSION;
  m.def("serve", &serve, py::arg("args"), py::arg("program") = std::vector<std::string>{},
        "Runs the server with command-line arguments (without the program name) "
        "in this process; returns the exit status.");
  m.def("version_line", &cppgunicorn::version_line,
        "What `cppgunicorn --version` prints.");
}
