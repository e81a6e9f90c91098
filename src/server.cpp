#include "cppgunicorn/server.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "config/config.h"
#include "log/logger.h"
#include "master/arbiter.h"

namespace cppgunicorn {

Server::Server(std::vector<std::string> args) : args_(std::move(args)) {}

int Server::run() {
  config::Config config;
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
  if (!config.chdir.empty() && ::chdir(config.chdir.c_str()) != 0) {
    log::error_log().error("Invalid value for chdir: '" + config.chdir + "': " + std::strerror(errno));
    return 1;
  }
  try {
    master::Arbiter arbiter(config);
    return arbiter.run();
  } catch (const std::exception& e) {
    log::error_log().error(e.what());
    return 1;
  }
}

int main_from_command_line(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return Server(std::move(args)).run();
}

}  // namespace cppgunicorn
