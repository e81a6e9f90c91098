// The loaded WSGI callable of a worker and what every call of it shares (the
// environ template). Created and destroyed with the GIL held.
#pragma once

#include <pybind11/pybind11.h>

#include <memory>
#include <string>
#include <utility>

#include "wsgi/environ.h"
#include "wsgi/exchange.h"

namespace cppgunicorn::wsgi {

class Application {
 public:
  // Imports the app; throws AppLoadError or pybind11::error_already_set.
  Application(const std::string& uri, const EnvironOptions& options);
  // A callable the host already holds (the in-process server's app object).
  Application(pybind11::object callable, const EnvironOptions& options);

  // --static-from-app: the URL path and directory of the app's own static
  // files, from a Flask app's static_url_path and static_folder. Throws
  // std::runtime_error saying why when the app has none (not a Flask app,
  // or static_folder=None). Needs the GIL.
  std::pair<std::string, std::string> static_mount() const;

  std::unique_ptr<Exchange> exchange() const {
    return std::make_unique<Exchange>(callable_, environ_);
  }

 private:
  pybind11::object callable_;
  EnvironBuilder environ_;
};

}  // namespace cppgunicorn::wsgi
