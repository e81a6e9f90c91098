#include "wsgi/application.h"

#include "wsgi/app_loader.h"
#include "wsgi/objects.h"

namespace cppgunicorn::wsgi {

Application::Application(const std::string& uri, const EnvironOptions& options)
    : callable_(load_app(uri)), environ_(options) {}

Application::Application(pybind11::object callable, const EnvironOptions& options)
    : callable_(std::move(callable)), environ_(options) {}

}  // namespace cppgunicorn::wsgi
