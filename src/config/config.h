// One immutable set of settings, built from defaults and the command line
// (later also config files and environment), with gunicorn's names.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace cppgunicorn::config {

struct Config {
  // Server socket
  std::vector<std::string> bind;  // empty: "127.0.0.1:8000" (or $PORT, as gunicorn)
  int backlog = 2048;
  bool reuse_port = false;

  // Worker processes
  int workers = 1;  // $WEB_CONCURRENCY when not given
  int threads = 1;
  int timeout = 30;
  int graceful_timeout = 30;
  int keepalive = 2;
  int max_requests = 0;
  int max_requests_jitter = 0;

  // Server mechanics
  std::string chdir;
  std::vector<std::string> pythonpath;
  bool preload_app = false;
  std::string proc_name;   // empty: the app URI, as gunicorn
  std::string pidfile;
  bool daemon = false;
  std::string user;        // name or numeric uid; empty: unchanged
  std::string group;
  int umask = 0;
  std::string worker_tmp_dir;

  // Logging
  std::string accesslog;              // empty: no access log
  std::string errorlog = "-";
  std::string loglevel = "info";
  std::string access_log_format;      // empty: gunicorn's default

  // The WSGI application, "module:variable".
  std::string app_uri;

  // HTTP parsing, limits and connections (src/http, src/worker/connection)
  int limit_request_line = 4094;        // 0: unlimited; above 8190: 8190
  int limit_request_fields = 100;       // 0 or above 32768: 32768
  int limit_request_field_size = 8190;  // 0: 8190
  long long limit_request_body = 0;     // ours: 0 is unlimited
  bool permit_obsolete_folding = false;
  bool permit_unconventional_http_method = false;
  bool casefold_http_method = false;
  std::string header_map = "drop";      // drop, refuse or dangerous
  bool strip_header_spaces = false;
  int worker_connections = 1000;
  std::string proxy_protocol = "off";   // off, v1, v2 or auto
  std::vector<std::string> proxy_allow_ips = {"127.0.0.1", "::1"};

  std::vector<std::string> bind_or_default() const;
};

// Thrown for a bad setting; what() names the setting, the value and what was
// expected, as one line for the user.
struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// What the command line asked for besides settings.
enum class CliAction { kServe, kHelp, kVersion };

// Parses argv (without argv[0]) into `config`. Throws ConfigError.
CliAction parse_command_line(const std::vector<std::string>& args, Config& config);

// The --help text, generated from the settings table.
std::string usage_text();

}  // namespace cppgunicorn::config
