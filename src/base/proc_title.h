// Process titles visible in ps(1): "cppgunicorn: master [name]". Linux
// shows the memory argv points to, so the title is written there, after
// moving the environment strings that follow it out of the way.
#pragma once

#include <string_view>

namespace cppgunicorn::base {

// Call once at the start of main, before anything reads environ or argv.
void init_proc_title(int argc, char** argv);
void set_proc_title(std::string_view title);

}  // namespace cppgunicorn::base
