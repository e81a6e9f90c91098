// The settings of an embedded cppgunicorn server, built in code, from a
// command line or from a config file, with gunicorn's setting names.
//
//   cppgunicorn::Config config;
//   config.set("bind", "127.0.0.1:0").set("threads", 4).set_app("myapp:app");
//
// See cppgunicorn/server.h for the server that takes it, and
// docs/embedding.md for the whole picture.
#pragma once

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace cppgunicorn {

// How the server runs the app.
enum class Mode {
  // No fork: one worker's loop runs in the host's process, on the thread
  // that calls Server::run() (or the one Server::start() makes), with the
  // host's interpreter if it has one, else one the library starts. The
  // default for a Config built in code.
  kInProcess,
  // As the `cppgunicorn` command: this process becomes a master that binds,
  // forks `workers` worker processes and supervises them. The default for
  // Config::from_argv.
  kPrefork,
};

// gunicorn's log levels.
enum class LogLevel { kDebug = 10, kInfo = 20, kWarning = 30, kError = 40, kCritical = 50 };

// Receives every error-log line the server would write (already filtered by
// `loglevel`), formatted as gunicorn formats it, without the newline. Called
// from the server's threads (the loop's, a worker thread's): it must be
// thread-safe and must not call back into the server.
using LogSink = std::function<void(LogLevel level, std::string_view line)>;

// Thrown by Config's setters and factories: the message names the setting,
// the value and what was expected, as the command line's errors do.
struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Config {
 public:
  // gunicorn's defaults; Mode::kInProcess; signals left to the host. No
  // environment variable (GUNICORN_CMD_ARGS) and no ./gunicorn.conf.py is
  // read: only what is set here.
  Config();

  // As the `cppgunicorn` command reads its configuration: `args` without
  // the program name ({"-w", "2", "myapp:app"}), GUNICORN_CMD_ARGS and
  // CPPGUNICORN_CMD_ARGS, and the config file named by -c or found as
  // ./gunicorn.conf.py. Mode::kPrefork. Settings given with set() win over
  // all of these. Errors in the arguments are reported when the server
  // starts (the command's exit status 2 or 1), as the command does.
  static Config from_argv(std::vector<std::string> args);

  // A Python (gunicorn.conf.py style) or TOML config file, read when the
  // server starts; set() wins over it. Mode::kInProcess.
  static Config from_file(std::string path);

  // One setting by gunicorn's name ("bind", "threads", "keepalive"...);
  // the value as its command-line text. A list setting ("bind", "raw_env")
  // takes a vector of values; for a comma-separated one ("pythonpath",
  // "forwarded_allow_ips") a vector is joined with commas. A later set() of
  // a setting replaces the earlier. Throws ConfigError for an unknown name
  // or a bad value.
  Config& set(std::string_view name, const std::string& value);
  Config& set(std::string_view name, const char* value) { return set(name, std::string(value)); }
  Config& set(std::string_view name, long long value);
  Config& set(std::string_view name, int value) { return set(name, static_cast<long long>(value)); }
  Config& set(std::string_view name, bool value);
  Config& set(std::string_view name, const std::vector<std::string>& values);

  // The WSGI app as "module:variable" (gunicorn's APP_MODULE).
  Config& set_app(std::string uri);

  Config& set_mode(Mode mode);
  Mode mode() const;

  // Whether the server installs handlers for the signals gunicorn's master
  // (prefork) or worker (in-process) acts on: TERM, INT, QUIT, HUP, USR1...
  // Off by default: the host's signals stay the host's, and it calls
  // Server::stop() / reload() itself. The `cppgunicorn` command turns it on.
  Config& set_handle_signals(bool on);
  bool handle_signals() const;

  // Where error-log lines go instead of `errorlog` (a file, or stderr).
  // Empty: to `errorlog`.
  Config& set_log_sink(LogSink sink);

  Config(const Config&);
  Config& operator=(const Config&);
  Config(Config&&) noexcept;
  Config& operator=(Config&&) noexcept;
  ~Config();

  struct Data;  // src/embed/config_data.h

 private:
  friend struct ConfigAccess;
  std::shared_ptr<Data> data_;
};

}  // namespace cppgunicorn
