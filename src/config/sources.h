// Where settings come from, lowest to highest: defaults; a config file (a
// Python file, python:module.name, or TOML); GUNICORN_CMD_ARGS then
// CPPGUNICORN_CMD_ARGS (shell-split); the command line. As in gunicorn, a
// setting takes its value from the highest source that names it, and a
// list setting (bind, raw_env) is replaced, not extended, by a higher source.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace cppgunicorn::config {

struct Setting;

enum class Source { kDefault, kConfigFile, kGunicornEnv, kCppgunicornEnv, kCommandLine, kCode };

// One value for one setting from one source. A list setting may get several.
struct Assignment {
  const Setting* setting = nullptr;
  std::string value;
};

// What a config file says: module-level names that are settings, their
// values as text (see settings_table.h for each kind's text form).
struct FileValue {
  std::string name;
  std::vector<std::string> values;  // several for a list
  // A Python object kept by the reader (a hook function); `values` holds
  // its description for --print-config.
  bool python_object = false;
};

// Reads Python config files. src/config never touches Python: the embedded
// interpreter lives in src/wsgi, which implements this (wsgi::PythonConfig),
// and the server hands one in. It runs in the master, as gunicorn does, so
// the hooks the file defines can be called there later.
class PythonConfigReader {
 public:
  virtual ~PythonConfigReader() = default;
  // `location`: a file path, "file:PATH" or "python:module.name". Executes
  // it as gunicorn does (a module named __config__) and returns its
  // module-level names that `is_setting` accepts. Throws ConfigError.
  virtual std::vector<FileValue> read(const std::string& location,
                                      const std::vector<std::string>& setting_names) = 0;
};

// Reads a TOML config file with the same setting names (toml_file.cpp).
// Unknown keys are errors: a TOML file holds nothing but settings.
std::vector<FileValue> read_toml_file(const std::string& path);

// The command line (or one of the environment variables), parsed but not
// applied.
struct ParsedArgs {
  CliAction action = CliAction::kServe;
  std::vector<Assignment> assignments;
  std::vector<std::string> positional;
};
// Throws ConfigError ("unrecognized arguments: ...").
ParsedArgs parse_arguments(const std::vector<std::string>& args);

// POSIX shell word splitting, as Python's shlex.split (quotes, backslashes).
// Throws ConfigError for an unterminated quote.
std::vector<std::string> shell_split(std::string_view text);

struct Origin {
  Source source = Source::kDefault;
  std::string detail;  // the config file's path, or the variable's name
};

struct LoadedConfig {
  CliAction action = CliAction::kServe;
  Config config;
  std::map<std::string, Origin> origins;     // settings not at their default
  std::map<std::string, std::string> shown;  // their values, as given
  // One line naming the settings accepted but not acted upon; "" if none.
  std::string ignored_warning;
};

// A setting a host program set in code (cppgunicorn::Config::set): the
// highest source. Several values for a list setting.
struct CodeSetting {
  std::string name;
  std::vector<std::string> values;
};

// Which sources an embedding host's configuration reads besides `args`.
struct LoadOptions {
  // GUNICORN_CMD_ARGS, CPPGUNICORN_CMD_ARGS, WEB_CONCURRENCY and a
  // ./gunicorn.conf.py found by default: the command reads them; a
  // configuration built in code does not.
  bool read_environment = true;
  std::string config_file;  // as -c, when the command line names none
  std::vector<CodeSetting> code;
};

// Builds the effective configuration from every source. `python` may be
// null when no Python config may be read. Throws ConfigError: the message
// names the setting, the value, what was expected and the source.
LoadedConfig load_config(const std::vector<std::string>& args, PythonConfigReader* python,
                         const LoadOptions& options = {});

// Checks one code setting alone (its name, each value); throws ConfigError.
void check_code_setting(const CodeSetting& setting);

// --print-config: every setting, its effective value and where it came from.
std::string print_config(const LoadedConfig& loaded);

// gunicorn's DEBUG dump at start-up: "Current configuration:" and one
// "  name: value" line per setting, in the settings table's order.
std::string current_configuration(const LoadedConfig& loaded);

std::string source_name(const Origin& origin);

}  // namespace cppgunicorn::config
