// The `cppgunicorn` command: one user of the server library.
#include "cppgunicorn/server.h"

int main(int argc, char** argv) {
#ifdef CPPGUNICORN_BUILD_PYTHON
  // Outside a virtualenv's bin/, the environment of the Python we were
  // built with (a development build; the installed command is Python's).
  cppgunicorn::set_default_python(CPPGUNICORN_BUILD_PYTHON);
#endif
#ifdef CPPGUNICORN_PACKAGE_DIR
  // The Python the server runs, from the source tree it was built from
  // (the installed command imports the package from its own install).
  cppgunicorn::set_python_package_dir(CPPGUNICORN_PACKAGE_DIR);
#endif
  return cppgunicorn::main_from_command_line(argc, argv);
}
