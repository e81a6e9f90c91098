#include "embed/app_object.h"

#include "embed/config_data.h"
#include "wsgi/interpreter.h"

namespace cppgunicorn::embed {

void set_app_object(Config& config, pybind11::object app) {
  PyObject* raw = app.release().ptr();  // our reference now
  ConfigAccess::data(config).app_object = std::shared_ptr<void>(raw, [](void* p) {
    if (!Py_IsInitialized()) return;
    wsgi::Gil gil;
    Py_DECREF(static_cast<PyObject*>(p));
  });
}

}  // namespace cppgunicorn::embed
