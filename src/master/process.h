// Process plumbing the master needs around fork: blocking signals across
// it, forking with Python's hooks when the master runs Python, switching
// user and group, and detaching as a daemon.
#pragma once

#include <pthread.h>
#include <signal.h>
#include <sys/types.h>

#include <string>

#include "config/config.h"

namespace cppgunicorn::master {

// Every signal blocked across a fork, until the child has replaced the
// master's handlers (which write to the master's signal pipe, shared after
// fork): a signal meant for the child in between would reach the master.
class SignalsBlocked {
 public:
  SignalsBlocked() {
    sigset_t all;
    sigfillset(&all);
    ::pthread_sigmask(SIG_BLOCK, &all, &saved_);
  }
  ~SignalsBlocked() { unblock(); }
  SignalsBlocked(const SignalsBlocked&) = delete;
  SignalsBlocked& operator=(const SignalsBlocked&) = delete;
  void unblock() {
    if (active_) ::pthread_sigmask(SIG_SETMASK, &saved_, nullptr);
    active_ = false;
  }

 private:
  sigset_t saved_{};
  bool active_ = true;
};

// fork() in a master that may run Python (a Python config file, or
// --preload): Python's fork hooks keep its state consistent in the child.
pid_t fork_process();

// --user and --group, resolved once (a bad name stops the master before it
// binds) and applied in each worker before it imports the app.
struct Owner {
  bool change_uid = false, change_gid = false;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string user_name;
};
Owner resolve_owner(const config::Config& c);
// gunicorn's util.set_owner_process: group first, while we still may.
void switch_owner(const Owner& o);

// Fork twice and detach from the terminal (gunicorn's util.daemonize).
// With enable_stdio_inheritance stdout and stderr stay as they are.
void daemonize(bool keep_stdio);

}  // namespace cppgunicorn::master
