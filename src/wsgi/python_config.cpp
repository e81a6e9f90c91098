#include "wsgi/python_config.h"

#include <pybind11/embed.h>
#include <pybind11/stl.h>
#include <unistd.h>

#include <algorithm>

#include "config/settings_table.h"
#include "log/access_log.h"
#include "log/logger.h"
#include "wsgi/app_loader.h"
#include "wsgi/exchange.h"
#include "wsgi/interpreter.h"
#include "wsgi/objects.h"
#include "wsgi/python_package.h"

namespace py = pybind11;

namespace cppgunicorn::wsgi {

namespace {

PythonConfig* g_hooks = nullptr;
// The reader whose Python logging the logs go to (logconfig*).
PythonConfig* g_logging = nullptr;
// Its cppgunicorn._logging module.
py::module_* g_logging_module = nullptr;

void python_error_sink(log::Level level, std::string_view message) {
  if (g_logging_module == nullptr) return;
  Gil gil;
  try {
    g_logging_module->attr("log_error")(static_cast<int>(level), std::string(message));
  } catch (py::error_already_set&) {
    // Never back into the error log: that is this sink.
  }
}

void python_access_sink(std::string_view line) {
  if (g_logging_module == nullptr) return;
  Gil gil;
  try {
    g_logging_module->attr("log_access")(std::string(line));
  } catch (py::error_already_set&) {
  }
}

std::string python_error_text(py::error_already_set& e) {
  std::string text;
  try {
    py::object lines = py::module_::import("traceback")
                           .attr("format_exception")(e.type(), e.value(), e.trace());
    text = py::str("").attr("join")(lines).cast<std::string>();
  } catch (...) {
    text = e.what();
  }
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

}  // namespace

// The package's modules this reader drives (python/cppgunicorn/).
namespace {

// A setting's text as the Python value gunicorn's cfg would hold.
py::object typed_value(const config::Setting& s, const std::string& text) {
  if (text == "None") return py::none();
  auto split = [](const std::string& t) {
    py::list out;
    size_t start = 0;
    while (start <= t.size() && !t.empty()) {
      size_t comma = t.find(',', start);
      if (comma == std::string::npos) comma = t.size();
      if (comma > start) out.append(py::str(t.substr(start, comma - start)));
      start = comma + 1;
    }
    return out;
  };
  switch (s.kind) {
    case config::ValueKind::kBool: return py::bool_(text == "True" || text == "true");
    case config::ValueKind::kInt:
      try {
        return py::int_(std::stoll(text));
      } catch (const std::exception&) {
        return py::str(text);
      }
    case config::ValueKind::kList: return split(text);
    case config::ValueKind::kDict: {
      py::dict out;
      for (py::handle item : split(text)) {
        std::string kv = py::str(item);
        size_t eq = kv.find('=');
        if (eq != std::string::npos) out[py::str(kv.substr(0, eq))] = kv.substr(eq + 1);
      }
      return out;
    }
    default: return py::str(text);
  }
}

// gunicorn's cfg has every setting, defaults included (hooks read
// server.cfg.bind, worker.cfg.timeout...): those left at their default get
// it here, typed; hook settings are left to the hooks.
void fill_cfg_defaults(py::object cfg, const config::Config& config,
                       const std::map<std::string, std::string>& shown) {
  for (const config::Setting& s : config::settings_table()) {
    if (s.kind == config::ValueKind::kCallable) continue;
    std::string name(s.name);
    if (shown.count(name) != 0 || name == "workers") continue;
    std::string text(s.default_text);
    if (name == "bind") {
      text.clear();
      for (const std::string& b : config.bind_or_default()) text += (text.empty() ? "" : ",") + b;
    }
    cfg.attr(name.c_str()) = typed_value(s, text);
  }
}

}  // namespace

struct PythonConfig::State {
  py::module_ config;   // _config: reading files, resolving hooks
  py::module_ hooks;    // _hooks: calling them, and the objects they receive
  py::module_ logging;  // _logging, once logconfig* is set
};

PythonConfig::PythonConfig(std::vector<std::string> argv) : argv_(std::move(argv)) {}

PythonConfig::~PythonConfig() {
  if (g_hooks == this) g_hooks = nullptr;
  if (g_logging == this) {
    log::error_log().set_sink(nullptr);
    log::set_access_sink(nullptr);
    g_logging = nullptr;
    g_logging_module = nullptr;
  }
  if (state_) {
    Gil gil;
    state_.reset();
  }
  interpreter_.reset();
}

PythonConfig* PythonConfig::hooks() { return g_hooks; }

void PythonConfig::start_interpreter() {
  if (state_) return;
  InterpreterOptions options;
  options.argv = argv_;
  // gunicorn puts the current directory on sys.path before reading the
  // config, so the file can import the project's modules.
  char cwd[4096];
  if (::getcwd(cwd, sizeof cwd) != nullptr) options.app_dir = cwd;
  if (!Interpreter::running()) {
    interpreter_ = std::make_unique<Interpreter>(options);
    interpreter_->release_gil();
  } else {
    // The Python that runs us (the installed command): the same path.
    Gil gil;
    Interpreter::prepare_for_app(options);
  }
  Gil gil;
  // The hooks' log writes through _cppgunicorn.log_write.
  objects_module();
  auto state = std::make_unique<State>();
  state->config = package_module("_config");
  state->hooks = package_module("_hooks");
  state_ = std::move(state);
}

void PythonConfig::import_worker_modules(bool reload, bool standard_library) {
  if (!Interpreter::running()) {
    InterpreterOptions options;
    options.argv = argv_;
    interpreter_ = std::make_unique<Interpreter>(options);
    interpreter_->release_gil();
  }
  Gil gil;
  wsgi::import_worker_modules(standard_library);
  if (reload) package_module("_reloader");
}

std::vector<config::FileValue> PythonConfig::read(const std::string& location,
                                                  const std::vector<std::string>& setting_names) {
  start_interpreter();
  Gil gil;
  std::vector<config::FileValue> out;
  try {
    py::list items = state_->config.attr("read")(location, setting_names);
    for (py::handle item : items) {
      py::tuple t = py::reinterpret_borrow<py::tuple>(item);
      config::FileValue v;
      v.name = t[0].cast<std::string>();
      v.values = t[1].cast<std::vector<std::string>>();
      v.python_object = t[2].cast<bool>();
      out.push_back(std::move(v));
    }
  } catch (py::error_already_set& e) {
    throw config::ConfigError("Failed to read config file: " + location + "\n" +
                              python_error_text(e));
  }
  return out;
}

void PythonConfig::configure(const config::Config& config,
                             const std::map<std::string, std::string>& shown) {
  std::vector<std::string> names;
  for (const auto& [name, text] : config.hooks) names.push_back(name);
  if (!state_ && names.empty()) {  // no Python in the master
    hook_names_.clear();
    g_hooks = nullptr;
    return;
  }
  start_interpreter();
  Gil gil;
  for (const auto& [name, text] : config.hooks) {
    if (text.empty()) continue;  // an object the file defined
    try {
      state_->config.attr("resolve")(name, text);
    } catch (py::error_already_set& e) {
      throw config::ConfigError("Invalid value for " + name + ": '" + text + "' (" +
                                py::str(e.value()).cast<std::string>() + ")");
    }
  }
  py::dict values;
  for (const auto& [k, v] : shown) values[py::str(k)] = v;
  values["workers"] = std::to_string(config.workers);
  py::dict env;
  for (const std::string& e : config.raw_env) {
    auto eq = e.find('=');
    env[py::str(e.substr(0, eq))] = e.substr(eq + 1);
  }
  state_->config.attr("configure")(values, env);
  py::object server = state_->hooks.attr("server");
  if (!py::hasattr(server, "WORKERS")) server.attr("WORKERS") = py::dict();
  fill_cfg_defaults(server.attr("cfg"), config, shown);
  hook_names_ = std::move(names);
  g_hooks = hook_names_.empty() ? nullptr : this;
}

void PythonConfig::setup_logging(const config::Config& config) {
  if (config.logconfig.empty() && config.logconfig_json.empty() && config.logconfig_dict.empty()) {
    return;
  }
  start_interpreter();
  Gil gil;
  bool configured = false;
  try {
    if (!state_->logging) state_->logging = package_module("_logging");
    configured = state_->logging
                     .attr("setup_logging")(state_->config.attr("logconfig_dict"),
                                            config.logconfig_json, config.logconfig)
                     .cast<bool>();
  } catch (py::error_already_set& e) {
    throw config::ConfigError("Invalid logging configuration: " +
                              py::str(e.value()).cast<std::string>());
  }
  if (!configured) {
    // logconfig_dict given as text (TOML): there is no dict object to apply.
    log::error_log().warning("logconfig_dict is only applied from a Python config file; "
                             "use logconfig_json with a TOML config");
    return;
  }
  g_logging = this;
  g_logging_module = &state_->logging;
  log::error_log().set_sink(python_error_sink);
  log::set_access_sink(python_access_sink);
}

std::string PythonConfig::check_app(const config::Config& config) {
  start_interpreter();
  Gil gil;
  InterpreterOptions options;
  options.pythonpath = config.pythonpath;
  char cwd[4096];
  if (::getcwd(cwd, sizeof cwd) != nullptr) options.app_dir = cwd;
  try {
    Interpreter::prepare_for_app(options);
    load_app(config.app_uri);
  } catch (const AppLoadError& e) {
    return e.what();
  } catch (py::error_already_set& e) {
    return "Error while loading the application:\n" + python_error_text(e);
  }
  return {};
}

bool PythonConfig::module_available(const std::string& module) {
  start_interpreter();
  Gil gil;
  return !py::module_::import("importlib.util").attr("find_spec")(module).is_none();
}

bool PythonConfig::has(std::string_view hook) const {
  return std::find(hook_names_.begin(), hook_names_.end(), hook) != hook_names_.end();
}

void PythonConfig::server_hook(std::string_view hook) {
  if (!has(hook)) return;
  Gil gil;
  try {
    state_->hooks.attr("call")(std::string(hook), state_->hooks.attr("server"));
  } catch (py::error_already_set& e) {
    e.restore();
    log_python_error("Exception in " + std::string(hook) + " hook");
  }
}

void PythonConfig::worker_hook(std::string_view hook, const HookWorker& w, bool with_server) {
  if (!has(hook)) return;
  Gil gil;
  try {
    state_->hooks.attr("call_worker")(std::string(hook), static_cast<long>(w.pid), w.age, with_server);
  } catch (py::error_already_set& e) {
    e.restore();
    log_python_error("Exception in " + std::string(hook) + " hook");
  }
}

void PythonConfig::nworkers_changed(int new_value, int old_value) {
  // server.num_workers follows the target whether or not the hook is set.
  set_num_workers(new_value);
  if (!has("nworkers_changed")) return;
  Gil gil;
  try {
    py::object old = old_value < 0 ? py::object(py::none()) : py::object(py::int_(old_value));
    py::object server = state_->hooks.attr("server");
    server.attr("num_workers") = new_value;
    state_->hooks.attr("call")("nworkers_changed", server, new_value, old);
  } catch (py::error_already_set& e) {
    e.restore();
    log_python_error("Exception in nworkers_changed hook");
  }
}

void PythonConfig::set_num_workers(int n) {
  if (!state_) return;
  Gil gil;
  state_->hooks.attr("server").attr("num_workers") = n;
}

void PythonConfig::worker_spawned(const HookWorker& w) {
  if (!state_) return;
  Gil gil;
  try {
    state_->hooks.attr("server").attr("WORKERS")[py::int_(w.pid)] =
        state_->hooks.attr("make_worker")(static_cast<long>(w.pid), w.age);
  } catch (py::error_already_set& e) {
    e.restore();
    log_python_error("Cannot record the worker in server.WORKERS");
  }
}

void PythonConfig::worker_reaped(pid_t pid) {
  if (!state_) return;
  Gil gil;
  state_->hooks.attr("server").attr("WORKERS").attr("pop")(py::int_(pid), py::none());
}

void PythonConfig::set_worker(const HookWorker& w) {
  if (!state_) return;
  Gil gil;
  state_->hooks.attr("set_worker")(static_cast<long>(w.pid), w.age);
}

void PythonConfig::install_worker_abort() {
  if (!has("worker_abort")) return;
  Gil gil;
  try {
    state_->hooks.attr("install_worker_abort")();
  } catch (py::error_already_set& e) {
    e.restore();
    log_python_error("Cannot install the worker_abort hook");
  }
}

void PythonConfig::pre_request(const py::object& environ) {
  if (!has("pre_request") && !has("post_request")) return;
  try {
    state_->hooks.attr("pre_request")(environ);
  } catch (py::error_already_set& e) {
    e.restore();
    log_python_error("Exception in pre_request hook");
  }
}

void PythonConfig::post_request(const py::object& environ, const std::string& status,
                                const std::vector<std::pair<std::string, std::string>>& headers) {
  if (!has("post_request")) return;
  try {
    state_->hooks.attr("post_request")(environ, status, headers);
  } catch (py::error_already_set& e) {
    e.restore();
    log_python_error("Exception in post_request hook");
  }
}

}  // namespace cppgunicorn::wsgi
