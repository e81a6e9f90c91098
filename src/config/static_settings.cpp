// The settings of static files served by the worker (ours, not
// gunicorn's): --static-map and what goes with it. See
// docs/static-files.md.
#include <string>
#include <vector>

#include "config/config.h"
#include "config/settings_table.h"

namespace cppgunicorn::config {

namespace {

Config::StaticMount parse_static_mount(const std::string& value) {
  auto refuse = [&value](const std::string& why) {
    return ConfigError("Invalid value for static_map: '" + value + "' (" + why + ")");
  };
  size_t eq = value.find('=');
  if (eq == std::string::npos) {
    throw refuse("expected URL_PREFIX=DIRECTORY, e.g. /static=./static");
  }
  Config::StaticMount mount{value.substr(0, eq), value.substr(eq + 1)};
  std::string& prefix = mount.url_prefix;
  if (prefix.empty() || prefix[0] != '/') {
    throw refuse("the URL prefix must start with '/'");
  }
  while (prefix.size() > 1 && prefix.back() == '/') prefix.pop_back();
  for (char c : prefix) {
    auto u = static_cast<unsigned char>(c);
    if (c == '?' || c == '#' || c == '%' || c == '\\' || u <= 0x20 || u == 0x7f) {
      throw refuse("the URL prefix is a plain path: no '?', '#', '%', '\\', spaces or control "
                   "characters");
    }
  }
  if (prefix.find("/./") != std::string::npos || prefix.find("/../") != std::string::npos ||
      prefix.ends_with("/..") || prefix.ends_with("/.") || prefix.find("//") != std::string::npos) {
    throw refuse("the URL prefix may not hold '.', '..' or empty segments");
  }
  if (mount.directory.empty()) throw refuse("the directory is missing after '='");
  return mount;
}

}  // namespace

std::vector<Setting> with_static_file_settings(std::vector<Setting> table) {
  std::vector<Setting> ours = {
      {"static_map", {"--static-map"}, ValueKind::kList, "URL_PREFIX=DIRECTORY",
       "Serve the files of DIRECTORY under URL_PREFIX from the worker, without calling the "
       "app (sendfile, ETag, Range, precompressed .br/.gz). Repeatable. Ours.",
       [](Config& c, const std::string& v) {
         Config::StaticMount mount = parse_static_mount(v);
         for (const Config::StaticMount& m : c.static_map) {
           if (m.url_prefix == mount.url_prefix) {
             throw ConfigError("Invalid value for static_map: '" + v + "' (" + mount.url_prefix +
                               " is mapped twice)");
           }
         }
         c.static_map.push_back(std::move(mount));
       }, ""},
      {"static_from_app", {"--static-from-app"}, ValueKind::kBool, "",
       "Also serve the Flask app's own static_folder at its static_url_path, read from the "
       "loaded app object (refused at start if the app has none). Ours.",
       [](Config& c, const std::string& v) { c.static_from_app = parse_bool("static_from_app", v); },
       "False"},
      {"static_fallthrough", {"--static-fallthrough"}, ValueKind::kBool, "",
       "A request under a static prefix that names no file goes to the app instead of a 404. "
       "Ours.",
       [](Config& c, const std::string& v) {
         c.static_fallthrough = parse_bool("static_fallthrough", v);
       }, "False"},
      {"static_allow_hidden", {"--static-allow-hidden"}, ValueKind::kBool, "",
       "Serve static names with a component starting with '.' (refused with 404 by default). "
       "Ours.",
       [](Config& c, const std::string& v) {
         c.static_allow_hidden = parse_bool("static_allow_hidden", v);
       }, "False"},
      {"static_cache_control", {"--static-cache-control"}, ValueKind::kString, "VALUE",
       "Cache-Control of static files whose name carries no content hash (\"\" for none); "
       "hashed names (app.3f2a9c1b.js) get 'public, max-age=31536000, immutable'. Ours.",
       [](Config& c, const std::string& v) {
         for (char ch : v) {
           auto u = static_cast<unsigned char>(ch);
           if ((u < 0x20 && ch != '\t') || u == 0x7f) {
             throw ConfigError("Invalid value for static_cache_control: '" + v +
                               "' (control characters cannot go in a header)");
           }
         }
         c.static_cache_control = v;
       }, "public, max-age=60"},
  };
  for (Setting& s : ours) table.push_back(std::move(s));
  return table;
}

}  // namespace cppgunicorn::config
