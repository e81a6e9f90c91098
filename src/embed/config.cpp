#include "cppgunicorn/config.h"

#include "embed/config_data.h"

namespace cppgunicorn {

Config::Config() : data_(std::make_shared<Data>()) {}
Config::Config(const Config& other) : data_(std::make_shared<Data>(*other.data_)) {}
Config& Config::operator=(const Config& other) {
  if (this != &other) data_ = std::make_shared<Data>(*other.data_);
  return *this;
}
Config::Config(Config&&) noexcept = default;
Config& Config::operator=(Config&&) noexcept = default;
Config::~Config() = default;

Config Config::from_argv(std::vector<std::string> args) {
  Config c;
  c.data_->args = std::move(args);
  c.data_->read_environment = true;
  c.data_->mode = Mode::kPrefork;
  return c;
}

Config Config::from_file(std::string path) {
  Config c;
  c.data_->config_file = std::move(path);
  return c;
}

Config& Config::set(std::string_view name, const std::vector<std::string>& values) {
  config::CodeSetting setting{std::string(name), values};
  try {
    config::check_code_setting(setting);
  } catch (const config::ConfigError& e) {
    throw ConfigError(e.what());
  }
  // A later set() of the same setting replaces the earlier one.
  std::erase_if(data_->code, [&](const config::CodeSetting& c) { return c.name == name; });
  data_->code.push_back(std::move(setting));
  return *this;
}

Config& Config::set(std::string_view name, const std::string& value) {
  return set(name, std::vector<std::string>{value});
}

Config& Config::set(std::string_view name, long long value) {
  return set(name, std::vector<std::string>{std::to_string(value)});
}

Config& Config::set(std::string_view name, bool value) {
  return set(name, std::vector<std::string>{value ? "true" : "false"});
}

Config& Config::set_app(std::string uri) {
  data_->app_uri = std::move(uri);
  return *this;
}

Config& Config::set_mode(Mode mode) {
  data_->mode = mode;
  return *this;
}
Mode Config::mode() const { return data_->mode; }

Config& Config::set_handle_signals(bool on) {
  data_->handle_signals = on;
  return *this;
}
bool Config::handle_signals() const { return data_->handle_signals; }

Config& Config::set_log_sink(LogSink sink) {
  data_->log_sink = std::move(sink);
  return *this;
}

}  // namespace cppgunicorn
