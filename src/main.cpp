// The `cppgunicorn` command: one user of the server library.
#include "cppgunicorn/server.h"

int main(int argc, char** argv) { return cppgunicorn::main_from_command_line(argc, argv); }
