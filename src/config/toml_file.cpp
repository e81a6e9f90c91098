// A TOML config file: the same setting names as gunicorn.conf.py, at the top
// level. toml++ is included here only.
#include <toml++/toml.h>

#include <cstdio>
#include <string>

#include "config/settings_table.h"
#include "config/sources.h"

namespace cppgunicorn::config {

namespace {

// One TOML value as the text form the settings table reads.
std::string scalar_text(const std::string& key, const toml::node& node, const std::string& path) {
  if (auto v = node.as_boolean()) return v->get() ? "true" : "false";
  if (auto v = node.as_integer()) return std::to_string(v->get());
  if (auto v = node.as_string()) return v->get();
  std::string shown = "a TOML value of another type";
  if (auto v = node.as_floating_point()) shown = std::to_string(v->get());
  else if (node.is_table()) shown = "a table";
  else if (node.is_array()) shown = "an array";
  throw ConfigError("Invalid value for " + key + ": " + shown +
                    " (expected a string, integer or boolean) in " + path);
}

}  // namespace

std::vector<FileValue> read_toml_file(const std::string& path) {
  toml::table table;
  try {
    table = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    throw ConfigError("Failed to read config file: " + path + " (line " +
                      std::to_string(where.line) + ", column " + std::to_string(where.column) +
                      "): " + std::string(e.description()));
  }
  std::vector<FileValue> out;
  for (const auto& [key_node, node] : table) {
    std::string key(key_node.str());
    const Setting* setting = find_setting(key);
    if (setting == nullptr) {
      throw ConfigError("Unknown setting '" + key + "' in config file " + path);
    }
    FileValue value;
    value.name = key;
    if (const toml::array* array = node.as_array()) {
      for (const toml::node& item : *array) {
        if (auto f = item.as_floating_point()) {
          // A list of numbers (metrics_buckets = [0.005, 0.01]): the
          // shortest text that reads back. A lone float stays refused (a
          // fractional timeout would otherwise be truncated somewhere).
          char text[32];
          std::snprintf(text, sizeof text, "%.15g", f->get());
          value.values.push_back(text);
        } else {
          value.values.push_back(scalar_text(key, item, path));
        }
      }
    } else if (const toml::table* sub = node.as_table()) {
      // A dict setting (secure_scheme_headers): KEY=VALUE pairs.
      std::string pairs;
      for (const auto& [k, v] : *sub) {
        if (!pairs.empty()) pairs += ',';
        pairs += std::string(k.str()) + "=" + scalar_text(key, v, path);
      }
      value.values.push_back(pairs);
    } else {
      value.values.push_back(scalar_text(key, node, path));
    }
    out.push_back(std::move(value));
  }
  return out;
}

}  // namespace cppgunicorn::config
