#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>

#include <arpa/inet.h>
#include <sys/socket.h>

#include "config/config.h"
#include "config/settings_table.h"
#include "config/sources.h"
#include "log/logger.h"
#include "log/statsd.h"
#include "log/syslog.h"

namespace cppgunicorn::config {

namespace {

int parse_int(std::string_view setting, const std::string& value, int min_value) {
  errno = 0;
  char* end = nullptr;
  long v = std::strtol(value.c_str(), &end, 10);
  if (value.empty() || end == nullptr || *end != '\0' || errno == ERANGE || v < min_value ||
      v > INT_MAX) {
    throw ConfigError("Invalid value for " + std::string(setting) + ": '" + value +
                      "' (expected an integer >= " + std::to_string(min_value) + ")");
  }
  return static_cast<int>(v);
}

// gunicorn reads --umask and --control-socket-mode with its auto_int:
// int(value, 0) after a leading "0d" becomes "0od": "0o077", "0x3f", "63",
// "0", "0660".
int parse_file_mode(std::string_view setting, const std::string& value) {
  std::string digits = value;
  int base = 10;
  if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'o' || digits[1] == 'O')) {
    base = 8;
    digits = digits.substr(2);
  } else if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X')) {
    base = 16;
    digits = digits.substr(2);
  } else if (digits.size() > 1 && digits[0] == '0') {
    base = 8;  // a leading zero (as in "0022") is octal, like umask(1)
  }
  errno = 0;
  char* end = nullptr;
  long v = std::strtol(digits.c_str(), &end, base);
  if (digits.empty() || *end != '\0' || errno == ERANGE || v < 0 || v > 0777) {
    throw ConfigError("Invalid value for " + std::string(setting) + ": '" + value +
                      "' (expected an integer from 0 to 0o777, e.g. 0o600)");
  }
  return static_cast<int>(v);
}

std::vector<std::string> split_commas(const std::string& value) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= value.size()) {
    size_t comma = value.find(',', start);
    if (comma == std::string::npos) comma = value.size();
    std::string item = value.substr(start, comma - start);
    if (!item.empty()) out.push_back(item);
    start = comma + 1;
  }
  return out;
}

std::function<void(Config&, const std::string&)> int_setter(std::string_view name, int Config::*field,
                                                             int min_value) {
  return [name, field, min_value](Config& c, const std::string& v) {
    c.*field = parse_int(name, v, min_value);
  };
}

// A byte count: an integer >= 0 (0 means no limit).
long long parse_byte_count(std::string_view setting, const std::string& v) {
  errno = 0;
  char* end = nullptr;
  long long n = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || errno == ERANGE || n < 0) {
    throw ConfigError("Invalid value for " + std::string(setting) + ": '" + v +
                      "' (expected an integer >= 0)");
  }
  return n;
}

// HOST:PORT with a port number (0-65535), or [IPV6]:PORT.
bool valid_host_port(const std::string& v) {
  size_t colon = v.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == v.size()) return false;
  std::string host = v.substr(0, colon);
  std::string port = v.substr(colon + 1);
  if (port.size() > 5 || !std::all_of(port.begin(), port.end(), ::isdigit) || std::stol(port) > 65535) {
    return false;
  }
  if (host.front() == '[') return host.back() == ']' && host.size() > 2;
  return host.find(':') == std::string::npos && host.find('/') == std::string::npos;
}

// metrics_buckets: positive finite numbers, increasing, at most 30.
std::vector<double> parse_buckets(const std::string& v) {
  auto fail = [&v](const std::string& why) {
    return ConfigError("Invalid value for metrics_buckets: '" + v + "' (" + why + ")");
  };
  std::vector<double> out;
  for (const std::string& item : split_commas(v)) {
    char* end = nullptr;
    errno = 0;
    double d = std::strtod(item.c_str(), &end);
    if (item.empty() || *end != '\0' || errno == ERANGE || !(d > 0) || d > 1e9) {
      throw fail("'" + item + "' is not a number of seconds > 0");
    }
    if (!out.empty() && d <= out.back()) throw fail("the bounds must increase");
    out.push_back(d);
  }
  if (out.empty()) throw fail("expected at least one bound");
  if (out.size() > 30) throw fail("at most 30 bounds");
  return out;
}

std::function<void(Config&, const std::string&)> string_setter(std::string Config::*field) {
  return [field](Config& c, const std::string& v) { c.*field = v; };
}

}  // namespace

// --- Value syntax shared by the config area's settings ----------------------

// gunicorn's validate_bool: "true"/"false" in any case (a bare flag is "true").
bool parse_bool(std::string_view setting, const std::string& value) {
  std::string lower;
  for (char ch : value) {
    if (ch != ' ') lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  }
  if (lower == "true") return true;
  if (lower == "false") return false;
  throw ConfigError("Invalid value for " + std::string(setting) + ": '" + value +
                    "' (expected true or false)");
}

namespace {

std::function<void(Config&, const std::string&)> bool_setter(std::string_view name,
                                                              bool Config::*field) {
  return [name, field](Config& c, const std::string& v) { c.*field = parse_bool(name, v); };
}

// gunicorn's validate_string_to_list: comma-separated, items trimmed.
std::vector<std::string> split_list(const std::string& value) {
  std::vector<std::string> out;
  for (std::string item : split_commas(value)) {
    size_t b = item.find_first_not_of(" \t");
    size_t e = item.find_last_not_of(" \t");
    if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
  }
  return out;
}

std::function<void(Config&, const std::string&)> list_setter(std::vector<std::string> Config::*field) {
  return [field](Config& c, const std::string& v) { c.*field = split_list(v); };
}

// An IPv4/IPv6 address or network ("10.0.0.0/8"), as gunicorn's
// forwarded_allow_ips accepts; "*" means any peer.
bool is_address_or_network(const std::string& item) {
  if (item == "*") return true;
  std::string addr = item;
  auto slash = item.find('/');
  int max_prefix = item.find(':') == std::string::npos ? 32 : 128;
  if (slash != std::string::npos) {
    addr = item.substr(0, slash);
    std::string prefix = item.substr(slash + 1);
    if (prefix.empty() || prefix.size() > 3 ||
        prefix.find_first_not_of("0123456789") != std::string::npos ||
        std::stoi(prefix) > max_prefix)
      return false;
  }
  unsigned char buf[16];
  return ::inet_pton(AF_INET, addr.c_str(), buf) == 1 || ::inet_pton(AF_INET6, addr.c_str(), buf) == 1;
}

std::function<void(Config&, const std::string&)> address_list_setter(
    std::string_view name, std::vector<std::string> Config::*field) {
  return [name, field](Config& c, const std::string& v) {
    std::vector<std::string> items = split_list(v);
    for (const std::string& item : items) {
      if (!is_address_or_network(item)) {
        throw ConfigError("Invalid value for " + std::string(name) + ": '" + v + "' ('" + item +
                          "' is not an IP address or network; expected a comma-separated "
                          "list such as 127.0.0.1,10.0.0.0/8 or *)");
      }
    }
    c.*field = std::move(items);
  };
}

// "KEY=VALUE,KEY=VALUE": the text form of a dict setting.
std::vector<std::pair<std::string, std::string>> parse_dict(std::string_view name,
                                                           const std::string& value) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const std::string& item : split_list(value)) {
    auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw ConfigError("Invalid value for " + std::string(name) + ": '" + value +
                        "' (expected a dict: HEADER=VALUE pairs)");
    }
    out.emplace_back(item.substr(0, eq), item.substr(eq + 1));
  }
  return out;
}

// Settings cppgunicorn accepts without acting on them still get gunicorn's
// value checks, so a typo is an error here as it would be there.
std::function<void(Config&, const std::string&)> accept_string(std::string_view name) {
  return [name](Config& c, const std::string& v) { c.ignored[std::string(name)] = v; };
}

std::function<void(Config&, const std::string&)> accept_int(std::string_view name) {
  return [name](Config& c, const std::string& v) {
    parse_int(name, v, 0);
    c.ignored[std::string(name)] = v;
  };
}

std::function<void(Config&, const std::string&)> accept_bool(std::string_view name) {
  return [name](Config& c, const std::string& v) {
    if (parse_bool(name, v)) c.ignored[std::string(name)] = "True";
  };
}

std::function<void(Config&, const std::string&)> accept_choice(
    std::string_view name, std::vector<std::string_view> choices) {
  return [name, choices](Config& c, const std::string& v) {
    std::string lower;
    for (char ch : v) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    for (std::string_view choice : choices) {
      if (lower == choice) {
        c.ignored[std::string(name)] = v;
        return;
      }
    }
    std::string expected;
    for (std::string_view choice : choices) {
      if (!expected.empty()) expected += ", ";
      expected += choice;
    }
    throw ConfigError("Invalid value for " + std::string(name) + ": '" + v +
                      "' (expected one of " + expected + ")");
  };
}

std::function<void(Config&, const std::string&)> accept_list(std::string_view name) {
  return [name](Config& c, const std::string& v) {
    std::string& all = c.ignored[std::string(name)];
    all += all.empty() ? v : "," + v;
  };
}

// A hook from TOML (or a Python config's string value): "module.function".
// Objects from a Python config never come through here.
std::function<void(Config&, const std::string&)> hook_setter(std::string_view name) {
  return [name](Config& c, const std::string& v) {
    if (v.find('.') == std::string::npos || v.front() == '.' || v.back() == '.') {
      throw ConfigError("Invalid value for " + std::string(name) + ": '" + v +
                        "' (expected a callable, or its import path: module.function)");
    }
    c.hooks[std::string(name)] = v;
  };
}

std::function<void(Config&, const std::string&)> accept_hook(std::string_view name) {
  return [name](Config& c, const std::string& v) { c.ignored[std::string(name)] = v; };
}

// --- Refused settings --------------------------------------------------------
// A setting that changes what is spoken on the wire, or who may connect, and
// that cppgunicorn cannot honour stops the server instead of being accepted
// with a warning: the front end (nginx's uwsgi_pass, an h2 client) would
// otherwise talk to a server that does not understand it, and the warning
// is easy to miss in a deployment's logs.

std::string lowercase(const std::string& value) {
  std::string lower;
  for (char ch : value) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return lower;
}

// gunicorn's --protocol: every listener speaks HTTP/1.x, or uwsgi packets
// (what nginx's uwsgi_pass sends). gunicorn takes the value as written; the
// case is folded here, as a typo in it would otherwise start a server that
// no front-end can talk to.
void apply_protocol(Config& c, const std::string& v) {
  std::string lower = lowercase(v);
  if (lower != "http" && lower != "uwsgi") {
    throw ConfigError("Invalid value for protocol: '" + v + "' (expected http or uwsgi)");
  }
  c.protocol = lower;
}

// gunicorn's validate_http_protocols (comma-separated h1, h2, h3; empty
// means h1), then anything but h1 alone is refused.
void apply_http_protocols(Config&, const std::string& v) {
  std::vector<std::string> asked;
  for (const std::string& item : split_list(v)) {
    std::string proto = lowercase(item);
    if (proto != "h1" && proto != "h2" && proto != "h3") {
      throw ConfigError("Invalid value for http_protocols: '" + v + "' ('" + item +
                        "' is not a protocol; expected a comma-separated list of h1, h2, h3)");
    }
    if (std::find(asked.begin(), asked.end(), proto) != asked.end()) {
      throw ConfigError("Invalid value for http_protocols: '" + v + "' ('" + item +
                        "' is given twice)");
    }
    asked.push_back(proto);
  }
  for (const std::string& proto : asked) {
    if (proto != "h1") {
      throw ConfigError("Invalid value for http_protocols: '" + v +
                        "' (only HTTP/1.x is spoken; use h1, and put a proxy that speaks " +
                        (proto == "h3" ? "HTTP/3" : "HTTP/2") + " to clients in front)");
    }
  }
}

}  // namespace

const std::vector<Setting>& settings_table() {
  static const std::vector<Setting> table = with_static_file_settings({
      {"bind", {"-b", "--bind"}, ValueKind::kList, "ADDRESS",
       "The socket to bind: HOST:PORT, [IPV6]:PORT or unix:PATH. Repeatable.",
       [](Config& c, const std::string& v) { c.bind.push_back(v); }, "127.0.0.1:8000"},
      {"reuse_port", {"--reuse-port"}, ValueKind::kBool, "",
       "Set the SO_REUSEPORT flag on the listening socket.",
       [](Config& c, const std::string&) { c.reuse_port = true; }, "False"},
      {"backlog", {"--backlog"}, ValueKind::kInt, "INT", "The maximum number of pending connections.",
       int_setter("backlog", &Config::backlog, 1), "2048"},
      {"workers", {"-w", "--workers"}, ValueKind::kInt, "INT",
       "The number of worker processes for handling requests.",
       int_setter("workers", &Config::workers, 1), "1"},
      {"threads", {"--threads"}, ValueKind::kInt, "INT",
       "The number of worker threads for handling requests.",
       int_setter("threads", &Config::threads, 1), "1"},
      {"timeout", {"-t", "--timeout"}, ValueKind::kInt, "INT",
       "Workers silent for more than this many seconds are killed and restarted.",
       int_setter("timeout", &Config::timeout, 0), "30"},
      {"graceful_timeout", {"--graceful-timeout"}, ValueKind::kInt, "INT",
       "Timeout for graceful workers restart.",
       int_setter("graceful_timeout", &Config::graceful_timeout, 0), "30"},
      {"keepalive", {"--keep-alive"}, ValueKind::kInt, "INT",
       "The number of seconds to wait for requests on a Keep-Alive connection.",
       int_setter("keepalive", &Config::keepalive, 0), "2"},
      {"max_requests", {"--max-requests"}, ValueKind::kInt, "INT",
       "The maximum number of requests a worker will process before restarting.",
       int_setter("max_requests", &Config::max_requests, 0), "0"},
      {"max_requests_jitter", {"--max-requests-jitter"}, ValueKind::kInt, "INT",
       "The maximum jitter to add to the max_requests setting.",
       int_setter("max_requests_jitter", &Config::max_requests_jitter, 0), "0"},
      {"chdir", {"--chdir"}, ValueKind::kString, "DIR",
       "Change directory to DIR before loading apps.", string_setter(&Config::chdir), "."},
      {"pythonpath", {"--pythonpath"}, ValueKind::kString, "STRING",
       "A comma-separated list of directories to add to the Python path.",
       [](Config& c, const std::string& v) {
         for (auto& p : split_commas(v)) c.pythonpath.push_back(p);
       }, ""},
      {"preload_app", {"--preload"}, ValueKind::kBool, "",
       "Load application code before the worker processes are forked.",
       [](Config& c, const std::string&) { c.preload_app = true; }, "False"},
      {"pidfile", {"-p", "--pid"}, ValueKind::kString, "FILE",
       "A filename to use for the PID file.", string_setter(&Config::pidfile), ""},
      {"daemon", {"-D", "--daemon"}, ValueKind::kBool, "",
       "Daemonize the cppgunicorn process.",
       [](Config& c, const std::string&) { c.daemon = true; }, "False"},
      {"user", {"-u", "--user"}, ValueKind::kString, "USER",
       "Switch worker processes to run as this user (name or uid).",
       string_setter(&Config::user), ""},
      {"group", {"-g", "--group"}, ValueKind::kString, "GROUP",
       "Switch worker process to run as this group (name or gid).",
       string_setter(&Config::group), ""},
      {"umask", {"-m", "--umask"}, ValueKind::kInt, "INT",
       "A bit mask for the file mode on files written by cppgunicorn (0o077, 0x3f or 63).",
       [](Config& c, const std::string& v) { c.umask = parse_file_mode("umask", v); }, "0"},
      {"worker_tmp_dir", {"--worker-tmp-dir"}, ValueKind::kString, "DIR",
       "A directory to use for the worker heartbeat temporary file.",
       string_setter(&Config::worker_tmp_dir), ""},
      {"proc_name", {"-n", "--name"}, ValueKind::kString, "STRING",
       "A base to use with setproctitle for process naming.", string_setter(&Config::proc_name), ""},
      {"accesslog", {"--access-logfile"}, ValueKind::kString, "FILE",
       "The Access log file to write to. '-' means log to stdout.",
       string_setter(&Config::accesslog), ""},
      {"access_log_format", {"--access-logformat"}, ValueKind::kString, "STRING",
       "The access log format.", string_setter(&Config::access_log_format), "%(h)s %(l)s %(u)s %(t)s \"%(r)s\" %(s)s %(b)s \"%(f)s\" \"%(a)s\""},
      {"errorlog", {"--error-logfile", "--log-file"}, ValueKind::kString, "FILE",
       "The Error log file to write to. '-' means log to stderr.",
       string_setter(&Config::errorlog), "-"},
      {"loglevel", {"--log-level"}, ValueKind::kString, "LEVEL",
       "The granularity of Error log outputs: debug, info, warning, error, critical.",
       [](Config& c, const std::string& v) {
         log::Level level;
         if (!log::parse_level(v, &level)) {
           throw ConfigError("Invalid value for loglevel: '" + v +
                             "' (expected one of debug, info, warning, error, critical)");
         }
         c.loglevel = v;
       }, "info"},
      // --- Every other gunicorn setting (config area) -------------------------
      // Acted upon: configuration sources and what they load.
      {"config", {"-c", "--config"}, ValueKind::kString, "CONFIG",
       "A Python config file (gunicorn.conf.py), python:module.name, or a .toml file.",
       string_setter(&Config::config_file), "./gunicorn.conf.py"},
      {"wsgi_app", {}, ValueKind::kString, "",
       "The WSGI application to serve when no APP_MODULE is given (module:variable).",
       string_setter(&Config::wsgi_app), "None"},
      {"check_config", {"--check-config"}, ValueKind::kBool, "",
       "Check the configuration and that the app loads; exit 0, or 1 with the reason.",
       bool_setter("check_config", &Config::check_config), "False"},
      {"print_config", {"--print-config"}, ValueKind::kBool, "",
       "Print every effective setting and where it came from, then exit as --check-config.",
       bool_setter("print_config", &Config::print_config), "False"},
      {"raw_env", {"-e", "--env"}, ValueKind::kList, "ENV",
       "Set an environment variable in the server and its workers: NAME=VALUE. Repeatable.",
       [](Config& c, const std::string& v) {
         if (v.find('=') == std::string::npos || v.front() == '=') {
           throw ConfigError("Invalid value for raw_env: '" + v + "' (expected NAME=VALUE)");
         }
         c.raw_env.push_back(v);
       }, ""},
      {"worker_class", {"-k", "--worker-class"}, ValueKind::kString, "STRING",
       "The type of workers: sync and gthread (the libuv loop, --threads N pool threads), "
       "gevent and eventlet (the app in greenlets, up to --worker-connections at once, "
       "sockets patched); gunicorn's class paths too. Other classes are refused.",
       string_setter(&Config::worker_class), "sync"},
      {"default_proc_name", {}, ValueKind::kString, "",
       "The process name when proc_name is not set (the app module).",
       string_setter(&Config::default_proc_name), "cppgunicorn"},
      {"capture_output", {"--capture-output"}, ValueKind::kBool, "",
       "Redirect stdout/stderr of the workers to the error log file.",
       bool_setter("capture_output", &Config::capture_output), "False"},
      {"enable_stdio_inheritance", {"-R", "--enable-stdio-inheritance"}, ValueKind::kBool, "",
       "With --daemon, keep stdout/stderr instead of redirecting them to /dev/null.",
       bool_setter("enable_stdio_inheritance", &Config::enable_stdio_inheritance), "False"},
      {"disable_redirect_access_to_syslog", {"--disable-redirect-access-to-syslog"},
       ValueKind::kBool, "", "Do not send the access log to syslog.",
       bool_setter("disable_redirect_access_to_syslog", &Config::disable_redirect_access_to_syslog),
       "False"},
      {"forwarded_allow_ips", {"--forwarded-allow-ips"}, ValueKind::kString, "STRING",
       "Front-end addresses or networks (comma-separated, * for any) trusted to set "
       "secure_scheme_headers and forwarder_headers.",
       address_list_setter("forwarded_allow_ips", &Config::forwarded_allow_ips), "127.0.0.1,::1"},
      {"secure_scheme_headers", {}, ValueKind::kDict, "",
       "Headers (and the value meaning https) a trusted front-end sets to mark HTTPS.",
       [](Config& c, const std::string& v) {
         auto pairs = parse_dict("secure_scheme_headers", v);
         for (auto& [k, val] : pairs) {
           for (char& ch : k) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
         }
         c.secure_scheme_headers = std::move(pairs);
       }, "X-FORWARDED-PROTOCOL=ssl,X-FORWARDED-PROTO=https,X-FORWARDED-SSL=on"},
      {"forwarder_headers", {"--forwarder-headers"}, ValueKind::kString, "STRING",
       "Headers with underscores (SCRIPT_NAME, PATH_INFO) a trusted front-end may set "
       "into the environ.",
       list_setter(&Config::forwarder_headers), "SCRIPT_NAME,PATH_INFO"},
      {"statsd_host", {"--statsd-host"}, ValueKind::kString, "STATSD_ADDR",
       "host:port of the StatsD server to send metrics to.",
       [](Config& c, const std::string& v) {
         if (!log::valid_statsd_address(v)) {
           throw ConfigError("Invalid value for statsd_host: '" + v +
                             "' (expected host:port, [ipv6]:port or unix:PATH)");
         }
         c.statsd_host = v;
       }, "None"},
      {"statsd_prefix", {"--statsd-prefix"}, ValueKind::kString, "STATSD_PREFIX",
       "Prefix for the StatsD metric names.", string_setter(&Config::statsd_prefix), ""},
      {"dogstatsd_tags", {"--dogstatsd-tags"}, ValueKind::kString, "DOGSTATSD_TAGS",
       "Comma-separated DogStatsD tags added to every metric.",
       string_setter(&Config::dogstatsd_tags), ""},
      // Server hooks: Python callables from a Python config file, or
      // "module.function" from TOML.
      {"on_starting", {}, ValueKind::kCallable, "", "Called just before the master process is initialized.",
       hook_setter("on_starting"), "<no-op>"},
      {"on_reload", {}, ValueKind::kCallable, "", "Called when workers are reloaded (HUP).",
       hook_setter("on_reload"), "<no-op>"},
      {"when_ready", {}, ValueKind::kCallable, "", "Called just after the server is started.",
       hook_setter("when_ready"), "<no-op>"},
      {"pre_fork", {}, ValueKind::kCallable, "", "Called just before a worker is forked.",
       hook_setter("pre_fork"), "<no-op>"},
      {"post_fork", {}, ValueKind::kCallable, "", "Called just after a worker has been forked.",
       hook_setter("post_fork"), "<no-op>"},
      {"post_worker_init", {}, ValueKind::kCallable, "",
       "Called just after a worker has initialized the application.",
       hook_setter("post_worker_init"), "<no-op>"},
      {"worker_int", {}, ValueKind::kCallable, "", "Called in a worker that got SIGINT or SIGQUIT.",
       hook_setter("worker_int"), "<no-op>"},
      {"worker_abort", {}, ValueKind::kCallable, "",
       "Called in a worker that got SIGABRT (a --timeout).", hook_setter("worker_abort"), "<no-op>"},
      {"pre_exec", {}, ValueKind::kCallable, "", "Called just before a new master is executed (USR2).",
       hook_setter("pre_exec"), "<no-op>"},
      {"pre_request", {}, ValueKind::kCallable, "", "Called just before a worker processes a request.",
       hook_setter("pre_request"), "<no-op>"},
      {"post_request", {}, ValueKind::kCallable, "", "Called after a worker processes a request.",
       hook_setter("post_request"), "<no-op>"},
      {"child_exit", {}, ValueKind::kCallable, "", "Called in the master just after a worker exited.",
       hook_setter("child_exit"), "<no-op>"},
      {"worker_exit", {}, ValueKind::kCallable, "", "Called in a worker just before it exits.",
       hook_setter("worker_exit"), "<no-op>"},
      {"nworkers_changed", {}, ValueKind::kCallable, "", "Called when the number of workers changed.",
       hook_setter("nworkers_changed"), "<no-op>"},
      {"on_exit", {}, ValueKind::kCallable, "", "Called just before the master exits.",
       hook_setter("on_exit"), "<no-op>"},
      // Accepted, checked, not acted upon (each says why).
      {"ssl_context", {}, ValueKind::kCallable, "", "Called to create the TLS context.",
       accept_hook("ssl_context"), "<no-op>", "refused at start (see check_settings)"},
      {"spew", {"--spew"}, ValueKind::kBool, "", "Trace every line the server executes.",
       accept_bool("spew"), "False", "no line tracing in a C++ server"},
      {"reload", {"--reload"}, ValueKind::kBool, "",
       "Restart workers when their code changes (for development).",
       bool_setter("reload", &Config::reload), "False"},
      {"reload_engine", {"--reload-engine"}, ValueKind::kString, "STRING",
       "The implementation for --reload: auto, poll or inotify (all poll once a second).",
       [](Config& c, const std::string& v) {
         accept_choice("reload_engine", {"auto", "poll", "inotify"})(c, v);
         c.ignored.erase("reload_engine");  // every engine polls; nothing to warn about
       }, "auto"},
      {"reload_extra_files", {"--reload-extra-file"}, ValueKind::kList, "FILES",
       "Extra files (or glob patterns) to watch with --reload. Repeatable.",
       [](Config& c, const std::string& v) { c.reload_extra_files.push_back(v); }, ""},
      {"sendfile", {"--no-sendfile"}, ValueKind::kBool, "", "Disable sendfile().",
       [](Config& c, const std::string& v) { c.sendfile = parse_bool("sendfile", v); }, "None"},
      {"initgroups", {"--initgroups"}, ValueKind::kBool, "",
       "Set the supplementary groups of the user given with --user.", accept_bool("initgroups"),
       "False", "supplementary groups are always set from --user"},
      {"tmp_upload_dir", {}, ValueKind::kString, "",
       "Directory for request bodies spooled to disk (past 1 MiB); default $TMPDIR.",
       [](Config& c, const std::string& v) { c.tmp_upload_dir = v; }, "None"},
      {"paste", {"--paste", "--paster"}, ValueKind::kString, "STRING",
       "Load a PasteDeploy config file.", accept_string("paste"), "None",
       "PasteDeploy apps are not supported; give APP_MODULE"},
      {"raw_paste_global_conf", {"--paste-global"}, ValueKind::kList, "CONF",
       "PasteDeploy global config variables.", accept_list("raw_paste_global_conf"), "",
       "PasteDeploy apps are not supported"},
      {"permit_unconventional_http_version", {"--permit-unconventional-http-version"},
       ValueKind::kBool, "", "Accept HTTP versions other than 1.0 and 1.1.",
       accept_bool("permit_unconventional_http_version"), "False",
       "HTTP versions other than 1.x are always refused"},
      {"protocol", {"--protocol"}, ValueKind::kString, "STRING",
       "The protocol of every listener: http (HTTP/1.x), or uwsgi (the uwsgi binary protocol, "
       "for nginx's uwsgi_pass).", apply_protocol, "http"},
      {"uwsgi_allow_ips", {"--uwsgi-allow-from"}, ValueKind::kString, "STRING",
       "Addresses or networks allowed to send uwsgi requests (comma separated; * for any). "
       "Unix-socket peers are always allowed.",
       address_list_setter("uwsgi_allow_ips", &Config::uwsgi_allow_ips), "127.0.0.1,::1"},
      {"root_path", {"--root-path"}, ValueKind::kString, "STRING", "The ASGI root_path.",
       accept_string("root_path"), "", "an ASGI setting; use SCRIPT_NAME for WSGI"},
      // Logging.
      {"logger_class", {"--logger-class"}, ValueKind::kString, "STRING", "The logger class.",
       accept_string("logger_class"), "gunicorn.glogging.Logger", "the logger is built in"},
      {"logconfig", {"--log-config"}, ValueKind::kString, "FILE",
       "A Python logging configuration file (fileConfig format) for the gunicorn.error and "
       "gunicorn.access loggers.", string_setter(&Config::logconfig), "None"},
      {"logconfig_dict", {}, ValueKind::kDict, "",
       "A logging dictConfig (a dict in a Python config file), merged into gunicorn's defaults.",
       string_setter(&Config::logconfig_dict), "{}"},
      {"logconfig_json", {"--log-config-json"}, ValueKind::kString, "FILE",
       "A logging dictConfig in a JSON file.", string_setter(&Config::logconfig_json), "None"},
      {"syslog", {"--log-syslog"}, ValueKind::kBool, "",
       "Send the error log (and the access log) to syslog.",
       bool_setter("syslog", &Config::syslog), "False"},
      {"syslog_addr", {"--log-syslog-to"}, ValueKind::kString, "SYSLOG_ADDR",
       "The syslog address: udp://HOST:PORT, tcp://HOST:PORT or unix://PATH[#dgram|#stream].",
       [](Config& c, const std::string& v) {
         if (!log::valid_syslog_address(v)) {
           throw ConfigError("Invalid value for syslog_addr: '" + v +
                             "' (expected udp://HOST:PORT, tcp://HOST:PORT or unix://PATH)");
         }
         c.syslog_addr = v;
       }, "udp://localhost:514"},
      {"syslog_prefix", {"--log-syslog-prefix"}, ValueKind::kString, "SYSLOG_PREFIX",
       "The program name in syslog lines (gunicorn.PREFIX.error); default: the process name.",
       string_setter(&Config::syslog_prefix), "None"},
      {"syslog_facility", {"--log-syslog-facility"}, ValueKind::kString, "SYSLOG_FACILITY",
       "The syslog facility name.",
       [](Config& c, const std::string& v) {
         if (log::syslog_facility_code(v) < 0) {
           throw ConfigError("Invalid value for syslog_facility: '" + v +
                             "' (expected a facility name: user, daemon, local0 ... local7, ...)");
         }
         c.syslog_facility = v;
       }, "user"},
      {"enable_backlog_metric", {"--enable-backlog-metric"}, ValueKind::kBool, "",
       "Report the socket backlog as a metric.", accept_bool("enable_backlog_metric"), "False",
       "StatsD metrics are not sent yet"},
      // TLS (src/net/tls.cpp): checked at start, served by every listener.
      {"keyfile", {"--keyfile"}, ValueKind::kString, "FILE",
       "TLS private key file (PEM); default: the key is in certfile.",
       [](Config& c, const std::string& v) { c.tls.keyfile = v; }, "None"},
      {"certfile", {"--certfile"}, ValueKind::kString, "FILE",
       "TLS certificate file (PEM, with its chain): serve HTTPS on every listener.",
       [](Config& c, const std::string& v) { c.tls.certfile = v; }, "None"},
      {"ssl_version", {"--ssl-version"}, ValueKind::kString, "",
       "The oldest TLS version accepted: TLS (TLS 1.2, the default), TLSv1_2 or TLSv1_3.",
       [](Config& c, const std::string& v) { c.tls.ssl_version = v; }, "2"},
      {"cert_reqs", {"--cert-reqs"}, ValueKind::kInt, "",
       "Client certificates: 0 not asked for, 1 optional, 2 required (checked against ca_certs).",
       [](Config& c, const std::string& v) { c.tls.cert_reqs = parse_int("cert_reqs", v, 0); },
       "0"},
      {"ca_certs", {"--ca-certs"}, ValueKind::kString, "FILE",
       "CA certificates (PEM) that client certificates are checked against.",
       [](Config& c, const std::string& v) { c.tls.ca_certs = v; }, "None"},
      {"suppress_ragged_eofs", {"--suppress-ragged-eofs"}, ValueKind::kBool, "",
       "Take a TLS client's EOF without close_notify as the end of its stream (false: drop "
       "the connection).",
       [](Config& c, const std::string& v) {
         c.tls.suppress_ragged_eofs = parse_bool("suppress_ragged_eofs", v);
       }, "True"},
      {"do_handshake_on_connect", {"--do-handshake-on-connect"}, ValueKind::kBool, "",
       "Do the TLS handshake on connect (always so: it starts as soon as its bytes arrive).",
       [](Config&, const std::string& v) { parse_bool("do_handshake_on_connect", v); }, "False"},
      {"ciphers", {"--ciphers"}, ValueKind::kString, "",
       "TLS 1.2 cipher suites, as an OpenSSL cipher list; default: OpenSSL's.",
       [](Config& c, const std::string& v) { c.tls.ciphers = v; }, "None"},
      // gunicorn's control socket (gunicornc).
      {"control_socket", {"--control-socket"}, ValueKind::kString, "PATH",
       "The control socket's path (gunicornc, cppgunicornc); relative to the directory the "
       "server runs in.",
       [](Config& c, const std::string& v) { c.control_socket = v; },
       "$XDG_RUNTIME_DIR/gunicorn.ctl or $HOME/.gunicorn/gunicorn.ctl"},
      {"control_socket_mode", {"--control-socket-mode"}, ValueKind::kInt, "INT",
       "The control socket's file mode (0o600: only its owner).",
       [](Config& c, const std::string& v) {
         c.control_socket_mode = parse_file_mode("control_socket_mode", v);
       }, "384"},
      {"control_socket_disable", {"--no-control-socket"}, ValueKind::kBool, "",
       "Open no control socket.", bool_setter("control_socket_disable", &Config::control_socket_disable),
       "False"},
      // HTTP/2, ASGI, dirty arbiters: other protocols and worker kinds.
      {"http_protocols", {"--http-protocols"}, ValueKind::kString, "STRING",
       "Protocols to offer: h1 (h2 and h3 are refused: only HTTP/1.x is spoken).",
       apply_http_protocols, "h1"},
      {"http2_cleartext", {"--http2-cleartext"}, ValueKind::kString, "STRING",
       "HTTP/2 without TLS: off, prior-knowledge, upgrade, both.",
       accept_choice("http2_cleartext", {"off", "prior-knowledge", "upgrade", "both"}), "off",
       "HTTP/2 is not supported"},
      {"http2_max_concurrent_streams", {"--http2-max-concurrent-streams"}, ValueKind::kInt, "INT",
       "HTTP/2 streams per connection.", accept_int("http2_max_concurrent_streams"), "100",
       "HTTP/2 is not supported"},
      {"http2_initial_window_size", {"--http2-initial-window-size"}, ValueKind::kInt, "INT",
       "HTTP/2 initial window size.", accept_int("http2_initial_window_size"), "65535",
       "HTTP/2 is not supported"},
      {"http2_max_frame_size", {"--http2-max-frame-size"}, ValueKind::kInt, "INT",
       "HTTP/2 maximum frame size.", accept_int("http2_max_frame_size"), "16384",
       "HTTP/2 is not supported"},
      {"http2_max_header_list_size", {"--http2-max-header-list-size"}, ValueKind::kInt, "INT",
       "HTTP/2 maximum header list size.", accept_int("http2_max_header_list_size"), "65536",
       "HTTP/2 is not supported"},
      {"http_parser", {"--http-parser"}, ValueKind::kString, "STRING",
       "gunicorn's HTTP parser: auto, fast, python.",
       accept_choice("http_parser", {"auto", "fast", "python"}), "auto",
       "cppgunicorn has its own parser"},
      {"asgi_loop", {"--asgi-loop"}, ValueKind::kString, "STRING", "ASGI event loop.",
       accept_choice("asgi_loop", {"auto", "asyncio", "uvloop"}), "auto", "ASGI is not supported"},
      {"asgi_lifespan", {"--asgi-lifespan"}, ValueKind::kString, "STRING", "ASGI lifespan events.",
       accept_choice("asgi_lifespan", {"auto", "on", "off"}), "auto", "ASGI is not supported"},
      {"asgi_disconnect_grace_period", {"--asgi-disconnect-grace-period"}, ValueKind::kInt, "INT",
       "ASGI disconnect grace period.", accept_int("asgi_disconnect_grace_period"), "3",
       "ASGI is not supported"},
      {"websocket_max_message_size", {"--websocket-max-message-size"}, ValueKind::kInt, "INT",
       "Largest WebSocket message.", accept_int("websocket_max_message_size"), "16777216",
       "WebSocket is not supported"},
      {"dirty_apps", {"--dirty-app"}, ValueKind::kList, "STRING", "Dirty arbiter apps.",
       accept_list("dirty_apps"), "", "dirty arbiters are not supported"},
      {"dirty_workers", {"--dirty-workers"}, ValueKind::kInt, "INT", "Dirty workers.",
       accept_int("dirty_workers"), "0", "dirty arbiters are not supported"},
      {"dirty_timeout", {"--dirty-timeout"}, ValueKind::kInt, "INT", "Dirty worker timeout.",
       accept_int("dirty_timeout"), "300", "dirty arbiters are not supported"},
      {"dirty_threads", {"--dirty-threads"}, ValueKind::kInt, "INT", "Dirty worker threads.",
       accept_int("dirty_threads"), "1", "dirty arbiters are not supported"},
      {"dirty_graceful_timeout", {"--dirty-graceful-timeout"}, ValueKind::kInt, "INT",
       "Dirty worker graceful timeout.", accept_int("dirty_graceful_timeout"), "30",
       "dirty arbiters are not supported"},
      {"on_dirty_starting", {}, ValueKind::kCallable, "", "Dirty arbiter hook.",
       accept_hook("on_dirty_starting"), "<no-op>", "dirty arbiters are not supported"},
      {"dirty_post_fork", {}, ValueKind::kCallable, "", "Dirty arbiter hook.",
       accept_hook("dirty_post_fork"), "<no-op>", "dirty arbiters are not supported"},
      {"dirty_worker_init", {}, ValueKind::kCallable, "", "Dirty arbiter hook.",
       accept_hook("dirty_worker_init"), "<no-op>", "dirty arbiters are not supported"},
      {"dirty_worker_exit", {}, ValueKind::kCallable, "", "Dirty arbiter hook.",
       accept_hook("dirty_worker_exit"), "<no-op>", "dirty arbiters are not supported"},
      // HTTP parsing, limits and connections (src/http, src/worker/connection)
      {"limit_request_line", {"--limit-request-line"}, ValueKind::kInt, "INT",
       "The maximum size of HTTP request line in bytes (0: unlimited; at most 8190).",
       int_setter("limit_request_line", &Config::limit_request_line, 0), "4094"},
      {"limit_request_fields", {"--limit-request-fields"}, ValueKind::kInt, "INT",
       "Limit the number of HTTP headers fields in a request (at most 32768).",
       int_setter("limit_request_fields", &Config::limit_request_fields, 0), "100"},
      {"limit_request_field_size", {"--limit-request-field_size"}, ValueKind::kInt, "INT",
       "Limit the allowed size of an HTTP request header field (0: the default, 8190).",
       int_setter("limit_request_field_size", &Config::limit_request_field_size, 0), "8190"},
      {"limit_request_body", {"--limit-request-body"}, ValueKind::kInt, "INT",
       "The maximum size of a request body in bytes, answered 413 beyond it (0: unlimited). "
       "Default 1 GiB: one client cannot fill the disk the body is spooled to.",
       [](Config& c, const std::string& v) {
         c.limit_request_body = parse_byte_count("limit_request_body", v);
       }, "1073741824"},
      {"spool_budget", {"--spool-budget"}, ValueKind::kInt, "INT",
       "Bytes of request bodies one worker may hold on disk at once (bodies past 1 MiB are "
       "spooled to tmp_upload_dir); a body that would go past it is answered 503 (0: "
       "unlimited). Default 4 GiB.",
       [](Config& c, const std::string& v) {
         c.spool_budget = parse_byte_count("spool_budget", v);
       }, "4294967296"},
      {"metrics_bind", {"--metrics-bind"}, ValueKind::kString, "HOST:PORT",
       "Serve Prometheus metrics (/metrics) and a health check (/healthz) from the master on "
       "this TCP address, e.g. 127.0.0.1:9100. Ours; default off.",
       [](Config& c, const std::string& v) {
         if (!v.empty() && !valid_host_port(v)) {
           throw ConfigError("Invalid value for metrics_bind: '" + v +
                             "' (expected HOST:PORT or [IPV6]:PORT, a TCP address)");
         }
         c.metrics_bind = v;
       }, "None"},
      {"metrics_buckets", {"--metrics-buckets"}, ValueKind::kString, "SECONDS,...",
       "The request-duration histogram's upper bounds in seconds, increasing, at most 30. "
       "Ours.",
       [](Config& c, const std::string& v) { c.metrics_buckets = parse_buckets(v); },
       "0.005,0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,5,10"},
      {"max_worker_memory", {"--max-worker-memory"}, ValueKind::kInt, "MiB",
       "Retire a worker whose resident memory passes this many MiB, after its requests in "
       "flight, as max_requests does (0: no limit). Ours.",
       int_setter("max_worker_memory", &Config::max_worker_memory, 0), "0"},
      {"request_buffering", {"--request-buffering", "--no-request-buffering"}, ValueKind::kBool, "",
       "Read the whole request body before calling the app (spooled to tmp_upload_dir past "
       "1 MiB), as nginx's proxy_request_buffering; --no-request-buffering hands wsgi.input "
       "to the app as the body arrives, as gunicorn does. Ours; default on.",
       bool_setter("request_buffering", &Config::request_buffering), "True"},
      {"gc_freeze", {"--gc-freeze", "--no-gc-freeze"}, ValueKind::kBool, "",
       "Call gc.freeze() in the master before it forks a worker: the objects the worker "
       "inherits (the modules the master imported, the app with --preload) are never "
       "scanned by its garbage collector, so its collections do not copy the pages it "
       "shares with the master. Cyclic garbage among those objects is then never "
       "collected in the worker. Ours; default on.",
       bool_setter("gc_freeze", &Config::gc_freeze), "True"},
      {"permit_obsolete_folding", {"--permit-obsolete-folding"}, ValueKind::kBool, "",
       "Permit requests employing obsolete HTTP line folding mechanism.",
       bool_setter("permit_obsolete_folding", &Config::permit_obsolete_folding), "False"},
      {"permit_unconventional_http_method", {"--permit-unconventional-http-method"},
       ValueKind::kBool, "", "Permit HTTP methods not matching conventions (lower case, short, long).",
       bool_setter("permit_unconventional_http_method", &Config::permit_unconventional_http_method), "False"},
      {"casefold_http_method", {"--casefold-http-method"}, ValueKind::kBool, "",
       "Transform received HTTP methods to uppercase.",
       bool_setter("casefold_http_method", &Config::casefold_http_method), "False"},
      {"header_map", {"--header-map"}, ValueKind::kString, "STRING",
       "Configure how header field names with underscores are handled: drop, refuse, dangerous.",
       [](Config& c, const std::string& v) {
         if (v != "drop" && v != "refuse" && v != "dangerous") {
           throw ConfigError("Invalid value for header_map: '" + v +
                             "' (expected one of drop, refuse, dangerous)");
         }
         c.header_map = v;
       }, "drop"},
      {"strip_header_spaces", {"--strip-header-spaces"}, ValueKind::kBool, "",
       "Strip spaces present between the header name and the colon (dangerous).",
       bool_setter("strip_header_spaces", &Config::strip_header_spaces), "False"},
      {"worker_connections", {"--worker-connections"}, ValueKind::kInt, "INT",
       "The maximum number of simultaneous clients per worker; with gevent or eventlet, "
       "also the most requests the app serves at once.",
       int_setter("worker_connections", &Config::worker_connections, 1), "1000"},
      {"proxy_protocol", {"--proxy-protocol"}, ValueKind::kOptional, "MODE",
       "Accept a PROXY protocol header before the first request of a connection: off, v1, v2 "
       "or auto (both; the flag alone).",
       [](Config& c, const std::string& v) {
         std::string mode;
         for (char ch : v) mode += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
         // A config file's True/False (gunicorn 23's switch) also reads.
         if (mode == "true") mode = "auto";
         if (mode == "false") mode = "off";
         if (mode != "off" && mode != "v1" && mode != "v2" && mode != "auto") {
           throw ConfigError("Invalid value for proxy_protocol: '" + v +
                             "' (expected one of off, v1, v2, auto)");
         }
         c.proxy_protocol = mode;
       }, "off", {}, "auto"},
      {"proxy_allow_ips", {"--proxy-allow-from"}, ValueKind::kString, "STRING",
       "Front-end's IPs from which allowed accept proxy requests (comma separated, '*' for all).",
       [](Config& c, const std::string& v) {
         // Each entry: '*', an address, or a network as address/prefix.
         for (const std::string& item : split_commas(v)) {
           std::string addr = item.substr(0, item.find('/'));
           unsigned char buf[16];
           bool ok = item == "*" || inet_pton(AF_INET, addr.c_str(), buf) == 1 ||
                     inet_pton(AF_INET6, addr.c_str(), buf) == 1;
           if (!ok) {
             throw ConfigError("Invalid value for proxy_allow_ips: '" + v + "' ('" + item +
                               "' is not an IP address or network)");
           }
         }
         c.proxy_allow_ips = split_commas(v);
       }, "127.0.0.1,::1"},
  });
  return table;
}

const Setting* find_setting(std::string_view name) {
  for (const Setting& s : settings_table()) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

const Setting* find_flag(std::string_view flag) {
  for (const Setting& s : settings_table()) {
    for (std::string_view f : s.flags) {
      if (f == flag) return &s;
    }
  }
  // argparse also takes an unambiguous prefix of a long option: --work 4.
  if (flag.size() < 3 || flag.substr(0, 2) != "--") return nullptr;
  const Setting* found = nullptr;
  for (const Setting& s : settings_table()) {
    for (std::string_view f : s.flags) {
      if (f.substr(0, flag.size()) == flag) {
        if (found != nullptr && found != &s) return nullptr;
        found = &s;
      }
    }
  }
  return found;
}

namespace {

// The settings whose gunicorn flag has `type = int` (auto_int for the
// modes), so argparse itself refuses a value Python's int() cannot read;
// ours (limit_request_body, spool_budget) behave alike.
bool argparse_int_flag(std::string_view name, bool* auto_base) {
  static constexpr std::string_view kInt[] = {
      "asgi_disconnect_grace_period", "backlog", "dirty_graceful_timeout", "dirty_threads",
      "dirty_timeout", "dirty_workers", "graceful_timeout", "http2_initial_window_size",
      "http2_max_concurrent_streams", "http2_max_frame_size", "http2_max_header_list_size",
      "keepalive", "limit_request_field_size", "limit_request_fields", "limit_request_line",
      "max_requests", "max_requests_jitter", "threads", "timeout", "websocket_max_message_size",
      "worker_connections", "workers", "limit_request_body", "spool_budget", "max_worker_memory"};
  *auto_base = name == "umask" || name == "control_socket_mode";
  if (*auto_base) return true;
  for (std::string_view n : kInt) {
    if (n == name) return true;
  }
  return false;
}

// Whether Python's int(text) (int(text, 0) when `auto_base`; gunicorn
// first turns a leading "0d" into "0od") would read `text`.
bool python_int_literal(std::string_view text, bool auto_base) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; };
  while (!text.empty() && space(text.front())) text.remove_prefix(1);
  while (!text.empty() && space(text.back())) text.remove_suffix(1);
  if (!text.empty() && (text[0] == '+' || text[0] == '-')) text.remove_prefix(1);
  int base = 10;
  if (auto_base && text.size() > 1 && text[0] == '0') {
    char p = static_cast<char>(std::tolower(static_cast<unsigned char>(text[1])));
    if (p == 'x' || p == 'o' || p == 'b') {
      base = p == 'x' ? 16 : p == 'o' ? 8 : 2;
      text.remove_prefix(2);
      if (!text.empty() && text[0] == '_') text.remove_prefix(1);
    } else {
      base = 8;
    }
  }
  if (text.empty()) return false;
  bool last_digit = false;
  for (char c : text) {
    if (c == '_') {
      if (!last_digit) return false;
      last_digit = false;
      continue;
    }
    int d = std::isdigit(static_cast<unsigned char>(c)) ? c - '0'
            : std::isxdigit(static_cast<unsigned char>(c))
                ? std::tolower(static_cast<unsigned char>(c)) - 'a' + 10
                : 99;
    if (d >= base) return false;
    last_digit = true;
  }
  return last_digit;
}

// argparse names an option by all its flags: "-w/--workers".
std::string flag_names(const Setting& s) {
  std::string out;
  for (std::string_view f : s.flags) {
    if (f.rfind("--no-", 0) == 0 && s.kind == ValueKind::kBool && !out.empty()) continue;
    if (!out.empty()) out += '/';
    out += f;
  }
  return out;
}

}  // namespace

ParsedArgs parse_arguments(const std::vector<std::string>& args) {
  ParsedArgs parsed;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "-h" || arg == "--help") {
      parsed.action = CliAction::kHelp;
      return parsed;
    }
    if (arg == "-v" || arg == "--version") {
      parsed.action = CliAction::kVersion;
      return parsed;
    }
    if (arg == "--") {
      for (++i; i < args.size(); ++i) parsed.positional.push_back(args[i]);
      break;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      parsed.positional.push_back(arg);
      continue;
    }
    std::string flag = arg;
    std::string value;
    bool has_value = false;
    if (arg.rfind("--", 0) == 0) {
      // --name=value
      auto eq = arg.find('=');
      if (eq != std::string::npos) {
        flag = arg.substr(0, eq);
        value = arg.substr(eq + 1);
        has_value = true;
      }
    } else if (arg.size() > 2) {
      // -w4, -b127.0.0.1:8000
      flag = arg.substr(0, 2);
      value = arg.substr(2);
      has_value = true;
    }
    const Setting* setting = find_flag(flag);
    if (setting == nullptr) {
      throw UsageError("unrecognized arguments: " + arg);
    }
    if (setting->kind == ValueKind::kBool) {
      if (has_value) {
        throw UsageError("argument " + flag_names(*setting) + ": ignored explicit argument '" +
                         value + "'");
      }
      // A "--no-..." flag of a setting on by default (--no-sendfile)
      // switches it off; --no-control-socket sets control_socket_disable.
      bool switches_off = flag.rfind("--no-", 0) == 0 && setting->default_text != "False";
      parsed.assignments.push_back({setting, switches_off ? "false" : "true"});
      continue;
    }
    if (setting->kind == ValueKind::kOptional && !has_value) {
      // The next argument is the value only when the setting takes it, so
      // both "--proxy-protocol v2" (gunicorn 24+) and "--proxy-protocol
      // app:app" (gunicorn 23, a switch) mean what they meant there.
      value = std::string(setting->bare_value);
      if (i + 1 < args.size()) {
        try {
          Config scratch;
          setting->apply(scratch, args[i + 1]);
          value = args[++i];
        } catch (const ConfigError&) {
        }
      }
      parsed.assignments.push_back({setting, value});
      continue;
    }
    if (!has_value) {
      // As argparse: a following option is not a value ("-1" is).
      bool next_is_option = i + 1 < args.size() && args[i + 1].size() > 1 &&
                            args[i + 1][0] == '-' &&
                            !std::isdigit(static_cast<unsigned char>(args[i + 1][1]));
      if (i + 1 >= args.size() || next_is_option) {
        throw UsageError("argument " + flag_names(*setting) + ": expected one argument");
      }
      value = args[++i];
    }
    bool auto_base = false;
    if (argparse_int_flag(setting->name, &auto_base) && !python_int_literal(value, auto_base)) {
      throw UsageError("argument " + flag_names(*setting) + ": invalid " +
                       (auto_base ? "auto_int" : "int") + " value: '" + value + "'");
    }
    parsed.assignments.push_back({setting, value});
  }
  return parsed;
}

CliAction parse_command_line(const std::vector<std::string>& args, Config& config) {
  ParsedArgs parsed = parse_arguments(args);
  if (parsed.positional.size() > 1) {
    throw UsageError("unrecognized arguments: " + parsed.positional[1]);
  }
  for (const Assignment& a : parsed.assignments) {
    if (a.setting->kind == ValueKind::kBool && a.value == "false" &&
        a.setting->default_text == "False") {
      continue;
    }
    a.setting->apply(config, a.value);
  }
  if (!parsed.positional.empty()) config.app_uri = parsed.positional[0];
  return parsed.action;
}

std::string usage_text() {
  std::string out = "usage: cppgunicorn [OPTIONS] [APP_MODULE]\n\noptions:\n";
  out += "  -h, --help            show this help message and exit\n";
  out += "  -v, --version         show program's version number and exit\n";
  for (const Setting& s : settings_table()) {
    if (s.flags.empty()) continue;  // config-file only (hooks, dicts)
    std::string left = "  ";
    for (size_t i = 0; i < s.flags.size(); ++i) {
      if (i) left += ", ";
      left += s.flags[i];
      if (!s.metavar.empty()) {
        left += ' ';
        // argparse's form for a value that may be left out: [MODE].
        left += s.kind == ValueKind::kOptional ? "[" + std::string(s.metavar) + "]"
                                               : std::string(s.metavar);
      }
    }
    if (left.size() < 24) left.resize(24, ' ');
    else left += "\n" + std::string(24, ' ');
    out += left;
    out += s.help;
    if (!s.default_text.empty()) {
      out += " [";
      out += s.default_text;
      out += ']';
    }
    out += '\n';
  }
  return out;
}

}  // namespace cppgunicorn::config
