// --reload: a worker polls the files of the modules it imported (and
// reload_extra_files) and, when one changes, stops gracefully so that the
// master starts a fresh worker that imports the new code (gunicorn's
// reloader does the same from a thread in each worker).
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace cppgunicorn::wsgi {

class Reloader {
 public:
  // Takes the GIL; records the current modification times.
  explicit Reloader(const std::vector<std::string>& extra_files);
  ~Reloader();  // takes the GIL
  Reloader(const Reloader&) = delete;
  Reloader& operator=(const Reloader&) = delete;

  // Takes the GIL. The first file modified since, or "".
  std::string changed();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace cppgunicorn::wsgi
