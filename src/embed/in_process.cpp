#include "embed/in_process.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>

#include "base/spool_file.h"
#include "config/config.h"
#include "config/sources.h"
#include "embed/config_data.h"
#include "log/access_log.h"
#include "log/logger.h"
#include "net/listener.h"
#include "net/tls.h"
#include "worker/worker.h"
#include "wsgi/app_loader.h"
#include "wsgi/application.h"
#include "wsgi/exchange.h"
#include "wsgi/interpreter.h"
#include "wsgi/python_config.h"
#include "wsgi/python_package.h"

namespace cppgunicorn::embed {

namespace {

// The interpreter the library starts when the host runs none: once per
// process, never finalised (CPython cannot reliably be started again after
// Py_Finalize once C extensions are loaded, and a second server must work).
void ensure_interpreter(const std::vector<std::string>& program) {
  static std::mutex mu;
  static std::unique_ptr<wsgi::Interpreter> library_python;
  std::lock_guard lock(mu);
  if (wsgi::Interpreter::running()) return;
  wsgi::InterpreterOptions options;
  options.argv = {program.empty() ? std::string("cppgunicorn") : program.front()};
  char cwd[4096];
  if (::getcwd(cwd, sizeof cwd) != nullptr) options.app_dir = cwd;
  // faulthandler would take SIGSEGV, SIGABRT... for the whole host process
  // (and set an alternate signal stack on this thread, which may end); with
  // no master to abort a stuck worker, in-process has no use for it.
  options.enable_faulthandler = false;
  library_python = std::make_unique<wsgi::Interpreter>(options);
  library_python->release_gil();
  // Deliberately kept past the end of main: see above.
  (void)library_python.release();
}

[[noreturn]] void refuse(const std::string& name, const std::string& value, const std::string& why) {
  throw config::ConfigError("Invalid value for " + name + ": '" + value + "' (" + why + ")");
}

// What needs a master process, or would change the host's own process
// (its user, directory, environment, stdout), is not done in-process.
void refuse_what_needs_a_master(const config::LoadedConfig& loaded) {
  const config::Config& c = loaded.config;
  const std::string prefork = "the in-process server runs one worker in this process; use "
                              "Mode::kPrefork for that";
  if (c.workers != 1) {
    refuse("workers", std::to_string(c.workers),
           "the in-process server runs one worker; use threads, or Mode::kPrefork");
  }
  if (c.daemon) refuse("daemon", "True", prefork);
  if (!c.user.empty()) refuse("user", c.user, "the host's process keeps its own user");
  if (!c.group.empty()) refuse("group", c.group, "the host's process keeps its own group");
  if (!c.pidfile.empty()) refuse("pidfile", c.pidfile, prefork);
  if (!c.chdir.empty()) refuse("chdir", c.chdir, "the host's working directory is its own");
  if (!c.raw_env.empty()) refuse("raw_env", c.raw_env.front(), "the host's environment is its own");
  if (c.reload) refuse("reload", "True", prefork + ", or Server::reload()");
  if (c.max_requests > 0) refuse("max_requests", std::to_string(c.max_requests), prefork);
  if (c.capture_output) refuse("capture_output", "True", "the host's stdout and stderr are its own");
  if (c.syslog) refuse("syslog", "True", "not supported in-process; use Config::set_log_sink");
  if (!c.statsd_host.empty()) refuse("statsd_host", c.statsd_host, "not supported in-process");
  if (c.check_config || c.print_config) {
    refuse(c.check_config ? "check_config" : "print_config", "True", "a command-line action");
  }
  if (!c.green_backend().empty()) {
    refuse("worker_class", c.worker_class,
           "a green worker patches the whole process; use threads in-process");
  }
  if (c.ignored.count("ssl_context") != 0) {
    refuse("ssl_context", c.ignored.at("ssl_context"), "an ssl_context hook is not supported");
  }
}

config::LoadedConfig load(const Config::Data& data, wsgi::PythonConfig& python) {
  config::LoadOptions options;
  options.read_environment = data.read_environment;
  options.config_file = data.config_file;
  options.code = data.code;
  if (!data.app_uri.empty()) options.code.push_back({"wsgi_app", {data.app_uri}});
  config::LoadedConfig loaded = config::load_config(data.args, &python, options);
  if (loaded.action != config::CliAction::kServe) {
    throw config::ConfigError("--help and --version are command-line actions");
  }
  if (data.app_object) {
    if (loaded.config.app_uri.empty()) loaded.config.app_uri = "(app object)";
  } else if (loaded.config.app_uri.empty()) {
    throw config::ConfigError("No application module specified.");
  }
  if (loaded.config.default_proc_name.empty()) loaded.config.default_proc_name = loaded.config.app_uri;
  refuse_what_needs_a_master(loaded);
  if (!loaded.config.tmp_upload_dir.empty()) {
    try {
      base::SpoolFile::check_directory(loaded.config.tmp_upload_dir);
    } catch (const std::exception& e) {
      throw config::ConfigError("Invalid value for tmp_upload_dir: '" +
                                loaded.config.tmp_upload_dir +
                                "' (expected a writable directory: " + e.what() + ")");
    }
  }
  return loaded;
}

void use_host_sink(const Config::Data& data) {
  LogSink sink = data.log_sink;
  log::error_log().set_host_sink([sink](log::Level l, std::string_view line) {
    sink(static_cast<LogLevel>(static_cast<int>(l)), line);
  });
}

// The error log as configured (level, file or the host's sink), and the
// Python side (hooks, logconfig).
void apply_logging(const Config::Data& data, const config::LoadedConfig& loaded,
                   wsgi::PythonConfig& python) {
  const config::Config& c = loaded.config;
  log::Level level = log::Level::kInfo;
  log::parse_level(c.loglevel, &level);
  log::error_log().set_level(level);
  if (data.log_sink) {
    use_host_sink(data);
  } else {
    log::error_log().file().open(c.errorlog, stderr);
  }
  python.configure(c, loaded.shown);
  python.setup_logging(c);
  if (!loaded.ignored_warning.empty()) log::error_log().warning(loaded.ignored_warning);
}

// The listening sockets, closed (unix socket files removed) at the end.
struct Listeners {
  std::vector<net::ListenSocket> sockets;
  Listeners() = default;
  Listeners(const Listeners&) = delete;
  Listeners& operator=(const Listeners&) = delete;
  ~Listeners() { net::close_listeners(sockets, true); }
};

// The app, created and destroyed with the GIL held.
struct LoadedApp {
  std::unique_ptr<wsgi::Application> app;
  LoadedApp() = default;
  LoadedApp(const LoadedApp&) = delete;
  LoadedApp& operator=(const LoadedApp&) = delete;
  ~LoadedApp() {
    if (app) {
      wsgi::Gil gil;
      app.reset();
    }
  }
};

// Loads the app: 0, or the exit status for why not (as a worker's boot).
int load_app(const Config::Data& data, const config::Config& c, LoadedApp& out) {
  wsgi::Gil gil;
  wsgi::EnvironOptions env;
  env.multithread = c.concurrent_app();
  env.multiprocess = false;
  if (const char* sn = std::getenv("SCRIPT_NAME")) env.script_name = sn;
  try {
    // No fork to share them with: only what loading the app needs.
    wsgi::import_worker_modules(/*standard_library=*/false);
    if (data.app_object) {
      auto* callable = static_cast<PyObject*>(data.app_object.get());
      out.app = std::make_unique<wsgi::Application>(
          pybind11::reinterpret_borrow<pybind11::object>(callable), env);
    } else {
      wsgi::InterpreterOptions options;
      options.pythonpath = c.pythonpath;
      char cwd[4096];
      if (::getcwd(cwd, sizeof cwd) != nullptr) options.app_dir = cwd;
      options.enable_faulthandler = false;
      wsgi::Interpreter::prepare_for_app(options);
      out.app = std::make_unique<wsgi::Application>(c.app_uri, env);
    }
  } catch (const wsgi::AppLoadError& e) {
    log::error_log().error(e.what());
    return dynamic_cast<const wsgi::AppModuleNotFound*>(&e) != nullptr ? worker::kExitWorkerBootError
                                                                       : worker::kExitAppLoadError;
  } catch (pybind11::error_already_set& e) {
    e.restore();
    wsgi::log_python_error("Exception while loading the application");
    return worker::kExitWorkerBootError;
  }
  return 0;
}

std::string display(const net::ListenSocket& l, bool tls) {
  if (tls && l.display.rfind("http://", 0) == 0) return "https://" + l.display.substr(7);
  return l.display;
}

// What a server sets process-wide while it runs, put back when it ends.
struct ProcessStateReset {
  ~ProcessStateReset() { reset_process_state(); }
};

}  // namespace

void reset_process_state() {
  base::SpoolFile::use_directory("");
  base::SpoolFile::set_budget(0);
  log::error_log().reset();
}

InProcessServer::InProcessServer(const Config& config, std::vector<std::string> program)
    : config_(config), program_(std::move(program)) {}

int InProcessServer::run(const ReadyCallback& on_ready) {
  // A Python host called us holding the GIL: the loop runs without it.
  wsgi::GilReleasedIfHeld released;
  ProcessStateReset reset;
  // Errors in the configuration itself go to the host's sink too.
  if (const Config::Data& data = ConfigAccess::data(config_); data.log_sink) use_host_sink(data);
  try {
    ensure_interpreter(program_);
    // One Python thread state for this thread while it serves, so that
    // each call of the app does not make and drop one (start()'s thread is
    // not a Python thread; a host's thread keeps the one it has).
    wsgi::PythonThread python_thread;
    return serve(on_ready);
  } catch (const std::exception& e) {
    fail(FailureKind::kOther, e.what());
    return 1;
  }
}

void InProcessServer::fail(FailureKind kind, const std::string& message) {
  // A setting's error reads as the command's ("Error: Invalid value...").
  log::error_log().error(kind == FailureKind::kSetting ? "Error: " + message : message);
  if (failure_.kind == FailureKind::kNone) failure_ = {kind, message};
}

int InProcessServer::serve(const ReadyCallback& on_ready) {
  const Config::Data& data = ConfigAccess::data(config_);
  std::vector<std::string> python_argv = {program_.empty() ? "cppgunicorn" : program_.front()};
  wsgi::PythonConfig python(python_argv);
  config::LoadedConfig loaded;
  try {
    loaded = load(data, python);
    apply_logging(data, loaded, python);
  } catch (const config::UsageError& e) {
    fail(FailureKind::kSetting, e.what());
    return 2;
  } catch (const config::ConfigError& e) {
    fail(FailureKind::kSetting, e.what());
    return 1;
  }
  config::Config& c = loaded.config;

  std::shared_ptr<const net::TlsContext> tls;
  log::AccessLog access_log;
  try {
    if (c.tls.enabled()) tls = std::make_shared<const net::TlsContext>(c.tls);
    access_log.set_format(c.access_log_format.empty() ? log::kDefaultAccessLogFormat
                                                      : c.access_log_format);
    if (!c.accesslog.empty()) access_log.file().open(c.accesslog, stdout);
  } catch (const std::exception& e) {
    fail(FailureKind::kOther, e.what());
    return 1;
  }
  base::SpoolFile::use_directory(c.tmp_upload_dir);
  base::SpoolFile::set_budget(static_cast<uint64_t>(c.spool_budget));

  Listeners listeners;
  net::ListenOptions listen_options;
  listen_options.backlog = c.backlog;
  listen_options.reuse_port = c.reuse_port;
  listen_options.umask = c.umask;
  try {
    for (const std::string& b : c.bind_or_default()) {
      for (net::ListenSocket& s : net::open_listeners({b}, listen_options)) {
        listeners.sockets.push_back(s);
      }
    }
  } catch (const std::invalid_argument& e) {
    // Not an address at all: the bind setting's value is wrong.
    fail(FailureKind::kSetting, std::string("Invalid value for bind: ") + e.what());
    return 1;
  } catch (const std::exception& e) {
    fail(FailureKind::kListen, e.what());
    return 1;
  }
  std::vector<std::string> addresses;
  int port = 0;
  std::string listening;
  for (const net::ListenSocket& l : listeners.sockets) {
    addresses.push_back(display(l, tls != nullptr));
    listening += (listening.empty() ? "" : ",") + addresses.back();
    if (port == 0 && !l.is_unix && !l.server_port.empty()) port = std::atoi(l.server_port.c_str());
  }
  log::error_log().info("Starting cppgunicorn " CPPGUNICORN_VERSION " in-process");
  log::error_log().info("Listening at: " + listening + " (" + std::to_string(::getpid()) + ")");
  log::error_log().info(std::string("Using worker: ") + (c.threads > 1 ? "gthread" : "sync"));

  LoadedApp app;
  if (int code = load_app(data, c, app); code != 0) {
    // load_app logged why, with the traceback.
    if (failure_.kind == FailureKind::kNone) {
      failure_ = {FailureKind::kOther, "the application could not be loaded (exit status " +
                                           std::to_string(code) + "); the error log says why"};
    }
    return code;
  }

  bool ready_told = false;
  for (;;) {
    // The worker's loop takes its sockets over and closes them when it
    // stops (as a forked worker closes its copies): it gets duplicates, so
    // that the listeners stay open for the next worker (reload()) and are
    // closed once, here, at the end.
    Listeners worker_sockets;
    for (const net::ListenSocket& l : listeners.sockets) {
      net::ListenSocket copy = l;
      copy.fd = ::fcntl(l.fd, F_DUPFD_CLOEXEC, 0);
      if (copy.fd < 0) {
        log::error_log().error(std::string("cannot duplicate a listener: ") + std::strerror(errno));
        return 1;
      }
      copy.address.kind = net::BindAddress::Kind::kFd;  // never unlinked through the copy
      worker_sockets.sockets.push_back(copy);
    }
    worker::Worker w(c, worker_sockets.sockets, access_log, nullptr, app.app.get(), tls.get());
    w.set_in_host_process(true);
    w.set_handle_signals(data.handle_signals);
    {
      std::lock_guard lock(mu_);
      graceful_timeout_ms_ = c.graceful_timeout * 1000;
      worker_ = &w;
      if (stop_asked_) {
        w.request_stop(stop_grace_ms_ != 0,
                       static_cast<uint64_t>(stop_grace_ms_ >= 0 ? stop_grace_ms_ : graceful_timeout_ms_));
      }
    }
    if (!ready_told && on_ready) {
      // Connections wait in the listen backlog until the loop runs.
      ready_told = true;
      on_ready(addresses, port);
    }
    int code = w.run();
    // Closed by the worker's loop already (those it opened).
    for (net::ListenSocket& l : worker_sockets.sockets) l.fd = -1;
    {
      std::lock_guard lock(mu_);
      worker_ = nullptr;
      if (stop_asked_ || !reload_asked_ || code != 0) return code;
      reload_asked_ = false;
    }
    // Server::reload(): the configuration again; the listeners, TLS
    // context and app stay (see Server::reload in cppgunicorn/server.h).
    log::error_log().info("Handling signal: hup");
    try {
      config::LoadedConfig fresh = load(data, python);
      apply_logging(data, fresh, python);
      access_log.set_format(fresh.config.access_log_format.empty() ? log::kDefaultAccessLogFormat
                                                                   : fresh.config.access_log_format);
      if (!fresh.config.accesslog.empty()) access_log.file().open(fresh.config.accesslog, stdout);
      else access_log.file().close();
      loaded = std::move(fresh);
    } catch (const std::exception& e) {
      log::error_log().error(std::string("Reload failed, the configuration stays as it was: ") +
                             e.what());
    }
  }
}

void InProcessServer::stop(int64_t grace_ms) {
  std::lock_guard lock(mu_);
  stop_asked_ = true;
  stop_grace_ms_ = grace_ms;
  if (worker_ != nullptr) {
    // No grace: every connection dropped now (as the prefork master's INT).
    worker_->request_stop(grace_ms != 0,
                          static_cast<uint64_t>(grace_ms >= 0 ? grace_ms : graceful_timeout_ms_));
  }
}

void InProcessServer::reload() {
  std::lock_guard lock(mu_);
  if (stop_asked_) return;
  reload_asked_ = true;
  if (worker_ != nullptr) worker_->request_stop(true, static_cast<uint64_t>(graceful_timeout_ms_));
}

}  // namespace cppgunicorn::embed
