#include "config/sources.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>

#include "config/settings_table.h"

namespace cppgunicorn::config {

std::vector<std::string> shell_split(std::string_view text) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  size_t i = 0;
  while (i < text.size()) {
    char c = text[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
      ++i;
    } else if (c == '\'') {
      size_t close = text.find('\'', i + 1);
      if (close == std::string_view::npos) throw ConfigError("No closing quotation in: " + std::string(text));
      word.append(text.substr(i + 1, close - i - 1));
      in_word = true;
      i = close + 1;
    } else if (c == '"') {
      ++i;
      bool closed = false;
      while (i < text.size()) {
        if (text[i] == '"') {
          closed = true;
          ++i;
          break;
        }
        // Inside double quotes a backslash escapes only these (POSIX).
        if (text[i] == '\\' && i + 1 < text.size() &&
            std::string_view("\\\"$`\n").find(text[i + 1]) != std::string_view::npos) {
          ++i;
        }
        word += text[i++];
      }
      if (!closed) throw ConfigError("No closing quotation in: " + std::string(text));
      in_word = true;
    } else if (c == '\\') {
      if (i + 1 >= text.size()) throw ConfigError("No escaped character in: " + std::string(text));
      word += text[i + 1];
      in_word = true;
      i += 2;
    } else {
      word += c;
      in_word = true;
      ++i;
    }
  }
  if (in_word) words.push_back(std::move(word));
  return words;
}

std::string source_name(const Origin& origin) {
  switch (origin.source) {
    case Source::kDefault: return "default";
    case Source::kConfigFile: return "config file " + origin.detail;
    case Source::kGunicornEnv: return "env GUNICORN_CMD_ARGS";
    case Source::kCppgunicornEnv: return "env CPPGUNICORN_CMD_ARGS";
    case Source::kCommandLine: return "command line";
    case Source::kCode: return "the host program";
  }
  return "default";
}

namespace {

constexpr const char* kDefaultConfigFile = "gunicorn.conf.py";

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

struct SourceValues {
  SourceValues(Source source, std::string detail, std::vector<Assignment> values)
      : assignments(std::move(values)) {
    origin.source = source;
    origin.detail = std::move(detail);
  }
  Origin origin;
  std::vector<Assignment> assignments;
};

ParsedArgs parse_env(const char* variable) {
  const char* text = std::getenv(variable);
  if (text == nullptr || *text == '\0') return {};
  try {
    return parse_arguments(shell_split(text));
  } catch (const UsageError& e) {
    throw UsageError(std::string(e.what()) + " (in $" + variable + ")");
  } catch (const ConfigError& e) {
    throw ConfigError(std::string(e.what()) + " (in $" + variable + ")");
  }
}

// The last -c among assignments, or "".
std::string config_location(const ParsedArgs& parsed) {
  std::string location;
  for (const Assignment& a : parsed.assignments) {
    if (a.setting->name == "config") location = a.value;
  }
  return location;
}

std::vector<Assignment> file_assignments(const std::vector<FileValue>& values, const Origin& origin,
                                         LoadedConfig& loaded) {
  std::vector<Assignment> out;
  for (const FileValue& v : values) {
    const Setting* s = find_setting(v.name);
    if (s == nullptr) continue;
    if (v.python_object) {
      // A hook (or other callable) the reader keeps; only its name travels.
      if (s->kind == ValueKind::kCallable && s->ignored_reason.empty()) {
        loaded.config.hooks[std::string(s->name)] = "";
      } else if (s->kind == ValueKind::kCallable) {
        loaded.config.ignored[std::string(s->name)] = v.values.empty() ? "" : v.values[0];
      } else {
        throw ConfigError("Invalid value for " + std::string(s->name) + ": " +
                          (v.values.empty() ? std::string("object") : v.values[0]) +
                          " (expected a value, not a callable) in " + origin.detail);
      }
      loaded.origins[std::string(s->name)] = origin;
      loaded.shown[std::string(s->name)] = v.values.empty() ? "<callable>" : v.values[0];
      continue;
    }
    if (s->kind == ValueKind::kList) {
      for (const std::string& item : v.values) out.push_back({s, item});
      if (v.values.empty()) out.push_back({s, std::string()});  // an empty list
    } else {
      std::string joined;
      for (const std::string& item : v.values) {
        if (!joined.empty()) joined += ',';
        joined += item;
      }
      out.push_back({s, joined});
    }
  }
  return out;
}

// What the user expects from an ASGI worker class: their app is ASGI, and
// serving it as WSGI would fail on every request. Refusing is clearer.
bool is_asgi_worker_class(const std::string& worker_class) {
  std::string lower;
  for (char c : worker_class) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower.find("uvicorn") != std::string::npos || lower == "asgi" ||
         lower.find("asgi") != std::string::npos || lower.find("hypercorn") != std::string::npos;
}

}  // namespace

namespace {
std::vector<Assignment> code_assignments(const std::vector<CodeSetting>& code) {
  std::vector<Assignment> out;
  for (const CodeSetting& c : code) {
    const Setting* s = find_setting(c.name);
    if (s == nullptr) throw ConfigError("Unknown setting: '" + c.name + "'");
    if (s->kind != ValueKind::kList) {
      // One value; several are its comma-separated form (pythonpath,
      // forwarded_allow_ips...).
      std::string joined;
      for (const std::string& v : c.values) joined += (joined.empty() ? "" : ",") + v;
      out.push_back(Assignment{s, joined});
      continue;
    }
    if (c.values.empty()) out.push_back(Assignment{s, ""});
    for (const std::string& v : c.values) out.push_back(Assignment{s, v});
  }
  return out;
}
}  // namespace

void check_code_setting(const CodeSetting& setting) {
  std::vector<Assignment> assignments = code_assignments({setting});
  Config scratch;
  for (const Assignment& a : assignments) {
    if (a.setting->kind == ValueKind::kList && a.value.empty()) continue;
    if (a.setting->kind == ValueKind::kBool && a.value != "true" && a.value != "false") {
      throw ConfigError("Invalid value for " + setting.name + ": '" + a.value +
                        "' (expected true or false)");
    }
    a.setting->apply(scratch, a.value);
  }
}

LoadedConfig load_config(const std::vector<std::string>& args, PythonConfigReader* python,
                         const LoadOptions& options) {
  LoadedConfig loaded;
  Config& config = loaded.config;
  // gunicorn's default for --workers.
  if (const char* wc = options.read_environment ? std::getenv("WEB_CONCURRENCY") : nullptr;
      wc != nullptr && *wc != '\0') {
    config.workers = std::atoi(wc) > 0 ? std::atoi(wc) : 1;
  }

  ParsedArgs cli = parse_arguments(args);
  loaded.action = cli.action;
  if (cli.action != CliAction::kServe) return loaded;
  if (cli.positional.size() > 1) {
    throw UsageError("unrecognized arguments: " + cli.positional[1]);
  }
  ParsedArgs gunicorn_env, cppgunicorn_env;
  if (options.read_environment) {
    gunicorn_env = parse_env("GUNICORN_CMD_ARGS");
    cppgunicorn_env = parse_env("CPPGUNICORN_CMD_ARGS");
  }

  // Which config file: -c on the command line, else in the environment,
  // else ./gunicorn.conf.py when it exists (gunicorn's order). A relative
  // path is relative to where we were started (before --chdir).
  std::string location = config_location(cli);
  if (location.empty()) location = config_location(cppgunicorn_env);
  if (location.empty()) location = config_location(gunicorn_env);
  if (location.empty()) location = options.config_file;
  if (location.empty() && options.read_environment && file_exists(kDefaultConfigFile)) {
    location = kDefaultConfigFile;
  }

  std::vector<SourceValues> sources;
  if (!location.empty()) {
    Origin origin{Source::kConfigFile, location};
    std::vector<FileValue> values;
    std::string path = location.rfind("file:", 0) == 0 ? location.substr(5) : location;
    if (location.rfind("python:", 0) != 0 && !file_exists(path)) {
      throw ConfigError("Invalid value for config: '" + location + "' (no such file)");
    }
    if (location.rfind("python:", 0) != 0 && ends_with(path, ".toml")) {
      values = read_toml_file(path);
    } else {
      if (python == nullptr) {
        throw ConfigError("Invalid value for config: '" + location +
                          "' (Python config files cannot be read here)");
      }
      std::vector<std::string> names;
      for (const Setting& s : settings_table()) names.emplace_back(s.name);
      values = python->read(location, names);
    }
    config.config_file = location;
    sources.emplace_back(Source::kConfigFile, location, file_assignments(values, origin, loaded));
  }
  sources.emplace_back(Source::kGunicornEnv, "GUNICORN_CMD_ARGS", gunicorn_env.assignments);
  sources.emplace_back(Source::kCppgunicornEnv, "CPPGUNICORN_CMD_ARGS", cppgunicorn_env.assignments);
  sources.emplace_back(Source::kCommandLine, "", cli.assignments);
  sources.emplace_back(Source::kCode, "", code_assignments(options.code));

  // The highest source naming a setting gives all its values.
  std::map<const Setting*, size_t> winner;
  for (size_t i = 0; i < sources.size(); ++i) {
    for (const Assignment& a : sources[i].assignments) winner[a.setting] = i;
  }
  for (size_t i = 0; i < sources.size(); ++i) {
    for (const Assignment& a : sources[i].assignments) {
      if (winner[a.setting] != i) continue;
      std::string name(a.setting->name);
      std::string& shown = loaded.shown[name];
      if (loaded.origins.count(name) == 0 || a.setting->kind != ValueKind::kList) shown.clear();
      loaded.origins[name] = sources[i].origin;
      if (a.setting->kind == ValueKind::kList && a.value.empty()) continue;
      if (a.setting->kind == ValueKind::kBool) {
        shown = (a.value == "false" || a.value == "False") ? "False" : "True";
      } else {
        shown += shown.empty() ? a.value : "," + a.value;
      }
      try {
        // A bool that is false leaves the default (false) alone: command
        // lines can only switch flags on, and a file's False means default.
        // Flags on by default (sendfile) are the exception: False is news.
        bool false_is_default = a.setting->default_text == "False";
        if (a.setting->kind == ValueKind::kBool && a.value == "false" && false_is_default) continue;
        if (a.setting->kind == ValueKind::kBool) {
          // Python's True and TOML's true arrive as "true"; check others.
          std::string lower;
          for (char c : a.value) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          if (lower == "false" && false_is_default) continue;
          if (lower != "true" && lower != "false") {
            throw ConfigError("Invalid value for " + name + ": '" + a.value +
                              "' (expected true or false)");
          }
        }
        a.setting->apply(config, a.value);
        if (!a.setting->ignored_reason.empty()) config.ignored[name] = shown;
      } catch (const ConfigError& e) {
        throw ConfigError(std::string(e.what()) + " [from " + source_name(sources[i].origin) + "]");
      }
    }
  }

  if (!cli.positional.empty()) config.app_uri = cli.positional[0];
  else config.app_uri = config.wsgi_app;
  if (config.default_proc_name.empty()) {
    config.default_proc_name = config.app_uri;
    loaded.origins["default_proc_name"] = Origin{};
    loaded.shown["default_proc_name"] = config.app_uri;
  }
  if (!location.empty() && loaded.origins.count("config") == 0) {
    loaded.origins["config"] = Origin{};  // ./gunicorn.conf.py, found by default
    loaded.shown["config"] = location;
  }

  // Checked on the final value (a higher source may set it back to sync).
  const std::string worker_class_source =
      loaded.origins.count("worker_class") != 0
          ? " [from " + source_name(loaded.origins.at("worker_class")) + "]"
          : std::string();
  if (is_asgi_worker_class(config.worker_class)) {
    throw ConfigError("Invalid value for worker_class: '" + config.worker_class +
                      "' (an ASGI worker: cppgunicorn serves WSGI applications only; use sync, "
                      "or gthread with --threads N for concurrency)" + worker_class_source);
  }
  // Any class but ours (tornado, a custom one) promises a worker we do not
  // have: refused, not served with a warning.
  if (config.worker_kind() == WorkerKind::kUnknown) {
    throw ConfigError("Invalid value for worker_class: '" + config.worker_class +
                      "' (cppgunicorn has no such worker class; use sync, gthread with "
                      "--threads N, gevent or eventlet)" + worker_class_source);
  }
  std::string warning;
  auto note = [&](const std::string& name, const std::string& value, std::string_view why) {
    warning += warning.empty() ? "" : "; ";
    warning += name;
    if (!value.empty()) warning += "=" + value;
    warning += " (";
    warning += why;
    warning += ")";
  };
  for (const auto& [name, value] : config.ignored) {
    const Setting* s = find_setting(name);
    note(name, value, s ? s->ignored_reason : "not acted upon");
  }
  if (!warning.empty()) {
    loaded.ignored_warning = "Settings accepted but not acted upon by cppgunicorn: " + warning;
  }
  return loaded;
}

namespace {

// A setting's effective value as text, and where it came from.
std::string effective_text(const LoadedConfig& loaded, const Setting& s, Origin* origin) {
  std::string name(s.name);
  if (auto it = loaded.origins.find(name); it != loaded.origins.end()) {
    *origin = it->second;
    return loaded.shown.count(name) ? loaded.shown.at(name) : std::string();
  }
  if (name == "bind") {
    std::string value;
    for (const std::string& b : loaded.config.bind_or_default()) value += value.empty() ? b : "," + b;
    return value;
  }
  if (name == "workers") return std::to_string(loaded.config.workers);
  return std::string(s.default_text);
}

}  // namespace

std::string print_config(const LoadedConfig& loaded) {
  std::vector<const Setting*> sorted;
  size_t width = 0;
  for (const Setting& s : settings_table()) {
    sorted.push_back(&s);
    width = std::max(width, s.name.size());
  }
  std::sort(sorted.begin(), sorted.end(),
            [](const Setting* a, const Setting* b) { return a->name < b->name; });
  std::string out;
  for (const Setting* s : sorted) {
    Origin origin;
    std::string value = effective_text(loaded, *s, &origin);
    std::string line(s->name);
    line.resize(width, ' ');
    line += " = " + value;
    line += "  (" + source_name(origin) + ")\n";
    out += line;
  }
  return out;
}

std::string current_configuration(const LoadedConfig& loaded) {
  std::string out = "Current configuration:";
  for (const Setting& s : settings_table()) {
    Origin origin;
    out += "\n  " + std::string(s.name) + ": " + effective_text(loaded, s, &origin);
  }
  return out;
}

}  // namespace cppgunicorn::config
