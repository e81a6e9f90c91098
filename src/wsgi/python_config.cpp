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

namespace py = pybind11;

namespace cppgunicorn::wsgi {

namespace {

// Executing a config file exactly as gunicorn's Application does, turning
// its module-level settings into text, and the objects hooks receive.
constexpr const char* kConfigSource = R"PY(
import importlib, importlib.machinery, importlib.util, inspect, os, sys, traceback, types

hooks = {}
# Hooks read from a file or resolved from text, in force once configure()
# accepts the whole configuration (a HUP whose config fails keeps the old).
_pending_hooks = {}
logconfig_dict = None


class Log:
    """What hooks use as server.log / worker.log: the server's error log."""

    @staticmethod
    def _format(msg, args):
        text = str(msg)
        if args:
            try:
                text = text % args
            except Exception:
                pass
        return text

    def _emit(self, level, msg, args):
        _log_write(level, self._format(msg, args))

    def debug(self, msg, *args, **kwargs): self._emit(10, msg, args)
    def info(self, msg, *args, **kwargs): self._emit(20, msg, args)
    def warning(self, msg, *args, **kwargs): self._emit(30, msg, args)
    warn = warning
    def error(self, msg, *args, **kwargs): self._emit(40, msg, args)
    def critical(self, msg, *args, **kwargs): self._emit(50, msg, args)

    def exception(self, msg, *args, **kwargs):
        _log_write(40, self._format(msg, args) + "\n" + traceback.format_exc().rstrip())

    def log(self, level, msg, *args, **kwargs):
        self._emit(int(level), msg, args)

    def reopen_files(self): pass
    def close_on_exec(self): pass


log = Log()
server = types.SimpleNamespace(log=log, pid=os.getpid(), cfg=types.SimpleNamespace(),
                               num_workers=1, proc_name="", app=None)
worker = None


def read(location, names):
    global _pending_hooks
    _pending_hooks = {}
    wanted = set(names)
    if location.startswith("python:"):
        ns = vars(importlib.import_module(location[len("python:"):]))
    else:
        filename = location[len("file:"):] if location.startswith("file:") else location
        name = "__config__"
        if os.path.splitext(filename)[1] in (".py", ".pyc"):
            spec = importlib.util.spec_from_file_location(name, filename)
        else:
            loader = importlib.machinery.SourceFileLoader(name, filename)
            spec = importlib.util.spec_from_file_location(name, filename, loader=loader)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
        ns = vars(mod)
    out = []
    for key, value in list(ns.items()):
        if key not in wanted or value is None:
            continue
        if isinstance(value, bool):
            out.append((key, ["true" if value else "false"], False))
        elif isinstance(value, (int, float, str)):
            out.append((key, [str(value)], False))
        elif isinstance(value, (list, tuple, set, frozenset)):
            out.append((key, [str(v) for v in value], False))
        elif isinstance(value, dict):
            if key == "logconfig_dict":
                global logconfig_dict
                logconfig_dict = value
            out.append((key, [",".join("%s=%s" % kv for kv in value.items())], False))
        elif inspect.isclass(value):
            out.append((key, [value.__module__ + "." + value.__qualname__], False))
        elif callable(value):
            _pending_hooks[key] = value
            out.append((key, ["<%s()>" % getattr(value, "__qualname__", type(value).__name__)], True))
        else:
            out.append((key, [str(value)], False))
    return out


def resolve(name, path):
    module_name, _, attr = path.rpartition(".")
    _pending_hooks[name] = getattr(importlib.import_module(module_name), attr)


def _typed(name, text):
    if text in ("true", "True"):
        return True
    if text in ("false", "False"):
        return False
    if name in ("bind", "raw_env", "forwarded_allow_ips", "forwarder_headers"):
        return [t for t in text.split(",") if t]
    try:
        return int(text)
    except ValueError:
        return text


def configure(values, env):
    global hooks
    hooks = dict(_pending_hooks)
    server.cfg = types.SimpleNamespace(**{k: _typed(k, v) for k, v in values.items()})
    server.proc_name = values.get("proc_name") or values.get("default_proc_name", "")
    for k, v in env.items():
        os.environ[k] = v


# gunicorn's CONFIG_DEFAULTS, which a logconfig_dict / logconfig_json updates.
_LOG_DEFAULTS = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "INFO", "handlers": ["console"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["error_console"], "propagate": True,
                           "qualname": "gunicorn.error"},
        "gunicorn.access": {"level": "INFO", "handlers": ["console"], "propagate": True,
                            "qualname": "gunicorn.access"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "generic",
                    "stream": "ext://sys.stdout"},
        "error_console": {"class": "logging.StreamHandler", "formatter": "generic",
                          "stream": "ext://sys.stderr"},
    },
    "formatters": {
        "generic": {"format": "%(asctime)s [%(process)d] [%(levelname)s] %(message)s",
                    "datefmt": "[%Y-%m-%d %H:%M:%S %z]", "class": "logging.Formatter"},
    },
}
_error_logger = None
_access_logger = None


def setup_logging(json_path, file_path):
    import json
    import logging
    import logging.config
    global _error_logger, _access_logger
    if logconfig_dict:
        config = dict(_LOG_DEFAULTS)
        config.update(logconfig_dict)
        logging.config.dictConfig(config)
    elif json_path:
        if not os.path.exists(json_path):
            raise ValueError("Invalid value for logconfig_json: %r (no such file)" % json_path)
        config = dict(_LOG_DEFAULTS)
        with open(json_path) as f:
            config.update(json.load(f))
        logging.config.dictConfig(config)
    elif file_path:
        if not os.path.exists(file_path):
            raise ValueError("Invalid value for logconfig: %r (no such file)" % file_path)
        defaults = {"__file__": file_path, "here": os.path.dirname(file_path)}
        logging.config.fileConfig(file_path, defaults=defaults, disable_existing_loggers=False)
    else:
        return False
    _error_logger = logging.getLogger("gunicorn.error")
    _access_logger = logging.getLogger("gunicorn.access")
    return True


def log_error(level, message):
    _error_logger.log(level, message)


def log_access(line):
    _access_logger.info(line)


def _arity(fn):
    try:
        return len(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return 4


def call(name, *args):
    fn = hooks.get(name)
    if fn is None:
        return
    try:
        if name == "post_request" and _arity(fn) < 4:
            args = args[:_arity(fn)]
        fn(*args)
    except Exception:
        log.exception("Exception in %s hook", name)


def make_worker(pid, age):
    return types.SimpleNamespace(pid=pid or "[booting]", ppid=os.getpid() if not pid else os.getppid(),
                                 age=age, log=log, cfg=server.cfg, alive=True, booted=True,
                                 aborted=False, nr=0, tmp=None, app=server.app)


def set_worker(pid, age):
    global worker
    server.pid = os.getppid()
    worker = make_worker(pid, age)


def call_worker(name, pid, age, with_server):
    w = make_worker(pid, age) if worker is None or worker.pid != pid else worker
    if with_server:
        call(name, server, w)
    else:
        call(name, w)


def install_worker_abort():
    import faulthandler, signal

    def on_abort(signum, frame):
        # faulthandler would have printed where the worker was stuck.
        faulthandler.dump_traceback(all_threads=True)
        worker.aborted = True
        call("worker_abort", worker)
        os._exit(1)

    signal.signal(signal.SIGABRT, on_abort)


class _Headers(list):
    pass


def _request(environ):
    headers = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers.append((key[5:].replace("_", "-"), value))
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            headers.append((key.replace("_", "-"), value))
    proto = environ.get("SERVER_PROTOCOL", "HTTP/1.1")
    try:
        version = tuple(int(p) for p in proto.split("/", 1)[1].split("."))
    except Exception:
        version = (1, 1)
    uri = environ.get("RAW_URI", "")
    return types.SimpleNamespace(
        method=environ.get("REQUEST_METHOD"), uri=uri, path=uri.split("?", 1)[0],
        query=environ.get("QUERY_STRING", ""), version=version, headers=headers,
        scheme=environ.get("wsgi.url_scheme", "http"),
        remote_addr=environ.get("REMOTE_ADDR"))


def pre_request(environ):
    req = _request(environ)
    environ["cppgunicorn.hook_request"] = req
    call("pre_request", worker, req)


def post_request(environ, status, headers):
    req = environ.pop("cppgunicorn.hook_request", None) or _request(environ)
    try:
        code = int(status.split(None, 1)[0])
    except Exception:
        code = None
    resp = types.SimpleNamespace(status=status, status_code=code, headers=list(headers))
    call("post_request", worker, req, environ, resp)
)PY";

PythonConfig* g_hooks = nullptr;
// The reader whose Python logging the logs go to (logconfig*).
PythonConfig* g_logging = nullptr;
py::dict* g_logging_ns = nullptr;

void python_error_sink(log::Level level, std::string_view message) {
  if (g_logging_ns == nullptr) return;
  Gil gil;
  try {
    (*g_logging_ns)["log_error"](static_cast<int>(level), std::string(message));
  } catch (py::error_already_set&) {
    // Never back into the error log: that is this sink.
  }
}

void python_access_sink(std::string_view line) {
  if (g_logging_ns == nullptr) return;
  Gil gil;
  try {
    (*g_logging_ns)["log_access"](std::string(line));
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
  py::dict ns;
};

PythonConfig::PythonConfig(std::vector<std::string> argv) : argv_(std::move(argv)) {}

PythonConfig::~PythonConfig() {
  if (g_hooks == this) g_hooks = nullptr;
  if (g_logging == this) {
    log::error_log().set_sink(nullptr);
    log::set_access_sink(nullptr);
    g_logging = nullptr;
    g_logging_ns = nullptr;
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
  state_ = std::make_unique<State>();
  state_->ns["__builtins__"] = py::module_::import("builtins");
  state_->ns["_log_write"] = py::cpp_function([](int level, const std::string& message) {
    log::error_log().write(static_cast<log::Level>(level), message);
  });
  py::exec(kConfigSource, state_->ns);
}

std::vector<config::FileValue> PythonConfig::read(const std::string& location,
                                                  const std::vector<std::string>& setting_names) {
  start_interpreter();
  Gil gil;
  std::vector<config::FileValue> out;
  try {
    py::list items = state_->ns["read"](location, setting_names);
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
      state_->ns["resolve"](name, text);
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
  state_->ns["configure"](values, env);
  py::object server = state_->ns["server"];
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
    configured = state_->ns["setup_logging"](config.logconfig_json, config.logconfig)
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
  g_logging_ns = &state_->ns;
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

bool PythonConfig::has(std::string_view hook) const {
  return std::find(hook_names_.begin(), hook_names_.end(), hook) != hook_names_.end();
}

void PythonConfig::server_hook(std::string_view hook) {
  if (!has(hook)) return;
  Gil gil;
  try {
    state_->ns["call"](std::string(hook), state_->ns["server"]);
  } catch (py::error_already_set& e) {
    e.restore();
    log_python_error("Exception in " + std::string(hook) + " hook");
  }
}

void PythonConfig::worker_hook(std::string_view hook, const HookWorker& w, bool with_server) {
  if (!has(hook)) return;
  Gil gil;
  try {
    state_->ns["call_worker"](std::string(hook), static_cast<long>(w.pid), w.age, with_server);
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
    state_->ns["server"].attr("num_workers") = new_value;
    state_->ns["call"]("nworkers_changed", state_->ns["server"], new_value, old);
  } catch (py::error_already_set& e) {
    e.restore();
    log_python_error("Exception in nworkers_changed hook");
  }
}

void PythonConfig::set_num_workers(int n) {
  if (!state_) return;
  Gil gil;
  state_->ns["server"].attr("num_workers") = n;
}

void PythonConfig::worker_spawned(const HookWorker& w) {
  if (!state_) return;
  Gil gil;
  try {
    state_->ns["server"].attr("WORKERS")[py::int_(w.pid)] =
        state_->ns["make_worker"](static_cast<long>(w.pid), w.age);
  } catch (py::error_already_set& e) {
    e.restore();
    log_python_error("Cannot record the worker in server.WORKERS");
  }
}

void PythonConfig::worker_reaped(pid_t pid) {
  if (!state_) return;
  Gil gil;
  state_->ns["server"].attr("WORKERS").attr("pop")(py::int_(pid), py::none());
}

void PythonConfig::set_worker(const HookWorker& w) {
  if (!state_) return;
  Gil gil;
  state_->ns["set_worker"](static_cast<long>(w.pid), w.age);
}

void PythonConfig::install_worker_abort() {
  if (!has("worker_abort")) return;
  Gil gil;
  try {
    state_->ns["install_worker_abort"]();
  } catch (py::error_already_set& e) {
    e.restore();
    log_python_error("Cannot install the worker_abort hook");
  }
}

void PythonConfig::pre_request(const py::object& environ) {
  if (!has("pre_request") && !has("post_request")) return;
  try {
    state_->ns["pre_request"](environ);
  } catch (py::error_already_set& e) {
    e.restore();
    log_python_error("Exception in pre_request hook");
  }
}

void PythonConfig::post_request(const py::object& environ, const std::string& status,
                                const std::vector<std::pair<std::string, std::string>>& headers) {
  if (!has("post_request")) return;
  try {
    state_->ns["post_request"](environ, status, headers);
  } catch (py::error_already_set& e) {
    e.restore();
    log_python_error("Exception in post_request hook");
  }
}

}  // namespace cppgunicorn::wsgi
