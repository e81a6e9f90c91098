#include "config/config.h"

#include <cstdlib>

namespace cppgunicorn::config {

std::vector<std::string> Config::bind_or_default() const {
  if (!bind.empty()) return bind;
  // gunicorn: with no --bind, $PORT (Heroku and friends) means 0.0.0.0:$PORT.
  if (const char* port = std::getenv("PORT"); port != nullptr && *port != '\0') {
    return {std::string("0.0.0.0:") + port};
  }
  return {"127.0.0.1:8000"};
}

}  // namespace cppgunicorn::config
