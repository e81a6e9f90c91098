#include "wsgi/interpreter.h"

#include <pybind11/embed.h>
#include <unistd.h>

#include <climits>
#include <filesystem>
#include <optional>
#include <stdexcept>

namespace py = pybind11;

namespace cppgunicorn::wsgi {

struct Interpreter::Impl {
  std::optional<py::scoped_interpreter> interpreter;
  std::optional<py::gil_scoped_release> released;
};

std::string Interpreter::home_python() {
  char self[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    self[n] = '\0';
    std::filesystem::path beside = std::filesystem::path(self).parent_path() / "python";
    std::error_code ec;
    if (std::filesystem::exists(beside, ec)) return beside.string();
  }
  return CPPGUNICORN_BUILD_PYTHON;
}

namespace {
void check(PyStatus status, const char* what) {
  if (PyStatus_Exception(status)) {
    std::string msg = std::string("cannot initialise Python (") + what + ")";
    if (status.err_msg) msg += std::string(": ") + status.err_msg;
    throw std::runtime_error(msg);
  }
}
}  // namespace

Interpreter::Interpreter(const InterpreterOptions& options) : impl_(std::make_unique<Impl>()) {
  PyConfig config;
  PyConfig_InitPythonConfig(&config);
  // Signals belong to our loop (and the master), not to Python's handlers.
  config.install_signal_handlers = 0;
  config.parse_argv = 0;
  // Setting the executable to the venv's python makes getpath find its
  // pyvenv.cfg: sys.prefix is the venv and its site-packages import,
  // whatever the current directory.
  std::string python = home_python();
  check(PyConfig_SetBytesString(&config, &config.program_name, python.c_str()), "program_name");
  check(PyConfig_SetBytesString(&config, &config.executable, python.c_str()), "executable");
  std::vector<const char*> argv;
  for (const auto& a : options.argv) argv.push_back(a.c_str());
  impl_->interpreter.emplace(&config, static_cast<int>(argv.size()), argv.data(),
                             /*add_program_dir_to_path=*/false);
  PyConfig_Clear(&config);

  prepare_for_app(options);
}

Interpreter::~Interpreter() {
  impl_->released.reset();
  impl_->interpreter.reset();
}

void Interpreter::prepare_for_app(const InterpreterOptions& options) {
  // gunicorn puts the app's directory first on sys.path, then --pythonpath.
  py::list path = py::module_::import("sys").attr("path");
  if (!options.app_dir.empty()) path.insert(0, options.app_dir);
  for (auto it = options.pythonpath.rbegin(); it != options.pythonpath.rend(); ++it) {
    path.insert(0, *it);
  }
  // A worker aborted for --timeout is stuck in Python: faulthandler shows
  // where, in the error log, before the process dies.
  py::module_ faulthandler = py::module_::import("faulthandler");
  if (options.fault_fd >= 0) {
    faulthandler.attr("enable")(py::arg("file") = options.fault_fd, py::arg("all_threads") = true);
  } else {
    faulthandler.attr("enable")(py::arg("all_threads") = true);
  }
}

bool Interpreter::running() { return Py_IsInitialized() != 0; }

void Interpreter::release_gil() { impl_->released.emplace(); }

Gil::Gil() : state_(static_cast<int>(PyGILState_Ensure())) {}
Gil::~Gil() { PyGILState_Release(static_cast<PyGILState_STATE>(state_)); }

PythonThread::PythonThread() : state_(static_cast<int>(PyGILState_Ensure())) {
  // The outer Ensure keeps the thread state alive; inner Gil scopes then
  // only take and drop the GIL.
  saved_ = PyEval_SaveThread();
}

PythonThread::~PythonThread() {
  PyEval_RestoreThread(static_cast<PyThreadState*>(saved_));
  PyGILState_Release(static_cast<PyGILState_STATE>(state_));
}

ForkGuard::ForkGuard() : state_(static_cast<int>(PyGILState_Ensure())) { PyOS_BeforeFork(); }

void ForkGuard::in_parent() {
  PyOS_AfterFork_Parent();
  PyGILState_Release(static_cast<PyGILState_STATE>(state_));
}

void ForkGuard::in_child() {
  // The documented first call in a child of a Python process.
  PyOS_AfterFork_Child();
  PyGILState_Release(static_cast<PyGILState_STATE>(state_));
}

}  // namespace cppgunicorn::wsgi
