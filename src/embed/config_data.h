// What a cppgunicorn::Config holds: the sources the server reads when it
// starts, and what the host hands over besides settings.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config/sources.h"
#include "cppgunicorn/config.h"

namespace cppgunicorn {

struct Config::Data {
  std::vector<std::string> args;  // a command line, without the program name
  bool read_environment = false;  // Config::from_argv: as the command
  std::string config_file;        // Config::from_file
  std::vector<config::CodeSetting> code;
  std::string app_uri;
  Mode mode = Mode::kInProcess;
  bool handle_signals = false;
  // Server(args), the command's way in: a prefork master that reaps every
  // child (it may be PID 1), as gunicorn's.
  bool is_command = false;
  LogSink log_sink;
  // A WSGI callable the host already holds, instead of importing app_uri
  // (see embed/app_object.h); a PyObject*, released with the GIL.
  std::shared_ptr<void> app_object;
};

// The server's way in to a Config's data.
struct ConfigAccess {
  static Config::Data& data(Config& c) { return *c.data_; }
  static const Config::Data& data(const Config& c) { return *c.data_; }
};

}  // namespace cppgunicorn
