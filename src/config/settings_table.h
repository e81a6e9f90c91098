// The settings table: every setting declared once with its gunicorn name, its
// command-line flags, how its value is read and its help line. The CLI and
// --help read it (and later --print-config, TOML and Python config files).
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace cppgunicorn::config {

// kList: repeatable on the command line, a list in a config file.
// kCallable: a server hook (a Python callable, or "module.function" text).
// kDict: "KEY=VALUE,KEY=VALUE" (a dict in a Python config, a table in TOML).
// kOptional: a flag whose value may be left out (argparse's nargs="?"); given
// alone it means `bare_value`.
enum class ValueKind { kString, kInt, kBool, kList, kCallable, kDict, kOptional };

struct Setting {
  std::string_view name;                 // gunicorn's setting name: "bind"
  std::vector<std::string_view> flags;   // "-b", "--bind"
  ValueKind kind;
  std::string_view metavar;
  std::string_view help;
  // Applies one value (for kBool, "true"); throws ConfigError.
  std::function<void(Config&, const std::string&)> apply;
  // What --print-config and --help show while the setting is unset.
  std::string_view default_text = {};
  // Non-empty: the setting is accepted and its value checked, but
  // cppgunicorn does not act on it (yet); this says why, in the one
  // start-up warning that names such settings.
  std::string_view ignored_reason = {};
  // kOptional: the value of the flag given without one.
  std::string_view bare_value = {};
};

const std::vector<Setting>& settings_table();

// gunicorn's validate_bool: "true"/"false" in any case. Throws ConfigError.
bool parse_bool(std::string_view setting, const std::string& value);

// The static-file settings (static_settings.cpp), appended to `table`.
std::vector<Setting> with_static_file_settings(std::vector<Setting> table);

// The setting called `name` (gunicorn's name), or nullptr.
const Setting* find_setting(std::string_view name);
// The setting one command-line flag belongs to ("--workers", or an
// unambiguous prefix of a long flag, as argparse allows), or nullptr.
const Setting* find_flag(std::string_view flag);

}  // namespace cppgunicorn::config
