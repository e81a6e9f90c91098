#include "wsgi/interpreter.h"

#include <pybind11/embed.h>
#include <unistd.h>

#include <climits>
#include <cstring>
#include <filesystem>
#include <optional>
#include <stdexcept>

namespace py = pybind11;

extern char** environ;

namespace cppgunicorn::wsgi {

struct Interpreter::Impl {
  std::optional<py::scoped_interpreter> interpreter;
  std::optional<py::gil_scoped_release> released;
};

namespace {
std::string& default_python() {
  static std::string path = "python3";
  return path;
}
}  // namespace

void Interpreter::set_default_python(std::string path) { default_python() = std::move(path); }

std::string Interpreter::python_version() {
  // Py_GetVersion needs no running interpreter: "3.11.7 (main, ...) [GCC ...]".
  std::string v = Py_GetVersion();
  return v.substr(0, v.find(' '));
}

std::string Interpreter::home_python() {
  char self[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    self[n] = '\0';
    std::filesystem::path beside = std::filesystem::path(self).parent_path() / "python";
    std::error_code ec;
    if (std::filesystem::exists(beside, ec)) return beside.string();
  }
  return default_python();
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
  // An inherited interpreter read the environment when it started: what
  // the master set or removed since (-e, LISTEN_FDS) must show in os.environ.
  sync_environment();
  // gunicorn puts the app's directory first on sys.path, then --pythonpath.
  py::list path = py::module_::import("sys").attr("path");
  if (!options.app_dir.empty()) path.insert(0, options.app_dir);
  for (auto it = options.pythonpath.rbegin(); it != options.pythonpath.rend(); ++it) {
    path.insert(0, *it);
  }
  // A worker aborted for --timeout is stuck in Python: faulthandler shows
  // where, in the error log, before the process dies.
  if (!options.enable_faulthandler) return;
  py::module_ faulthandler = py::module_::import("faulthandler");
  if (options.fault_fd >= 0) {
    faulthandler.attr("enable")(py::arg("file") = options.fault_fd, py::arg("all_threads") = true);
  } else {
    faulthandler.attr("enable")(py::arg("all_threads") = true);
  }
}

void Interpreter::sync_environment() {
  if (!running()) return;
  Gil gil;
  py::dict current;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const char* eq = std::strchr(*e, '=');
    if (eq == nullptr || eq == *e) continue;
    current[py::bytes(*e, static_cast<size_t>(eq - *e))] = py::bytes(eq + 1);
  }
  // os.environb shares os.environ's data; its setters call putenv/unsetenv
  // with what the C environment already holds.
  py::object environb = py::module_::import("os").attr("environb");
  for (py::handle key : py::list(environb.attr("keys")())) {
    if (!current.contains(key)) environb.attr("pop")(key, py::none());
  }
  for (auto [key, value] : current) {
    if (!environb.attr("get")(key).equal(value)) environb[key] = value;
  }
}

void Interpreter::run_exit_functions() {
  Gil gil;
  try {
    py::module_::import("atexit").attr("_run_exitfuncs")();
  } catch (py::error_already_set& e) {
    e.restore();
    PyErr_Print();
  }
  py::module_ sys = py::module_::import("sys");
  for (const char* name : {"stdout", "stderr"}) {
    try {
      py::object stream = sys.attr(name);
      if (!stream.is_none()) stream.attr("flush")();
    } catch (py::error_already_set&) {
      PyErr_Clear();
    }
  }
}

bool Interpreter::running() { return Py_IsInitialized() != 0; }

void Interpreter::freeze_objects() {
  Gil gil;
  try {
    py::module_::import("gc").attr("freeze")();
  } catch (py::error_already_set& e) {
    // gc is built in and freeze() cannot fail; should it, the workers only
    // share less.
    e.restore();
    PyErr_Print();
  }
}

void Interpreter::release_gil() { impl_->released.emplace(); }

Gil::Gil() : state_(static_cast<int>(PyGILState_Ensure())) {}
Gil::~Gil() { PyGILState_Release(static_cast<PyGILState_STATE>(state_)); }

void HeldGil::take() {
  state_ = static_cast<int>(PyGILState_Ensure());
  held_ = true;
}

void HeldGil::drop() {
  held_ = false;
  PyGILState_Release(static_cast<PyGILState_STATE>(state_));
}

GilReleasedIfHeld::GilReleasedIfHeld() {
  if (Py_IsInitialized() && PyGILState_Check()) saved_ = PyEval_SaveThread();
}

GilReleasedIfHeld::~GilReleasedIfHeld() {
  if (saved_ != nullptr) PyEval_RestoreThread(static_cast<PyThreadState*>(saved_));
}

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
