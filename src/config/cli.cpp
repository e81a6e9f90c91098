#include <arpa/inet.h>

#include <cerrno>
#include <climits>
#include <cstdlib>

#include "config/config.h"
#include "config/settings_table.h"
#include "log/logger.h"

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

// gunicorn reads --umask with int(value, 0): "0o077", "0x3f", "63", "0".
int parse_umask(const std::string& value) {
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
    throw ConfigError("Invalid value for umask: '" + value +
                      "' (expected an integer from 0 to 0o777, e.g. 0o022)");
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

std::function<void(Config&, const std::string&)> string_setter(std::string Config::*field) {
  return [field](Config& c, const std::string& v) { c.*field = v; };
}

}  // namespace

const std::vector<Setting>& settings_table() {
  static const std::vector<Setting> table = {
      {"bind", {"-b", "--bind"}, ValueKind::kList, "ADDRESS",
       "The socket to bind: HOST:PORT, [IPV6]:PORT or unix:PATH. Repeatable.",
       [](Config& c, const std::string& v) { c.bind.push_back(v); }},
      {"reuse_port", {"--reuse-port"}, ValueKind::kBool, "",
       "Set the SO_REUSEPORT flag on the listening socket.",
       [](Config& c, const std::string&) { c.reuse_port = true; }},
      {"backlog", {"--backlog"}, ValueKind::kInt, "INT", "The maximum number of pending connections.",
       int_setter("backlog", &Config::backlog, 1)},
      {"workers", {"-w", "--workers"}, ValueKind::kInt, "INT",
       "The number of worker processes for handling requests.",
       int_setter("workers", &Config::workers, 1)},
      {"threads", {"--threads"}, ValueKind::kInt, "INT",
       "The number of worker threads for handling requests.",
       int_setter("threads", &Config::threads, 1)},
      {"timeout", {"-t", "--timeout"}, ValueKind::kInt, "INT",
       "Workers silent for more than this many seconds are killed and restarted.",
       int_setter("timeout", &Config::timeout, 0)},
      {"graceful_timeout", {"--graceful-timeout"}, ValueKind::kInt, "INT",
       "Timeout for graceful workers restart.",
       int_setter("graceful_timeout", &Config::graceful_timeout, 0)},
      {"keepalive", {"--keep-alive"}, ValueKind::kInt, "INT",
       "The number of seconds to wait for requests on a Keep-Alive connection.",
       int_setter("keepalive", &Config::keepalive, 0)},
      {"max_requests", {"--max-requests"}, ValueKind::kInt, "INT",
       "The maximum number of requests a worker will process before restarting.",
       int_setter("max_requests", &Config::max_requests, 0)},
      {"max_requests_jitter", {"--max-requests-jitter"}, ValueKind::kInt, "INT",
       "The maximum jitter to add to the max_requests setting.",
       int_setter("max_requests_jitter", &Config::max_requests_jitter, 0)},
      {"chdir", {"--chdir"}, ValueKind::kString, "DIR",
       "Change directory to DIR before loading apps.", string_setter(&Config::chdir)},
      {"pythonpath", {"--pythonpath"}, ValueKind::kString, "STRING",
       "A comma-separated list of directories to add to the Python path.",
       [](Config& c, const std::string& v) {
         for (auto& p : split_commas(v)) c.pythonpath.push_back(p);
       }},
      {"preload_app", {"--preload"}, ValueKind::kBool, "",
       "Load application code before the worker processes are forked.",
       [](Config& c, const std::string&) { c.preload_app = true; }},
      {"pidfile", {"-p", "--pid"}, ValueKind::kString, "FILE",
       "A filename to use for the PID file.", string_setter(&Config::pidfile)},
      {"daemon", {"-D", "--daemon"}, ValueKind::kBool, "",
       "Daemonize the cppgunicorn process.",
       [](Config& c, const std::string&) { c.daemon = true; }},
      {"user", {"-u", "--user"}, ValueKind::kString, "USER",
       "Switch worker processes to run as this user (name or uid).",
       string_setter(&Config::user)},
      {"group", {"-g", "--group"}, ValueKind::kString, "GROUP",
       "Switch worker process to run as this group (name or gid).",
       string_setter(&Config::group)},
      {"umask", {"-m", "--umask"}, ValueKind::kInt, "INT",
       "A bit mask for the file mode on files written by cppgunicorn (0o077, 0x3f or 63).",
       [](Config& c, const std::string& v) { c.umask = parse_umask(v); }},
      {"worker_tmp_dir", {"--worker-tmp-dir"}, ValueKind::kString, "DIR",
       "A directory to use for the worker heartbeat temporary file.",
       string_setter(&Config::worker_tmp_dir)},
      {"proc_name", {"-n", "--name"}, ValueKind::kString, "STRING",
       "A base to use with setproctitle for process naming.", string_setter(&Config::proc_name)},
      {"accesslog", {"--access-logfile"}, ValueKind::kString, "FILE",
       "The Access log file to write to. '-' means log to stdout.",
       string_setter(&Config::accesslog)},
      {"access_log_format", {"--access-logformat"}, ValueKind::kString, "STRING",
       "The access log format.", string_setter(&Config::access_log_format)},
      {"errorlog", {"--error-logfile", "--log-file"}, ValueKind::kString, "FILE",
       "The Error log file to write to. '-' means log to stderr.",
       string_setter(&Config::errorlog)},
      {"loglevel", {"--log-level"}, ValueKind::kString, "LEVEL",
       "The granularity of Error log outputs: debug, info, warning, error, critical.",
       [](Config& c, const std::string& v) {
         log::Level level;
         if (!log::parse_level(v, &level)) {
           throw ConfigError("Invalid value for loglevel: '" + v +
                             "' (expected one of debug, info, warning, error, critical)");
         }
         c.loglevel = v;
       }},
      // HTTP parsing, limits and connections (src/http, src/worker/connection)
      {"limit_request_line", {"--limit-request-line"}, ValueKind::kInt, "INT",
       "The maximum size of HTTP request line in bytes (0: unlimited; at most 8190).",
       int_setter("limit_request_line", &Config::limit_request_line, 0)},
      {"limit_request_fields", {"--limit-request-fields"}, ValueKind::kInt, "INT",
       "Limit the number of HTTP headers fields in a request (at most 32768).",
       int_setter("limit_request_fields", &Config::limit_request_fields, 0)},
      {"limit_request_field_size", {"--limit-request-field_size"}, ValueKind::kInt, "INT",
       "Limit the allowed size of an HTTP request header field (0: the default, 8190).",
       int_setter("limit_request_field_size", &Config::limit_request_field_size, 0)},
      {"limit_request_body", {"--limit-request-body"}, ValueKind::kInt, "INT",
       "The maximum size of a request body in bytes, answered 413 beyond it (0: unlimited).",
       [](Config& c, const std::string& v) {
         errno = 0;
         char* end = nullptr;
         long long n = std::strtoll(v.c_str(), &end, 10);
         if (v.empty() || *end != '\0' || errno == ERANGE || n < 0) {
           throw ConfigError("Invalid value for limit_request_body: '" + v +
                             "' (expected an integer >= 0)");
         }
         c.limit_request_body = n;
       }},
      {"permit_obsolete_folding", {"--permit-obsolete-folding"}, ValueKind::kBool, "",
       "Permit requests employing obsolete HTTP line folding mechanism.",
       [](Config& c, const std::string&) { c.permit_obsolete_folding = true; }},
      {"permit_unconventional_http_method", {"--permit-unconventional-http-method"},
       ValueKind::kBool, "", "Permit HTTP methods not matching conventions (lower case, short, long).",
       [](Config& c, const std::string&) { c.permit_unconventional_http_method = true; }},
      {"casefold_http_method", {"--casefold-http-method"}, ValueKind::kBool, "",
       "Transform received HTTP methods to uppercase.",
       [](Config& c, const std::string&) { c.casefold_http_method = true; }},
      {"header_map", {"--header-map"}, ValueKind::kString, "STRING",
       "Configure how header field names with underscores are handled: drop, refuse, dangerous.",
       [](Config& c, const std::string& v) {
         if (v != "drop" && v != "refuse" && v != "dangerous") {
           throw ConfigError("Invalid value for header_map: '" + v +
                             "' (expected one of drop, refuse, dangerous)");
         }
         c.header_map = v;
       }},
      {"strip_header_spaces", {"--strip-header-spaces"}, ValueKind::kBool, "",
       "Strip spaces present between the header name and the colon (dangerous).",
       [](Config& c, const std::string&) { c.strip_header_spaces = true; }},
      {"worker_connections", {"--worker-connections"}, ValueKind::kInt, "INT",
       "The maximum number of simultaneous clients per worker.",
       int_setter("worker_connections", &Config::worker_connections, 1)},
      {"proxy_protocol", {"--proxy-protocol"}, ValueKind::kBool, "",
       "Accept a PROXY protocol header (v1 or v2) before the first request of a connection.",
       [](Config& c, const std::string&) { c.proxy_protocol = "auto"; }},
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
       }},
  };
  return table;
}

namespace {

const Setting* find_flag(std::string_view flag) {
  for (const Setting& s : settings_table()) {
    for (std::string_view f : s.flags) {
      if (f == flag) return &s;
    }
  }
  return nullptr;
}

}  // namespace

CliAction parse_command_line(const std::vector<std::string>& args, Config& config) {
  std::vector<std::string> positional;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "-h" || arg == "--help") return CliAction::kHelp;
    if (arg == "-v" || arg == "--version") return CliAction::kVersion;
    if (arg == "--") {
      for (++i; i < args.size(); ++i) positional.push_back(args[i]);
      break;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      positional.push_back(arg);
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
      throw ConfigError("unrecognized arguments: " + arg);
    }
    if (setting->kind == ValueKind::kBool) {
      if (has_value) throw ConfigError("argument " + flag + ": ignored explicit argument '" + value + "'");
      setting->apply(config, "true");
      continue;
    }
    if (!has_value) {
      if (i + 1 >= args.size()) throw ConfigError("argument " + flag + ": expected one argument");
      value = args[++i];
    }
    setting->apply(config, value);
  }
  if (positional.size() > 1) {
    throw ConfigError("unrecognized arguments: " + positional[1]);
  }
  if (!positional.empty()) config.app_uri = positional[0];
  return CliAction::kServe;
}

std::string usage_text() {
  std::string out = "usage: cppgunicorn [OPTIONS] [APP_MODULE]\n\noptions:\n";
  out += "  -h, --help            show this help message and exit\n";
  out += "  -v, --version         show program's version number and exit\n";
  for (const Setting& s : settings_table()) {
    std::string left = "  ";
    for (size_t i = 0; i < s.flags.size(); ++i) {
      if (i) left += ", ";
      left += s.flags[i];
      if (!s.metavar.empty()) {
        left += ' ';
        left += s.metavar;
      }
    }
    if (left.size() < 24) left.resize(24, ' ');
    else left += "\n" + std::string(24, ' ');
    out += left;
    out += s.help;
    out += '\n';
  }
  return out;
}

}  // namespace cppgunicorn::config
