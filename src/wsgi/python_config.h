// The Python side of configuration: executes gunicorn.conf.py (or
// python:module.name) in the master, as gunicorn does, and later calls the
// server hooks it defined. It owns the master's interpreter, which workers
// then inherit across fork (each child calls PyOS_AfterFork_Child through
// wsgi::ForkGuard before touching Python).
//
// Why here and not in src/config: src/config must not see Python, so it
// asks the config::PythonConfigReader interface; src/wsgi is the one place
// that holds Python objects, so the reader, the hook functions it keeps and
// the objects hooks receive (server, worker, req, resp) all live here.
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "config/sources.h"

namespace pybind11 {
class object;
}

namespace cppgunicorn::wsgi {

class Interpreter;

// What a hook's `worker` argument tells about one worker.
struct HookWorker {
  pid_t pid = 0;  // 0 before fork (pre_fork)
  int age = 0;
};

class PythonConfig : public config::PythonConfigReader {
 public:
  // `argv`: sys.argv of the master's interpreter.
  explicit PythonConfig(std::vector<std::string> argv);
  ~PythonConfig() override;
  PythonConfig(const PythonConfig&) = delete;
  PythonConfig& operator=(const PythonConfig&) = delete;

  std::vector<config::FileValue> read(const std::string& location,
                                      const std::vector<std::string>& setting_names) override;

  // Called once the configuration is final: resolves hooks given as
  // "module.function", builds the `server` object hooks receive, and
  // exports -e/--env into os.environ. Throws config::ConfigError for a hook
  // that cannot be imported.
  void configure(const config::Config& config, const std::map<std::string, std::string>& shown);

  // logconfig, logconfig_json, logconfig_dict: configures Python logging
  // (merged into gunicorn's defaults) and sends the error and access lines
  // to the gunicorn.error / gunicorn.access loggers. Throws ConfigError.
  void setup_logging(const config::Config& config);

  // --check-config / --print-config: loads the app (starting an
  // interpreter if none runs). Returns "" or the reason it failed.
  std::string check_app(const config::Config& config);

  // Whether `module` can be imported here (starting an interpreter if none
  // runs), without importing it: a worker class's package must be
  // installed before any worker is forked.
  bool module_available(const std::string& module);

  // Before the master forks: what every worker needs from Python is
  // imported now (see wsgi::import_worker_modules), starting the master's
  // interpreter first where none runs yet (the `cppgunicorn` executable),
  // so that the workers inherit it. `reload`: --reload's watcher too;
  // `standard_library`: the modules of python/cppgunicorn/_preimport.py.
  void import_worker_modules(bool reload, bool standard_library);

  // The process's hooks, or nullptr when no hook is configured. Valid in
  // the master and, after fork, in its workers.
  static PythonConfig* hooks();

  bool has(std::string_view hook) const;

  // Hooks; each takes the GIL, and an exception in a hook is logged with
  // its traceback and otherwise ignored. Arguments as in gunicorn.
  void server_hook(std::string_view hook);                 // hook(server)
  void worker_hook(std::string_view hook, const HookWorker& w, bool with_server);
  void nworkers_changed(int new_value, int old_value);     // old_value < 0: None
  void set_num_workers(int n);
  // In the master: server.WORKERS, gunicorn's {pid: worker} of the live
  // workers, as hooks (child_exit, nworkers_changed...) read it.
  void worker_spawned(const HookWorker& w);
  void worker_reaped(pid_t pid);
  // In a new worker: the `worker` object every later hook of this process
  // receives.
  void set_worker(const HookWorker& w);
  // In a worker whose config has worker_abort: SIGABRT (a --timeout) runs
  // it before the process dies.
  void install_worker_abort();
  // Request hooks, with the GIL held by the caller (wsgi::Exchange).
  void pre_request(const pybind11::object& environ);
  void post_request(const pybind11::object& environ, const std::string& status,
                    const std::vector<std::pair<std::string, std::string>>& headers);

 private:
  void start_interpreter();

  std::vector<std::string> argv_;
  std::unique_ptr<Interpreter> interpreter_;
  struct State;  // Python objects; destroyed with the GIL held, before the interpreter
  std::unique_ptr<State> state_;
  std::vector<std::string> hook_names_;
};

}  // namespace cppgunicorn::wsgi
