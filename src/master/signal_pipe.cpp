#include "master/signal_pipe.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <stdexcept>

namespace cppgunicorn::master {

namespace {

// The write end for the handler; a signal handler can reach no object.
int g_signal_write_fd = -1;

void on_signal(int signum) {
  int saved = errno;
  unsigned char b = static_cast<unsigned char>(signum);
  if (g_signal_write_fd >= 0) [[maybe_unused]] auto n = ::write(g_signal_write_fd, &b, 1);
  errno = saved;
}

constexpr int kHandledSignals[] = {SIGTERM, SIGINT,  SIGQUIT, SIGHUP,  SIGTTIN,
                                   SIGTTOU, SIGUSR1, SIGUSR2, SIGWINCH, SIGCHLD};

void close_pipe(int (&fds)[2]) {
  for (int& fd : fds) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
}

}  // namespace

SignalPipe::~SignalPipe() {
  if (g_signal_write_fd == fds_[1]) g_signal_write_fd = -1;
  close_pipe(fds_);
}

void SignalPipe::open() {
  if (fds_[0] >= 0) return;
  if (::pipe2(fds_, O_CLOEXEC | O_NONBLOCK) != 0) {
    throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  }
}

void SignalPipe::post(int signum) {
  unsigned char b = static_cast<unsigned char>(signum);
  if (fds_[1] >= 0) [[maybe_unused]] auto n = ::write(fds_[1], &b, 1);
}

void SignalPipe::install(bool handlers) {
  open();
  std::signal(SIGPIPE, SIG_IGN);
  if (!handlers) return;
  g_signal_write_fd = fds_[1];
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int s : kHandledSignals) sigaction(s, &sa, nullptr);
}

void SignalPipe::restore() {
  struct sigaction sa {};
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  for (int s : kHandledSignals) sigaction(s, &sa, nullptr);
  g_signal_write_fd = -1;
  close_pipe(fds_);
}

int SignalPipe::take(unsigned char* signums, int capacity) {
  if (fds_[0] < 0) return 0;
  ssize_t n = ::read(fds_[0], signums, static_cast<size_t>(capacity));
  return n > 0 ? static_cast<int>(n) : 0;
}

const char* signal_name(int signum) {
  switch (signum) {
    case SIGTERM: return "term";
    case SIGINT: return "int";
    case SIGQUIT: return "quit";
    case SIGHUP: return "hup";
    case SIGTTIN: return "ttin";
    case SIGTTOU: return "ttou";
    case SIGUSR1: return "usr1";
    case SIGUSR2: return "usr2";
    case SIGWINCH: return "winch";
    case SIGCHLD: return "chld";
    default: return "unknown";
  }
}

std::string signal_constant(int signum) {
  const char* abbrev = ::sigabbrev_np(signum);
  return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(signum);
}

}  // namespace cppgunicorn::master
