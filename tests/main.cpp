// The unit test runner. It holds the one Python interpreter that the wsgi/
// tests share (pybind11: no Python object may outlive it).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "wsgi/interpreter.h"
#include "wsgi/objects.h"
#include "wsgi/python_package.h"

int main(int argc, char** argv) {
  cppgunicorn::wsgi::Interpreter::set_default_python(CPPGUNICORN_BUILD_PYTHON);
  cppgunicorn::wsgi::set_package_dir(CPPGUNICORN_PACKAGE_DIR);
  cppgunicorn::wsgi::Interpreter interpreter({{"cppgunicorn_unit_tests"}, {}, {}});
  doctest::Context context(argc, argv);
  return context.run();
}
