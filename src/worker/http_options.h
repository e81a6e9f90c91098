// The HTTP parser's options from the settings: the one place that maps
// config names to src/http types.
#pragma once

#include "config/config.h"
#include "http/limits.h"

namespace cppgunicorn::worker {

http::ParserOptions parser_options(const config::Config& config);

}  // namespace cppgunicorn::worker
