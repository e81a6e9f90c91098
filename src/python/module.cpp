// cppgunicorn._server: the extension module that the installed `cppgunicorn`
// command runs. The Python that imported it is the interpreter the server
// uses: the master runs under it and every worker inherits it across fork,
// so a wheel needs no libpython of its own and nothing to find at run time
// (docs/packaging.md says why this and not a launcher).
//
// It also serves an app object in this process, no fork
// (InProcessServer below): cppgunicorn.serve() and cppgunicorn.Server,
// whose Python side is python/cppgunicorn/_inprocess.py.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/proc_title.h"
#include "config/settings_table.h"
#include "cppgunicorn/config.h"
#include "cppgunicorn/server.h"
#include "embed/app_object.h"

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

// Every setting's gunicorn name, for the keyword arguments of
// cppgunicorn.Server: an unknown name is a TypeError there, as an
// unexpected keyword argument is in Python.
std::vector<std::string> setting_names() {
  std::vector<std::string> names;
  for (const auto& s : cppgunicorn::config::settings_table()) names.emplace_back(s.name);
  return names;
}

// One in-process server (cppgunicorn::Mode::kInProcess) for an app object:
// the settings are checked when it is made, it binds and serves on a
// thread of its own from start(), and stop() may come from any thread.
// Every call that waits for the server does so without the GIL: the
// server's threads take it to call the app.
class InProcessServer {
 public:
  using Settings = std::vector<std::pair<std::string, std::vector<std::string>>>;

  InProcessServer(py::object app, const Settings& settings) {
    for (const auto& [name, values] : settings) {
      try {
        // One text is the command line's form (a comma list for bind and
        // the address lists); several are a list setting's items.
        if (values.size() == 1) {
          config_.set(name, values.front());
        } else {
          config_.set(name, values);
        }
      } catch (const cppgunicorn::ConfigError& e) {
        throw py::value_error(e.what());
      }
    }
    cppgunicorn::embed::set_app_object(config_, std::move(app));
  }

  ~InProcessServer() {
    // Stopping joins the server's thread, which may be waiting for the GIL
    // to finish an app call: wait without it. The Config (which holds the
    // app object) goes afterwards, with the GIL.
    if (server_) {
      py::gil_scoped_release released;
      server_.reset();
    }
  }

  InProcessServer(const InProcessServer&) = delete;
  InProcessServer& operator=(const InProcessServer&) = delete;

  void start() {
    if (server_) throw std::logic_error("this server has been started already");
    server_ = std::make_unique<cppgunicorn::Server>(config_);
    // Server::start releases the GIL while it waits for the server's thread
    // (which may take it to set the app up). Nothing is left listening
    // when it throws.
    try {
      server_->start();
    } catch (const cppgunicorn::ConfigError& e) {
      throw py::value_error(e.what());
    } catch (const cppgunicorn::ListenError& e) {
      PyErr_SetString(PyExc_OSError, e.what());
      throw py::error_already_set();
    }
  }

  // grace_ms < 0: graceful_timeout; 0: close every connection now.
  void stop(long long grace_ms) {
    if (!server_) return;
    py::gil_scoped_release released;
    server_->stop(std::chrono::milliseconds(grace_ms));
  }

  // The exit status once the server has ended (0: stopped as asked).
  int wait() {
    if (!server_) return 0;
    py::gil_scoped_release released;
    return server_->wait();
  }

  std::vector<std::string> addresses() const {
    return server_ ? server_->addresses() : std::vector<std::string>{};
  }

 private:
  cppgunicorn::Config config_;
  std::unique_ptr<cppgunicorn::Server> server_;
};

}  // namespace

PYBIND11_MODULE(_server, m) {
  m.doc() = "The cppgunicorn server, run by the cppgunicorn command and by cppgunicorn.serve().";
  m.attr("__version__") = CPPGUNICORN_VERSION;
  m.def("serve", &serve, py::arg("args"), py::arg("program") = std::vector<std::string>{},
        "Runs the server with command-line arguments (without the program name) "
        "in this process; returns the exit status.");
  m.def("version_line", &cppgunicorn::version_line,
        "What `cppgunicorn --version` prints.");
  m.def("setting_names", &setting_names, "Every setting's gunicorn name.");
  py::class_<InProcessServer>(m, "InProcessServer",
                              "One in-process server for a WSGI app object "
                              "(cppgunicorn.Server is the Python face of it).")
      .def(py::init<py::object, const InProcessServer::Settings&>(), py::arg("app"),
           py::arg("settings"))
      .def("start", &InProcessServer::start,
           "Binds, then serves on a thread of its own; returns once it serves.")
      .def("stop", &InProcessServer::stop, py::arg("grace_ms"),
           "Asks the server to stop (any thread); returns at once.")
      .def("wait", &InProcessServer::wait, "Waits for the server to end; its exit status.")
      .def("addresses", &InProcessServer::addresses, "The bound addresses.");
}
