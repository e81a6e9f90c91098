// Request size limits, with gunicorn's setting names and defaults.
#pragma once

#include <cstddef>

namespace cppgunicorn::http {

struct Limits {
  size_t request_line = 4094;       // limit_request_line (0: unlimited)
  size_t request_fields = 100;      // limit_request_fields
  size_t request_field_size = 8190; // limit_request_field_size (0: unlimited)
};

}  // namespace cppgunicorn::http
