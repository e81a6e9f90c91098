#include "master/process.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "wsgi/interpreter.h"

namespace cppgunicorn::master {

Owner resolve_owner(const config::Config& c) {
  Owner o;
  if (!c.user.empty()) {
    const passwd* pw = std::isdigit(static_cast<unsigned char>(c.user[0]))
                           ? ::getpwuid(static_cast<uid_t>(std::atol(c.user.c_str())))
                           : ::getpwnam(c.user.c_str());
    if (pw == nullptr) {
      if (!std::isdigit(static_cast<unsigned char>(c.user[0]))) {
        throw std::runtime_error("Invalid value for user: '" + c.user + "' (no such user)");
      }
      o.uid = static_cast<uid_t>(std::atol(c.user.c_str()));
    } else {
      o.uid = pw->pw_uid;
      o.user_name = pw->pw_name;
      if (c.group.empty()) {
        o.gid = pw->pw_gid;
        o.change_gid = true;
      }
    }
    o.change_uid = true;
  }
  if (!c.group.empty()) {
    const group* gr = std::isdigit(static_cast<unsigned char>(c.group[0]))
                          ? ::getgrgid(static_cast<gid_t>(std::atol(c.group.c_str())))
                          : ::getgrnam(c.group.c_str());
    if (gr == nullptr && !std::isdigit(static_cast<unsigned char>(c.group[0]))) {
      throw std::runtime_error("Invalid value for group: '" + c.group + "' (no such group)");
    }
    o.gid = gr ? gr->gr_gid : static_cast<gid_t>(std::atol(c.group.c_str()));
    o.change_gid = true;
  }
  return o;
}

void switch_owner(const Owner& o) {
  if (o.change_gid) {
    if (!o.user_name.empty()) ::initgroups(o.user_name.c_str(), o.gid);
    else ::setgroups(1, &o.gid);
    if (::setgid(o.gid) != 0) throw std::runtime_error(std::string("setgid: ") + std::strerror(errno));
  }
  if (o.change_uid && ::setuid(o.uid) != 0) {
    throw std::runtime_error(std::string("setuid: ") + std::strerror(errno));
  }
}

pid_t fork_process() {
  if (!wsgi::Interpreter::running()) return ::fork();
  wsgi::ForkGuard guard;
  pid_t pid = ::fork();
  if (pid == 0) guard.in_child();
  else guard.in_parent();
  return pid;
}

void daemonize(bool keep_stdio) {
  if (fork_process() != 0) ::_exit(0);
  ::setsid();
  if (fork_process() != 0) ::_exit(0);
  int null = ::open("/dev/null", O_RDWR);
  if (null >= 0) {
    ::dup2(null, 0);
    if (!keep_stdio) {
      ::dup2(null, 1);
      ::dup2(null, 2);
    }
    if (null > 2) ::close(null);
  }
}

}  // namespace cppgunicorn::master
