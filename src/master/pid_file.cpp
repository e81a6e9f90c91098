#include "master/pid_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>

namespace cppgunicorn::master {

namespace {
// The pid a pid file names, if that process is alive and is a gunicorn
// (ours or gunicorn itself); 0 otherwise: no file, no number, a dead
// process, or a pid the kernel has since given to another program.
pid_t live_server_in(const std::string& path) {
  std::ifstream in(path);
  long pid = 0;
  if (!(in >> pid) || pid <= 0) return 0;
  if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno != EPERM) return 0;
  std::ifstream cmdline("/proc/" + std::to_string(pid) + "/cmdline");
  std::string text((std::istreambuf_iterator<char>(cmdline)), std::istreambuf_iterator<char>());
  return text.find("gunicorn") != std::string::npos ? static_cast<pid_t>(pid) : 0;
}
}  // namespace

void write_pid_file(const std::string& path) {
  if (path.empty()) return;
  // gunicorn's check and message: a second server must not take over the
  // file (and the signals sent through it) of one that runs.
  if (pid_t other = live_server_in(path); other > 0 && other != ::getpid()) {
    throw std::runtime_error("Already running on PID " + std::to_string(other) +
                             " (or pid file '" + path + "' is stale)");
  }
  // A new file of our own in the same directory, renamed over the old
  // name: a symlink planted at the name (or a predictable temporary one)
  // is replaced, never followed, and readers see the whole pid or none.
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  std::string tmp = dir + "/.pidfile-XXXXXX";
  int fd = ::mkstemp(tmp.data());
  if (fd < 0) {
    throw std::runtime_error("Invalid value for pidfile: '" + path + "': cannot create a file in " +
                             dir + ": " + std::strerror(errno));
  }
  std::string text = std::to_string(::getpid()) + "\n";
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            ::fchmod(fd, 0644) == 0;
  int saved = errno;
  ok = (::close(fd) == 0) && ok;
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    if (ok) saved = errno;
    ::unlink(tmp.c_str());
    throw std::runtime_error("Invalid value for pidfile: '" + path + "': cannot write it: " +
                             std::strerror(saved));
  }
}

void remove_own_pid_file(const std::string& path) {
  if (path.empty()) return;
  // Only our own: after USR2 the file belongs to the new master and ours
  // is PIDFILE.oldbin (gunicorn removes that one too).
  for (const std::string& file : {path, path + ".oldbin"}) {
    std::ifstream in(file);
    long pid = 0;
    if (in >> pid && pid == static_cast<long>(::getpid())) ::unlink(file.c_str());
  }
}

}  // namespace cppgunicorn::master
