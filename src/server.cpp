#include "cppgunicorn/server.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "base/proc_title.h"
#include "config/config.h"
#include "log/logger.h"
#include "master/arbiter.h"

namespace cppgunicorn {

Server::Server(std::vector<std::string> args) : args_(std::move(args)) {}

int Server::run() {
  config::Config config;
  // gunicorn's default for --workers.
  if (const char* wc = std::getenv("WEB_CONCURRENCY"); wc != nullptr && *wc != '\0') {
    config.workers = std::atoi(wc) > 0 ? std::atoi(wc) : 1;
  }
  try {
    switch (config::parse_command_line(args_, config)) {
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
  } catch (const std::exception& e) {
    std::fprintf(stderr, "Error: %s\n", e.what());
    return 1;
  }
  char start_dir[4096] = "";
  if (::getcwd(start_dir, sizeof start_dir) == nullptr) start_dir[0] = '\0';
  if (!config.chdir.empty() && ::chdir(config.chdir.c_str()) != 0) {
    log::error_log().error("Invalid value for chdir: '" + config.chdir + "': " + std::strerror(errno));
    return 1;
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
