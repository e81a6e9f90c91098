// The one embedded CPython interpreter of a process. Created after fork in
// each worker (or once in the master with --preload), destroyed last. While
// the loop runs the GIL is released; `Gil` takes it for a scope.
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace cppgunicorn::wsgi {

struct InterpreterOptions {
  std::vector<std::string> argv;         // sys.argv
  std::vector<std::string> pythonpath;   // --pythonpath, put first on sys.path
  std::string app_dir;                   // the directory apps are imported from
};

class Interpreter {
 public:
  explicit Interpreter(const InterpreterOptions& options);
  ~Interpreter();
  Interpreter(const Interpreter&) = delete;
  Interpreter& operator=(const Interpreter&) = delete;

  // Drops the GIL so the loop can run without it. Called once set-up is done.
  void release_gil();

  // The `python` whose environment we belong to: the one beside this binary
  // (a virtualenv's bin/), else the interpreter we were built with.
  static std::string home_python();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Holds the GIL for its scope (PyGILState underneath), so
// that layers outside wsgi/ need no Python header.
class Gil {
 public:
  Gil();
  ~Gil();
  Gil(const Gil&) = delete;
  Gil& operator=(const Gil&) = delete;

 private:
  int state_;  // PyGILState_STATE
};

// Python's own after-fork hook, for a child forked from a process in which
// Python is initialised (--preload).
void after_fork_child();

}  // namespace cppgunicorn::wsgi
