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

  // The program a USR2 upgrade re-executes (default "cppgunicorn", found
  // on PATH).
  void set_program(std::string program) { program_ = std::move(program); }

 private:
  std::vector<std::string> args_;
  std::string program_ = "cppgunicorn";
};

// What `cppgunicorn` itself runs.
int main_from_command_line(int argc, char** argv);

}  // namespace cppgunicorn
