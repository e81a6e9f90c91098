#include "wsgi/application.h"

#include <stdexcept>

#include "wsgi/app_loader.h"
#include "wsgi/objects.h"

namespace cppgunicorn::wsgi {

Application::Application(const std::string& uri, const EnvironOptions& options)
    : callable_(load_app(uri)), environ_(options) {}

std::pair<std::string, std::string> Application::static_mount() const {
  namespace py = pybind11;
  // Flask's own attributes, read from the object the app URI named: a
  // middleware around the app (ProxyFix, WhiteNoise) hides them, and is
  // not looked through: which folder to serve is never guessed.
  if (!py::hasattr(callable_, "static_folder") || !py::hasattr(callable_, "static_url_path")) {
    throw std::runtime_error(
        "the app object has no static_folder and static_url_path (not a Flask app, or wrapped "
        "in a middleware); use --static-map URL_PREFIX=DIRECTORY instead");
  }
  py::object folder = callable_.attr("static_folder");
  py::object url_path = callable_.attr("static_url_path");
  if (folder.is_none() || url_path.is_none()) {
    throw std::runtime_error("the app's static_folder is None: it has no static files");
  }
  std::string url = py::str(url_path).cast<std::string>();
  if (url.empty()) url = "/";
  return {url, py::str(folder).cast<std::string>()};
}

Application::Application(pybind11::object callable, const EnvironOptions& options)
    : callable_(std::move(callable)), environ_(options) {}

}  // namespace cppgunicorn::wsgi
