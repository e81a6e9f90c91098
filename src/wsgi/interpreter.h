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
  // Where Python's faulthandler writes the stack of a worker killed for a
  // timeout (SIGABRT) or a crash; -1: stderr.
  int fault_fd = -1;
  // Off in a host program's interpreter, whose faulthandler is its own.
  bool enable_faulthandler = true;
};

class Interpreter {
 public:
  explicit Interpreter(const InterpreterOptions& options);
  ~Interpreter();
  Interpreter(const Interpreter&) = delete;
  Interpreter& operator=(const Interpreter&) = delete;

  // Drops the GIL so the loop can run without it. Called once set-up is done.
  void release_gil();

  // Whether this process already has an interpreter: one the master started
  // to read a Python config file, inherited across fork.
  static bool running();

  // Puts the app's directories first on sys.path and points faulthandler at
  // the error log. Done by the constructor; call it (with the GIL) on an
  // inherited interpreter before loading the app.
  static void prepare_for_app(const InterpreterOptions& options);

  // The `python` whose environment an interpreter we start belongs to: the
  // one beside this binary (a virtualenv's bin/), else the default one.
  static std::string home_python();
  // That default: the program that links this library says which (the
  // `cppgunicorn` executable names the Python it was built with); a bare
  // "python3" otherwise. Not used when Python already runs (our extension
  // module was imported by it).
  static void set_default_python(std::string path);

  // Makes os.environ match the C environment (setenv/unsetenv since the
  // interpreter started). Takes the GIL; nothing if Python is not running.
  static void sync_environment();

  // What Py_Finalize does that a process ending with _exit still owes the
  // app: its atexit functions, and the buffered sys.stdout/stderr flushed.
  static void run_exit_functions();

  // gc.freeze(): every object alive now leaves the collector's generations
  // for good. Called in the master right before it forks a worker, so that
  // the worker's collections never write to the objects it shares with the
  // master copy-on-write (a full collection writes to the header of every
  // object it scans: the page is then copied). Takes the GIL.
  static void freeze_objects();

  // The version of the Python we are linked with, e.g. "3.11.7".
  static std::string python_version();

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

// The GIL taken once and kept until release(): the worker's loop thread
// holds it across the callbacks of one loop iteration (the first request
// of the iteration takes it, the loop drops it before it waits for I/O),
// instead of once per request. Nested `Gil` scopes inside cost a counter.
class HeldGil {
 public:
  HeldGil() = default;
  ~HeldGil() { release(); }
  HeldGil(const HeldGil&) = delete;
  HeldGil& operator=(const HeldGil&) = delete;

  void hold() {
    if (!held_) take();
  }
  void release() {
    if (held_) drop();
  }
  bool held() const { return held_; }

 private:
  void take();
  void drop();
  bool held_ = false;
  int state_ = 0;  // PyGILState_STATE
};

// Releases the GIL for its scope if the calling thread holds it (a host
// that called in from Python), and takes it back at the end; nothing if
// it does not.
class GilReleasedIfHeld {
 public:
  GilReleasedIfHeld();
  ~GilReleasedIfHeld();
  GilReleasedIfHeld(const GilReleasedIfHeld&) = delete;
  GilReleasedIfHeld& operator=(const GilReleasedIfHeld&) = delete;

 private:
  void* saved_ = nullptr;  // PyThreadState*
};

// Makes the calling (non-Python) thread a Python thread for its lifetime:
// one thread state, created once, so that `threading.local()` and
// `threading.current_thread()` stay the same from one request to the next
// on that thread. The GIL is not held between the constructor and the
// destructor; `Gil` takes it for a scope as on any other thread.
class PythonThread {
 public:
  PythonThread();
  ~PythonThread();
  PythonThread(const PythonThread&) = delete;
  PythonThread& operator=(const PythonThread&) = delete;

 private:
  int state_;            // PyGILState_STATE of the outer Ensure
  void* saved_ = nullptr;  // PyThreadState* while the GIL is released
};

// Python's fork hooks around a fork() in a process where Python runs
// (--preload): construct right before fork(), then call exactly one of
// in_parent() / in_child(). Takes the GIL for the fork and gives it back.
class ForkGuard {
 public:
  ForkGuard();
  void in_parent();
  void in_child();
  ForkGuard(const ForkGuard&) = delete;
  ForkGuard& operator=(const ForkGuard&) = delete;

 private:
  int state_;  // PyGILState_STATE
};

}  // namespace cppgunicorn::wsgi
