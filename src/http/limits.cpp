#include "http/limits.h"

namespace cppgunicorn::http {

Limits effective_limits(long long request_line, long long request_fields,
                        long long request_field_size, long long request_body) {
  Limits l;
  if (request_line <= 0) {
    l.request_line = kUnlimitedRequestLine;
  } else {
    l.request_line = static_cast<size_t>(request_line) > kMaxRequestLine
                         ? kMaxRequestLine
                         : static_cast<size_t>(request_line);
  }
  l.request_fields = request_fields <= 0 || static_cast<size_t>(request_fields) > kMaxHeaderFields
                         ? kMaxHeaderFields
                         : static_cast<size_t>(request_fields);
  l.request_field_size =
      request_field_size <= 0 ? kDefaultFieldSize : static_cast<size_t>(request_field_size);
  l.request_body = request_body <= 0 ? 0 : static_cast<uint64_t>(request_body);
  return l;
}

}  // namespace cppgunicorn::http
