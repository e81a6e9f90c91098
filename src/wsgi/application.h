// The loaded WSGI callable of a worker and what every call of it shares (the
// environ template). Created and destroyed with the GIL held.
#pragma once

#include <pybind11/pybind11.h>

#include <memory>
#include <string>

#include "wsgi/environ.h"
#include "wsgi/exchange.h"

namespace cppgunicorn::wsgi {

class Application {
 public:
  // Imports the app; throws AppLoadError or pybind11::error_already_set.
  Application(const std::string& uri, const EnvironOptions& options);
  // A callable the host already holds (the in-process server's app object).
  Application(pybind11::object callable, const EnvironOptions& options);

  std::unique_ptr<Exchange> exchange() const {
    return std::make_unique<Exchange>(callable_, environ_);
  }

 private:
  pybind11::object callable_;
  EnvironBuilder environ_;
};

}  // namespace cppgunicorn::wsgi
