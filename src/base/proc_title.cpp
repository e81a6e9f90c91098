#include "base/proc_title.h"

#include <sys/prctl.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

extern char** environ;

namespace cppgunicorn::base {

namespace {
char* g_area = nullptr;
size_t g_area_size = 0;
// The relocated environment lives for the whole process.
std::vector<std::string>& env_storage() {
  static std::vector<std::string> s;
  return s;
}
std::vector<char*>& env_pointers() {
  static std::vector<char*> p;
  return p;
}
}  // namespace

void init_proc_title(int argc, char** argv) {
  if (argc <= 0 || argv == nullptr || argv[0] == nullptr) return;
  char* end = argv[argc - 1] + std::strlen(argv[argc - 1]) + 1;
  // The environment strings usually follow argv in one block: take them too
  // when they are contiguous, so that long titles fit.
  size_t count = 0;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) ++count;
  for (size_t i = 0; i < count; ++i) {
    if (environ[i] == end) end = environ[i] + std::strlen(environ[i]) + 1;
  }
  auto& storage = env_storage();
  auto& pointers = env_pointers();
  storage.reserve(count);
  for (size_t i = 0; i < count; ++i) storage.emplace_back(environ[i]);
  for (auto& s : storage) pointers.push_back(s.data());
  pointers.push_back(nullptr);
  environ = pointers.data();
  g_area = argv[0];
  g_area_size = static_cast<size_t>(end - argv[0]);
}

void init_proc_title_from_kernel() {
  // Fields 48 and 49 of /proc/self/stat (Linux 3.5+) are where the kernel
  // put argv; they are counted after the command name, which is in
  // parentheses and may itself hold spaces.
  std::ifstream in("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return;
  std::istringstream fields(stat.substr(close + 1));
  std::string field;
  uintptr_t arg_start = 0;
  uintptr_t arg_end = 0;
  for (int n = 3; n <= 49 && (fields >> field); ++n) {
    if (n == 48) arg_start = std::stoull(field);
    if (n == 49) arg_end = std::stoull(field);
  }
  if (arg_start == 0 || arg_end <= arg_start) return;
  static std::vector<char*> argv;
  argv.clear();
  char* p = reinterpret_cast<char*>(arg_start);
  char* end = reinterpret_cast<char*>(arg_end);
  while (p < end) {
    argv.push_back(p);
    p += strnlen(p, static_cast<size_t>(end - p)) + 1;
  }
  argv.push_back(nullptr);
  init_proc_title(static_cast<int>(argv.size() - 1), argv.data());
}

void set_proc_title(std::string_view title) {
  if (g_area != nullptr && g_area_size > 1) {
    size_t n = std::min(title.size(), g_area_size - 1);
    std::memcpy(g_area, title.data(), n);
    std::memset(g_area + n, 0, g_area_size - n);
  }
  std::string comm(title.substr(0, 15));
  ::prctl(PR_SET_NAME, comm.c_str(), 0, 0, 0);
}

}  // namespace cppgunicorn::base
