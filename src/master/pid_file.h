// --pidfile: written when the master has bound its listeners, renamed to
// PIDFILE.oldbin by a USR2 upgrade, removed on exit (only our own).
#pragma once

#include <string>

namespace cppgunicorn::master {

// Writes our pid to `path` (nothing for ""). Throws with gunicorn's message
// if a live server's pid is there already, or with one naming the setting
// if the file cannot be written.
void write_pid_file(const std::string& path);

// Removes `path` and `path`.oldbin if they hold our pid (nothing for "").
void remove_own_pid_file(const std::string& path);

}  // namespace cppgunicorn::master
