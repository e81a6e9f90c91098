#include "cppgunicorn/server.h"

#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <functional>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>

#include "base/proc_title.h"
#include "base/spool_file.h"
#include "config/config.h"
#include "config/sources.h"
#include "embed/config_data.h"
#include "embed/in_process.h"
#include "log/access_log.h"
#include "log/logger.h"
#include "log/statsd.h"
#include "log/syslog.h"
#include "master/arbiter.h"
#include "net/tls.h"
#include "wsgi/interpreter.h"
#include "wsgi/python_config.h"
#include "wsgi/python_package.h"

namespace cppgunicorn {

namespace {

// -e/--env in the master's environment. A reload first puts back what the
// previous configuration changed (gunicorn's env_orig), then sets the new.
class MasterEnvironment {
 public:
  void apply(const std::vector<std::string>& raw_env) {
    for (const auto& [name, value] : original_) {
      if (value) ::setenv(name.c_str(), value->c_str(), 1);
      else ::unsetenv(name.c_str());
    }
    original_.clear();
    for (const std::string& e : raw_env) {
      auto eq = e.find('=');
      std::string name = e.substr(0, eq);
      if (original_.count(name) == 0) {
        const char* old = std::getenv(name.c_str());
        original_[name] = old ? std::optional<std::string>(old) : std::nullopt;
      }
      ::setenv(name.c_str(), e.substr(eq + 1).c_str(), 1);
    }
  }

 private:
  std::map<std::string, std::optional<std::string>> original_;
};

// Checks that need the whole configuration; at start-up and on HUP.
void check_settings(const config::Config& config) {
  if (config.app_uri.empty()) throw config::ConfigError("No application module specified.");
  if (config.ignored.count("ssl_context") != 0) {
    // gunicorn's hook returns a Python ssl.SSLContext, which our OpenSSL
    // objects cannot take over; running without it would serve other TLS
    // than the user wrote.
    throw config::ConfigError(
        "Invalid value for ssl_context: an ssl_context hook is not supported by cppgunicorn "
        "(its Python SSLContext cannot be used by the server); set certfile, keyfile, "
        "ca_certs, cert_reqs, ciphers and ssl_version (the minimum TLS version) instead");
  }
  if (!config.tmp_upload_dir.empty()) {
    try {
      base::SpoolFile::check_directory(config.tmp_upload_dir);
    } catch (const std::exception& e) {
      throw config::ConfigError("Invalid value for tmp_upload_dir: '" + config.tmp_upload_dir +
                                "' (expected a writable directory: " + e.what() + ")");
    }
  }
}

// --static-map's directories, relative to --chdir (as the app's files
// are): each must exist and be a directory, or the start stops here.
void check_static_directories(const config::Config& config) {
  for (const config::Config::StaticMount& m : config.static_map) {
    struct stat st {};
    std::string shown = m.url_prefix + "=" + m.directory;
    if (::stat(m.directory.c_str(), &st) != 0) {
      throw config::ConfigError("Invalid value for static_map: '" + shown + "' (" + m.directory +
                                ": " + std::strerror(errno) + ")");
    }
    if (!S_ISDIR(st.st_mode)) {
      throw config::ConfigError("Invalid value for static_map: '" + shown + "' (" + m.directory +
                                " is not a directory)");
    }
  }
}

// Changes directory for as long as it lives.
class DirectoryChange {
 public:
  explicit DirectoryChange(const std::string& dir) {
    if (::getcwd(saved_, sizeof saved_) == nullptr) saved_[0] = '\0';
    if (!dir.empty() && ::chdir(dir.c_str()) != 0) {
      // Stay here; relative paths may then not resolve.
    }
  }
  ~DirectoryChange() {
    if (saved_[0] != '\0' && ::chdir(saved_) != 0) {
      // Nowhere better to be.
    }
  }
  DirectoryChange(const DirectoryChange&) = delete;
  DirectoryChange& operator=(const DirectoryChange&) = delete;

 private:
  char saved_[4096];
};

// The sources a Config names, as config::load_config reads them.
config::LoadOptions load_options(const Config::Data& data) {
  config::LoadOptions options;
  options.read_environment = data.read_environment;
  options.config_file = data.config_file;
  options.code = data.code;
  if (!data.app_uri.empty()) options.code.push_back({"wsgi_app", {data.app_uri}});
  return options;
}

// HUP: the configuration again from every source, the command line as it
// was; what the master process holds itself (Python hooks, environment,
// directory) is switched only once the whole configuration is good.
config::Config reload_configuration(const Config::Data& data,
                                    wsgi::PythonConfig& python, MasterEnvironment& environment,
                                    const std::string& started_in) {
  config::LoadedConfig fresh;
  {
    // Paths in the sources are relative to where we were started, as
    // when they were first read.
    DirectoryChange in_start_dir(started_in);
    fresh = config::load_config(data.args, &python, load_options(data));
    check_settings(fresh.config);
    if (!fresh.config.chdir.empty() && ::access(fresh.config.chdir.c_str(), X_OK) != 0) {
      throw config::ConfigError("Invalid value for chdir: '" + fresh.config.chdir +
                                "': " + std::strerror(errno));
    }
    {
      DirectoryChange in_app_dir(fresh.config.chdir);
      check_static_directories(fresh.config);
    }
    log::AccessLog format_check;
    try {
      if (!fresh.config.access_log_format.empty()) {
        format_check.set_format(fresh.config.access_log_format);
      }
    } catch (const std::exception& e) {
      throw config::ConfigError(std::string("Invalid value for access_log_format: ") + e.what());
    }
  }
  python.configure(fresh.config, fresh.shown);
  environment.apply(fresh.config.raw_env);
  wsgi::Interpreter::sync_environment();
  try {
    python.setup_logging(fresh.config);
  } catch (const std::exception& e) {
    log::error_log().error(e.what());
  }
  if (!fresh.ignored_warning.empty()) log::error_log().warning(fresh.ignored_warning);
  if (::chdir(started_in.c_str()) != 0 ||
      (!fresh.config.chdir.empty() && ::chdir(fresh.config.chdir.c_str()) != 0)) {
    log::error_log().error("Invalid value for chdir: '" + fresh.config.chdir + "': " +
                           std::strerror(errno));
  }
  return fresh.config;
}

}  // namespace

namespace {

// What the public Server needs of a prefork run: the arbiter while it
// exists (stop() and reload() post signals to it), and its readiness.
struct PreforkHooks {
  std::function<void(master::Arbiter*)> attach;  // null: detached again
  master::Arbiter::ReadyCallback ready;
};

// The prefork server: this process becomes the master (master::Arbiter).
int run_prefork(const Config::Data& data, const std::vector<std::string>& program,
                const PreforkHooks& control) {
  const std::vector<std::string>& args_ = data.args;
  const std::vector<std::string>& program_ = program;
  // The master's Python: the one running us (the installed command), or
  // one started as soon as a Python config file is read (or hooks from
  // TOML need it), else just before the workers are forked; it outlives
  // the arbiter.
  std::vector<std::string> python_argv = {program_.front()};
  python_argv.insert(python_argv.end(), args_.begin(), args_.end());
  wsgi::PythonConfig python(python_argv);
  config::LoadedConfig loaded;
  config::Config& config = loaded.config;
  MasterEnvironment environment;
  try {
    if (data.app_object) {
      throw config::ConfigError("an app object is served in-process only (Mode::kInProcess)");
    }
    loaded = config::load_config(args_, &python, load_options(data));
    switch (loaded.action) {
      case config::CliAction::kHelp:
        std::fputs(config::usage_text().c_str(), stdout);
        return 0;
      case config::CliAction::kVersion:
        std::puts(version_line().c_str());
        return 0;
      case config::CliAction::kServe:
        break;
    }
    check_settings(config);
    log::Level level;
    log::parse_level(config.loglevel, &level);
    log::error_log().set_level(level);
    log::error_log().file().open(config.errorlog, stderr);
    // gunicorn sets -e/--env in the master, before the app is loaded.
    environment.apply(config.raw_env);
    wsgi::Interpreter::sync_environment();
    python.configure(config, loaded.shown);
    python.setup_logging(config);
    if (config.syslog) {
      std::string prefix = config.syslog_prefix;
      if (prefix.empty()) prefix = config.proc_name.empty() ? config.default_proc_name : config.proc_name;
      for (char& c : prefix) {
        if (c == ':') c = '.';
      }
      log::syslog_sink().open(config.syslog_addr, config.syslog_facility, prefix,
                              !config.disable_redirect_access_to_syslog);
    }
    if (!config.statsd_host.empty()) {
      log::statsd().open(config.statsd_host, config.statsd_prefix, config.dogstatsd_tags);
    }
  } catch (const config::UsageError& e) {
    // argparse's form and status, as gunicorn.
    std::fprintf(stderr, "usage: cppgunicorn [OPTIONS] [APP_MODULE]\ncppgunicorn: error: %s\n",
                 e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "Error: %s\n", e.what());
    return 1;
  }
  if (log::error_log().enabled(log::Level::kDebug) && !config.print_config && !config.check_config) {
    log::error_log().debug(config::current_configuration(loaded));
  }
  if (!loaded.ignored_warning.empty()) log::error_log().warning(loaded.ignored_warning);
  // --capture-output: what the app prints goes to the error log file.
  log::capture_output_into_error_log(config.capture_output, config.errorlog);
  char start_dir[4096] = "";
  if (::getcwd(start_dir, sizeof start_dir) == nullptr) start_dir[0] = '\0';
  if (!config.chdir.empty() && ::chdir(config.chdir.c_str()) != 0) {
    log::error_log().error("Invalid value for chdir: '" + config.chdir + "': " + std::strerror(errno));
    return 1;
  }
  try {
    check_static_directories(config);
  } catch (const config::ConfigError& e) {
    std::fprintf(stderr, "Error: %s\n", e.what());
    return 1;
  }
  if (config.tls.enabled()) {
    // Every TLS file and value now (relative paths from --chdir, as in
    // gunicorn), so that a bad one stops the start and --check-config.
    // A HUP checks them again as it builds the new context.
    try {
      net::TlsContext check(config.tls);
    } catch (const net::TlsConfigError& e) {
      std::fprintf(stderr, "Error: %s\n", e.what());
      return 1;
    }
  }
  if (std::string backend = config.green_backend();
      !backend.empty() && !python.module_available(backend)) {
    // As gunicorn's master, which imports the worker class: exit 1, no
    // worker forked to fail at boot.
    std::fprintf(stderr,
                 "Error: Invalid value for worker_class: '%s' (the %s package is not installed "
                 "for this Python: pip install %s)\n",
                 config.worker_class.c_str(), backend.c_str(), backend.c_str());
    return 1;
  }
  if (config.print_config) {
    std::fputs(config::print_config(loaded).c_str(), stdout);
    std::fflush(stdout);
  }
  if (config.print_config || config.check_config) {
    try {
      log::AccessLog format_check;
      if (!config.access_log_format.empty()) format_check.set_format(config.access_log_format);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "Error: Invalid value for access_log_format: %s\n", e.what());
      return 1;
    }
    std::string error = python.check_app(config);
    if (!error.empty()) {
      std::fprintf(stderr, "Error: %s\n", error.c_str());
      return 1;
    }
    return 0;
  }
  try {
    // A worker imports nothing that loading the app or reporting its
    // errors needs: the master has, before it forks. Green workers patch
    // the standard library after the fork: it stays unimported for them.
    python.import_worker_modules(config.reload, config.green_backend().empty());
    std::vector<std::string> exec_argv = program_;
    exec_argv.insert(exec_argv.end(), args_.begin(), args_.end());
    master::Arbiter arbiter(config, std::move(exec_argv), start_dir);
    if (!data.is_command) arbiter.set_in_host(data.handle_signals);
    arbiter.set_ready_callback(control.ready);
    struct Attached {
      const PreforkHooks& control;
      ~Attached() {
        if (control.attach) control.attach(nullptr);
      }
    } attached{control};
    if (control.attach) control.attach(&arbiter);
    std::string started_in = start_dir;
    arbiter.set_config_reloader([&data, &python, &environment, started_in] {
      return reload_configuration(data, python, environment, started_in);
    });
    return arbiter.run();
  } catch (const std::exception& e) {
    log::error_log().error(e.what());
    return 1;
  }
}

}  // namespace

struct Server::Impl {
  Config config;
  std::vector<std::string> program = {"cppgunicorn"};

  std::mutex mu;  // guards what follows
  std::condition_variable changed;
  enum class State { kIdle, kStarting, kServing, kDone } state = State::kIdle;
  int status = 0;
  embed::InProcessServer::StartFailure failure;  // why it did not start
  std::vector<std::string> addresses;
  int port = 0;
  embed::InProcessServer* in_process = nullptr;  // while one serves
  master::Arbiter* arbiter = nullptr;             // while a prefork master runs
  bool stop_asked = false;
  int64_t stop_grace_ms = -1;
  std::thread thread;  // start()'s

  // run() once the state is kStarting.
  int serve();
};

int Server::Impl::serve() {
  const Config::Data& data = ConfigAccess::data(config);
  int code;
  if (data.mode == Mode::kInProcess) {
    embed::InProcessServer server(config, program);
    {
      std::lock_guard lock(mu);
      in_process = &server;
      if (stop_asked) server.stop(stop_grace_ms);
    }
    code = server.run([this](const std::vector<std::string>& bound, int first_port) {
      std::lock_guard lock(mu);
      addresses = bound;
      port = first_port;
      state = State::kServing;
      changed.notify_all();
    });
    std::lock_guard lock(mu);
    in_process = nullptr;
    failure = server.start_failure();
  } else {
    PreforkHooks control;
    control.attach = [this](master::Arbiter* a) {
      std::lock_guard lock(mu);
      arbiter = a;
      if (a != nullptr && stop_asked) a->post_signal(stop_grace_ms == 0 ? SIGINT : SIGTERM);
    };
    control.ready = [this](const std::vector<std::string>& bound, int first_port) {
      std::lock_guard lock(mu);
      addresses = bound;
      port = first_port;
      state = State::kServing;
      changed.notify_all();
    };
    code = run_prefork(data, program, control);
    if (!data.is_command) embed::reset_process_state();
  }
  std::lock_guard lock(mu);
  state = State::kDone;
  status = code;
  stop_asked = false;
  changed.notify_all();
  return code;
}

Server::Server(Config config) : impl_(std::make_unique<Impl>()) {
  impl_->config = std::move(config);
  // A USR2 upgrade re-executes the host program itself, unless it names
  // another command (set_program).
  char self[4096];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) impl_->program = {std::string(self, static_cast<size_t>(n))};
}

Server::Server(std::vector<std::string> args) : Server(Config::from_argv(std::move(args))) {
  impl_->config.set_handle_signals(true);
  ConfigAccess::data(impl_->config).is_command = true;
  impl_->program = {"cppgunicorn"};
}

Server::~Server() {
  if (impl_->thread.joinable()) {
    stop(std::chrono::milliseconds(0));
    wait();
  }
}

int Server::run() {
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->state == Impl::State::kStarting || impl_->state == Impl::State::kServing) {
      throw std::logic_error("cppgunicorn::Server::run: the server is already running");
    }
    impl_->state = Impl::State::kStarting;
  }
  wsgi::GilReleasedIfHeld released;
  return impl_->serve();
}

void Server::start() {
  if (ConfigAccess::data(impl_->config).mode == Mode::kPrefork) {
    // fork() copies the calling thread only; CPython's fork handling
    // expects that thread to be the one that owns the interpreter.
    throw std::logic_error(
        "cppgunicorn::Server::start: Mode::kPrefork runs in the calling thread: use run()");
  }
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->thread.joinable() || impl_->state == Impl::State::kStarting ||
        impl_->state == Impl::State::kServing) {
      throw std::logic_error("cppgunicorn::Server::start: the server is already running");
    }
    impl_->state = Impl::State::kStarting;
  }
  impl_->thread = std::thread([impl = impl_.get()] { impl->serve(); });
  // The serving thread may need the GIL (to load the app) before it is ready.
  wsgi::GilReleasedIfHeld released;
  std::unique_lock lock(impl_->mu);
  impl_->changed.wait(lock, [this] {
    return impl_->state == Impl::State::kServing || impl_->state == Impl::State::kDone;
  });
  if (impl_->state == Impl::State::kDone) {
    using Kind = embed::InProcessServer::FailureKind;
    const embed::InProcessServer::StartFailure& why = impl_->failure;
    if (why.kind == Kind::kSetting) throw ConfigError(why.message);
    if (why.kind == Kind::kListen) throw ListenError(why.message);
    if (why.kind == Kind::kOther) throw std::runtime_error(why.message);
    throw std::runtime_error("cppgunicorn: the server did not start (exit status " +
                             std::to_string(impl_->status) + "); the error log says why");
  }
}

void Server::stop(std::chrono::milliseconds grace) {
  std::lock_guard lock(impl_->mu);
  impl_->stop_asked = true;
  impl_->stop_grace_ms = grace.count();
  if (impl_->in_process != nullptr) impl_->in_process->stop(grace.count());
  // Prefork: gunicorn's TERM (graceful, graceful_timeout), or INT for no grace.
  if (impl_->arbiter != nullptr) impl_->arbiter->post_signal(grace.count() == 0 ? SIGINT : SIGTERM);
}

void Server::reload() {
  std::lock_guard lock(impl_->mu);
  if (impl_->in_process != nullptr) impl_->in_process->reload();
  if (impl_->arbiter != nullptr) impl_->arbiter->post_signal(SIGHUP);
}

int Server::wait() {
  if (impl_->thread.joinable()) {
    wsgi::GilReleasedIfHeld released;
    impl_->thread.join();
  }
  std::lock_guard lock(impl_->mu);
  return impl_->status;
}

std::vector<std::string> Server::addresses() const {
  std::lock_guard lock(impl_->mu);
  return impl_->addresses;
}

int Server::port() const {
  std::lock_guard lock(impl_->mu);
  return impl_->port;
}

void Server::set_program(std::vector<std::string> command) {
  if (!command.empty()) impl_->program = std::move(command);
}

void set_default_python(std::string path) { wsgi::Interpreter::set_default_python(std::move(path)); }

void set_python_package_dir(std::string path) { wsgi::set_package_dir(std::move(path)); }

std::string version_line() {
  return "cppgunicorn (version " CPPGUNICORN_VERSION ") on Python " +
         wsgi::Interpreter::python_version() + ", libuv " + uv_version_string() + ", " +
         net::openssl_version();
}

int main_from_command_line(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  Server server(std::move(args));
  server.set_program({argv[0]});
  // The arguments are copied: their memory now becomes the process title.
  base::init_proc_title(argc, argv);
  return server.run();
}

}  // namespace cppgunicorn
