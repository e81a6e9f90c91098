// The master's signals. Handlers only write the signal number to a pipe
// (as gunicorn's SIG_QUEUE); the master's loop reads it and acts, so
// nothing unsafe runs in signal context.
#pragma once

#include <string>

namespace cppgunicorn::master {

class SignalPipe {
 public:
  SignalPipe() = default;
  ~SignalPipe();
  SignalPipe(const SignalPipe&) = delete;
  SignalPipe& operator=(const SignalPipe&) = delete;

  // Creates the pipe (once). post() may write to it from then on.
  void open();
  // Opens the pipe and, with `handlers`, installs the handlers for every
  // signal the master acts on (one SignalPipe per process does). SIGPIPE
  // is ignored either way: a socket server needs it.
  void install(bool handlers = true);
  // From any thread (not a signal handler's business): as if `signum` had
  // been received. A host program's stop() and reload().
  void post(int signum);
  // In a forked worker or a re-executed master: default dispositions again
  // (so that its own loop can take the signals it wants and the rest behave
  // as usual), and the pipe closed.
  void restore();

  // The end to poll for POLLIN; -1 before install().
  int read_fd() const { return fds_[0]; }
  // Signals received since the last call, up to `capacity`, without
  // blocking; returns how many were stored.
  int take(unsigned char* signums, int capacity);

 private:
  int fds_[2] = {-1, -1};
};

// "hup", as gunicorn's SIG_NAMES (its "Handling signal: hup" line).
const char* signal_name(int signum);
// "SIGKILL", as Python's signal.Signals(n).name.
std::string signal_constant(int signum);

}  // namespace cppgunicorn::master
