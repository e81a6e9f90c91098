// The embedding interface of cppgunicorn: a C++ program hosts a WSGI app.
//
//   cppgunicorn::Config config;                  // cppgunicorn/config.h
//   config.set("bind", "127.0.0.1:0").set_app("myapp:app");
//   cppgunicorn::Server server(config);
//   server.start();                              // serves on its own thread
//   int port = server.port();                    // the port bound for :0
//   ...
//   server.stop();                               // from any thread
//   int status = server.wait();
//
// Modes (Config::set_mode):
// - Mode::kInProcess, the default in code: no fork. One worker's loop (the
//   same worker the command forks, src/worker) runs in this process, on the
//   thread that calls run() or the one start() makes. `threads` > 1 adds
//   that many app threads. `workers` must be 1; settings that need a master
//   process or would change the host's (daemon, user, group, pidfile,
//   chdir, raw_env, reload, max_requests, capture_output, syslog,
//   statsd_host, the gevent/eventlet worker classes) are refused at start
//   with a message naming them.
// - Mode::kPrefork: as the `cppgunicorn` command. The calling process
//   becomes the master and forks the workers; run() from the main thread
//   (the one that owns the interpreter: fork copies only the calling
//   thread). Without signal handling, the master reaps only its own
//   children and stop()/reload() reach it through its signal pipe.
//
// The interpreter (rules in docs/embedding.md):
// - Started by the library when none runs: in-process, once per process,
//   on first use, and kept until the process ends (CPython cannot be
//   finalised and started again reliably once C extensions are loaded);
//   sys.argv is {"cppgunicorn"}, signal handlers are not installed
//   (PyConfig.install_signal_handlers = 0), and its environment is that of
//   the `python` set by set_default_python (a venv's site-packages).
// - Initialised by the host (Py_Initialize, or a Python program that
//   imported the cppgunicorn._server extension): used as it is. The host
//   may hold the GIL when it calls run() or start(): the server releases it
//   while it serves and takes it back before returning. It never
//   initialises, finalises or re-configures that interpreter (no PyConfig
//   of its own, no faulthandler, no atexit run).
// - Fork: only Mode::kPrefork forks; its workers inherit the interpreter as
//   the command's do (PyOS_AfterFork_Child). The in-process mode never forks.
//
// Process-wide state: while a server runs it owns the error log, the hooks
// and the spool budget; all are reset when it stops, so that servers may run
// one after another in one process. One server runs at a time per process.
// What stays after stop(): the library-started interpreter (see above), the
// ignored SIGPIPE (a socket server needs it), and, with Mode::kPrefork, the
// process title area.
#pragma once

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "cppgunicorn/config.h"

namespace cppgunicorn {

// Thrown by Server::start() when an address cannot be bound or used (in
// use, no permission, no such interface); what() names the address.
struct ListenError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Server {
 public:
  explicit Server(Config config);
  // As the `cppgunicorn` command: Config::from_argv(args), prefork, with
  // signal handling.
  explicit Server(std::vector<std::string> args);
  // Stops a server still running (quickly) and waits for it.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Parses the settings, binds, loads the app and serves in the calling
  // thread until stop() or (with signal handling) a stop signal. Returns the
  // exit status (gunicorn's codes: 0 ok, 1 bad settings or bind failure, 3
  // worker boot error, 4 app load error; 2 for a command line argparse
  // would refuse).
  int run();

  // run() on a thread of its own, for Mode::kInProcess (prefork runs in
  // the calling thread: std::logic_error). Returns once the server serves
  // (its addresses are then known), or throws with the reason it could not
  // start, the line the error log got (the status is then wait()'s):
  // ConfigError for a setting that is invalid or refused in this mode,
  // ListenError for an address that cannot be bound, std::runtime_error
  // for anything else.
  void start();

  // Thread-safe, from any thread (not from a signal handler): stop
  // accepting, let requests in flight finish within `grace` (then cut
  // them), and return from run(). A negative grace: the configured
  // graceful_timeout. Returns at once; wait() waits. Asked before the
  // server serves, it stops as soon as it has started. Prefork: gunicorn's
  // TERM to the master (graceful_timeout), or INT for a grace of 0.
  void stop(std::chrono::milliseconds grace = std::chrono::milliseconds(-1));

  // Thread-safe: gunicorn's HUP (prefork: exactly that, to the master).
  // The configuration is read again from its sources and a fresh worker
  // takes over from the current one. In-process,
  // an app given as an object is kept, one given by name is not imported
  // again (Python caches modules; the command re-imports in new processes).
  void reload();

  // Waits for a server started with start() to end; its exit status. At
  // once for one that has ended (or never started: 0).
  int wait();

  // The bound addresses as the log names them ("http://127.0.0.1:41523",
  // "unix:/run/app.sock"), once the server serves.
  std::vector<std::string> addresses() const;
  // The port of the first TCP address (binding port 0 picks one); 0 if none.
  int port() const;

  // The command a USR2 upgrade (prefork, signal handling on) re-executes,
  // followed by Config::from_argv's arguments: by default the host program
  // itself (/proc/self/exe), or "cppgunicorn" from PATH for
  // Server(args). Its first word is also sys.argv[0] of an interpreter the
  // server starts itself. A host whose restart needs arguments of its own
  // names its whole command here.
  void set_program(std::vector<std::string> command);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// What the `cppgunicorn` executable runs: the server in a process that
// starts its own Python (see set_default_python).
int main_from_command_line(int argc, char** argv);

// The `python` whose environment (sys.prefix, site-packages) an interpreter
// started by the server belongs to, used when no `python` lies beside the
// executable. The installed command does not start one: Python runs it.
void set_default_python(std::string path);

// The directory of the `cppgunicorn` Python package (python/cppgunicorn in
// the source tree), whose modules hold the Python the server runs: loading
// apps, config files and hooks, logging. Needed where the package is not
// installed in that Python; the `cppgunicorn` executable names the one it
// was built from.
void set_python_package_dir(std::string path);

// "cppgunicorn (version X) on Python Y, libuv Z, OpenSSL W ...": what
// --version prints.
std::string version_line();

}  // namespace cppgunicorn
