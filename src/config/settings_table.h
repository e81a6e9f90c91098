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

enum class ValueKind { kString, kInt, kBool, kList };

struct Setting {
  std::string_view name;                 // gunicorn's setting name: "bind"
  std::vector<std::string_view> flags;   // "-b", "--bind"
  ValueKind kind;
  std::string_view metavar;
  std::string_view help;
  // Applies one value (for kBool, "true"); throws ConfigError.
  std::function<void(Config&, const std::string&)> apply;
};

const std::vector<Setting>& settings_table();

}  // namespace cppgunicorn::config
