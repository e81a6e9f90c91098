// One immutable set of settings, built from defaults and the command line
// (later also config files and environment), with gunicorn's names.
#pragma once

#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "net/tls.h"

namespace cppgunicorn::config {

// How a worker runs the app, from gunicorn's worker class names.
enum class WorkerKind {
  kLoop,      // sync, gthread: the loop thread, or --threads N pool threads
  kGevent,    // gevent: greenlets on gevent's hub, sockets patched
  kEventlet,  // eventlet: greenlets on eventlet's hub, sockets patched
  kUnknown,   // anything else: refused at start
};
WorkerKind worker_kind_of(const std::string& worker_class);

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
  // Ours: gc.freeze() in the master before each fork, so that the
  // workers' collections leave the objects they share with it unwritten.
  bool gc_freeze = true;
  std::string proc_name;   // empty: the app URI, as gunicorn
  std::string pidfile;
  bool daemon = false;
  std::string user;        // name or numeric uid; empty: unchanged
  std::string group;
  int umask = 0;
  std::string worker_tmp_dir;

  // Control socket (src/master/control_socket.h). An empty path is
  // gunicorn's default (default_control_socket()).
  std::string control_socket;
  int control_socket_mode = 0600;
  bool control_socket_disable = false;
  // The path the control socket is opened at: control_socket, or
  // gunicorn's default, made absolute from the current directory.
  std::string control_socket_path() const;

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
  long long limit_request_body = 1LL << 30;  // ours: 0 is unlimited (docs/http.md)
  long long spool_budget = 4LL << 30;        // ours: per worker, bytes of bodies on disk

  // Ours: operations (docs/operations.md). The master serves /metrics and
  // /healthz on metrics_bind ("" = off); the request-duration histogram's
  // upper bounds in seconds; a worker whose RSS passes max_worker_memory
  // MiB (0 = no limit) is retired gracefully and replaced.
  std::string metrics_bind;
  std::vector<double> metrics_buckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                         0.5,   1,    2.5,   5,    10};
  int max_worker_memory = 0;
  // Ours: the whole body is read before the app is called (true), or the
  // app gets wsgi.input as the bytes arrive (false, --no-request-buffering).
  bool request_buffering = true;
  bool permit_obsolete_folding = false;
  bool permit_unconventional_http_method = false;
  bool casefold_http_method = false;
  std::string header_map = "drop";      // drop, refuse or dangerous
  bool strip_header_spaces = false;
  int worker_connections = 1000;
  std::string proxy_protocol = "off";   // off, v1, v2 or auto
  std::vector<std::string> proxy_allow_ips = {"127.0.0.1", "::1"};
  std::string protocol = "http";        // http, or uwsgi (nginx's uwsgi_pass)
  // Peers allowed to send uwsgi packets ("*": any); unix-socket peers always.
  std::vector<std::string> uwsgi_allow_ips = {"127.0.0.1", "::1"};

  // --- Configuration sources, server hooks, proxies, logging extras ---------
  // (config area; see docs/configuration.md)
  std::string config_file;              // -c: the file actually read, "" if none
  std::string wsgi_app;                 // the app when no APP_MODULE is given
  bool check_config = false;
  bool print_config = false;
  std::vector<std::string> raw_env;     // -e NAME=VALUE, set in the master's environment
  std::string worker_class = "sync";
  bool capture_output = false;
  bool enable_stdio_inheritance = false;
  bool disable_redirect_access_to_syslog = false;
  std::string default_proc_name;
  // Peers allowed to set the scheme and forwarder headers ("*": any).
  std::vector<std::string> forwarded_allow_ips = {"127.0.0.1", "::1"};
  // Upper-case header name -> the value that means https.
  std::vector<std::pair<std::string, std::string>> secure_scheme_headers = {
      {"X-FORWARDED-PROTOCOL", "ssl"}, {"X-FORWARDED-PROTO", "https"}, {"X-FORWARDED-SSL", "on"}};
  std::vector<std::string> forwarder_headers = {"SCRIPT_NAME", "PATH_INFO"};
  std::string statsd_host;
  std::string statsd_prefix;
  std::string dogstatsd_tags;
  std::string logconfig;        // fileConfig file
  std::string logconfig_json;   // dictConfig as JSON
  std::string logconfig_dict;   // set: a Python config's dict (kept by its reader)
  bool reload = false;
  std::vector<std::string> reload_extra_files;
  bool syslog = false;
  std::string syslog_addr = "udp://localhost:514";
  std::string syslog_prefix;
  std::string syslog_facility = "user";
  // Server hooks given as "module.function" text (TOML, or a Python config's
  // string value); hooks that are Python objects stay with the interpreter
  // that read the file. Name -> text ("" for an object).
  std::map<std::string, std::string> hooks;
  // Settings accepted, checked, and not acted upon: name -> value as given.
  std::map<std::string, std::string> ignored;

  // --- Request spooling and file responses (reload area) -------------------
  std::string tmp_upload_dir;  // "": $TMPDIR (or /tmp) for spooled request bodies
  bool sendfile = true;        // false (--no-sendfile): file_wrapper bodies are read in blocks

  // --- Static files, served by the worker without Python (ours) -----------
  struct StaticMount {
    std::string url_prefix;  // "/static", no trailing slash (or "/")
    std::string directory;   // as given; relative to chdir
  };
  std::vector<StaticMount> static_map;    // --static-map URL_PREFIX=DIRECTORY
  bool static_from_app = false;            // also the Flask app's static_folder
  bool static_fallthrough = false;         // no such file: the app answers
  bool static_allow_hidden = false;        // serve names starting with '.'
  std::string static_cache_control = "public, max-age=60";  // names without a hash

  // --- TLS: certfile, keyfile, ca_certs, cert_reqs, ciphers, ssl_version,
  // suppress_ragged_eofs (do_handshake_on_connect is accepted: a handshake
  // always starts as soon as its bytes arrive, on the loop).
  net::TlsSettings tls;

  std::vector<std::string> bind_or_default() const;
  // What --worker-class asks of the worker (see WorkerKind).
  WorkerKind worker_kind() const { return worker_kind_of(worker_class); }
  // gunicorn's cfg.worker_class_str: the class as configured, "gthread"
  // for sync with --threads > 1.
  std::string worker_class_str() const;
  // The package a gevent or eventlet worker class runs the app on; "" for ours.
  std::string green_backend() const;
  // The app may be called by more than one request at a time (wsgi.multithread).
  bool concurrent_app() const { return threads > 1 || worker_kind() != WorkerKind::kLoop; }
};

// Thrown for a bad setting; what() names the setting, the value and what was
// expected, as one line for the user.
struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A command line (or GUNICORN_CMD_ARGS) that argparse would not parse: an
// unknown flag, a flag without its value, a non-integer for an integer
// flag. gunicorn prints its usage line and exits 2 for these; a value that
// parses but is not allowed is a ConfigError (exit 1), as in gunicorn.
struct UsageError : ConfigError {
  using ConfigError::ConfigError;
};

// What the command line asked for besides settings.
enum class CliAction { kServe, kHelp, kVersion };

// Parses argv (without argv[0]) into `config`. Throws ConfigError.
CliAction parse_command_line(const std::vector<std::string>& args, Config& config);

// The --help text, generated from the settings table.
std::string usage_text();

}  // namespace cppgunicorn::config
