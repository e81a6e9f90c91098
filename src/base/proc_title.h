// Process titles visible in ps(1): "cppgunicorn: master [name]". Linux
// shows the memory argv points to, so the title is written there, after
// moving the environment strings that follow it out of the way.
#pragma once

#include <string_view>

namespace cppgunicorn::base {

// Call once at the start of main, before anything reads environ or argv.
void init_proc_title(int argc, char** argv);
// The same where main's argv is not at hand (Python called us): the kernel
// says where the argv block of this process lies.
void init_proc_title_from_kernel();
void set_proc_title(std::string_view title);

}  // namespace cppgunicorn::base
