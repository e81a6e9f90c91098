#include "cppgunicorn/server.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "base/proc_title.h"
#include "config/config.h"
#include "config/sources.h"
#include "log/access_log.h"
#include "log/logger.h"
#include "log/statsd.h"
#include "log/syslog.h"
#include "master/arbiter.h"
#include "wsgi/python_config.h"

namespace cppgunicorn {

Server::Server(std::vector<std::string> args) : args_(std::move(args)) {}

int Server::run() {
  // The master's Python, started only if a Python config file is read (or
  // hooks from TOML need it); it outlives the arbiter.
  std::vector<std::string> python_argv = {program_};
  python_argv.insert(python_argv.end(), args_.begin(), args_.end());
  wsgi::PythonConfig python(python_argv);
  config::LoadedConfig loaded;
  config::Config& config = loaded.config;
  try {
    loaded = config::load_config(args_, &python);
    switch (loaded.action) {
      case config::CliAction::kHelp:
        std::fputs(config::usage_text().c_str(), stdout);
        return 0;
      case config::CliAction::kVersion:
        std::puts("cppgunicorn (version " CPPGUNICORN_VERSION ")");
        return 0;
      case config::CliAction::kServe:
        break;
    }
    if (config.app_uri.empty()) {
      throw config::ConfigError("No application module specified.");
    }
    log::Level level;
    log::parse_level(config.loglevel, &level);
    log::error_log().set_level(level);
    log::error_log().file().open(config.errorlog, stderr);
    // gunicorn sets -e/--env in the master, before the app is loaded.
    for (const std::string& e : config.raw_env) {
      auto eq = e.find('=');
      ::setenv(e.substr(0, eq).c_str(), e.substr(eq + 1).c_str(), 1);
    }
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
  } catch (const std::exception& e) {
    std::fprintf(stderr, "Error: %s\n", e.what());
    return 1;
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
    std::vector<std::string> exec_argv = {program_};
    exec_argv.insert(exec_argv.end(), args_.begin(), args_.end());
    master::Arbiter arbiter(config, std::move(exec_argv), start_dir);
    return arbiter.run();
  } catch (const std::exception& e) {
    log::error_log().error(e.what());
    return 1;
  }
}

int main_from_command_line(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  Server server(std::move(args));
  server.set_program(argv[0]);
  // The arguments are copied: their memory now becomes the process title.
  base::init_proc_title(argc, argv);
  return server.run();
}

}  // namespace cppgunicorn
