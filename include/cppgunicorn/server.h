// The embedding interface of cppgunicorn: a C++ program hosts a WSGI app by
// handing a Server the same settings the `cppgunicorn` command takes.
#pragma once

#include <string>
#include <vector>

namespace cppgunicorn {

class Server {
 public:
  // `args` as on the command line, without the program name, e.g.
  // {"--bind", "127.0.0.1:8000", "--workers", "2", "myapp:app"}.
  explicit Server(std::vector<std::string> args);

  // Parses the settings, binds, forks the workers and serves until a stop
  // signal. Returns the process exit status (gunicorn's codes: 0 ok, 1 bad
  // settings or bind failure, 3 worker boot error, 4 app load error).
  int run();

  // The command a USR2 upgrade re-executes, followed by the same
  // arguments (default {"cppgunicorn"}, found on PATH); its first word is
  // also sys.argv[0] of an interpreter the server starts itself.
  void set_program(std::vector<std::string> command) { program_ = std::move(command); }

 private:
  std::vector<std::string> args_;
  std::vector<std::string> program_ = {"cppgunicorn"};
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
