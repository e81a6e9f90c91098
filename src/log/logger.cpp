#include "log/logger.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <stdexcept>

#include "base/clock.h"
#include "log/statsd.h"
#include "log/syslog.h"

namespace cppgunicorn::log {

bool parse_level(std::string_view name, Level* out) {
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "debug") *out = Level::kDebug;
  else if (lower == "info") *out = Level::kInfo;
  else if (lower == "warning" || lower == "warn") *out = Level::kWarning;
  else if (lower == "error") *out = Level::kError;
  else if (lower == "critical") *out = Level::kCritical;
  else return false;
  return true;
}

LogFile::~LogFile() { close(); }

void LogFile::close() {
  if (owned_ && file_ != nullptr) std::fclose(file_);
  file_ = nullptr;
  owned_ = false;
}

void LogFile::open(const std::string& path, std::FILE* fallback) {
  close();
  path_ = path;
  if (path.empty() || path == "-") {
    file_ = fallback;
    return;
  }
  file_ = std::fopen(path.c_str(), "a");
  if (file_ == nullptr) {
    throw std::runtime_error("cannot open log file '" + path + "': " + std::strerror(errno));
  }
  owned_ = true;
  // Line buffering: a line is visible to `tail -f` as soon as it is written.
  std::setvbuf(file_, nullptr, _IOLBF, 0);
}

void LogFile::reopen() {
  if (!owned_) return;
  std::FILE* fresh = std::freopen(path_.c_str(), "a", file_);
  if (fresh == nullptr) {
    file_ = nullptr;
    owned_ = false;
    return;
  }
  file_ = fresh;
  std::setvbuf(file_, nullptr, _IOLBF, 0);
}

void LogFile::write(std::string_view line) {
  if (file_ == nullptr) return;
  std::fwrite(line.data(), 1, line.size(), file_);
  std::fflush(file_);
}

namespace {
const char* level_name(Level level) {
  switch (level) {
    case Level::kDebug: return "DEBUG";
    case Level::kInfo: return "INFO";
    case Level::kWarning: return "WARNING";
    case Level::kError: return "ERROR";
    case Level::kCritical: return "CRITICAL";
  }
  return "INFO";
}
}  // namespace

void Logger::write(Level level, std::string_view message) {
  // gunicorn's Statsd logger counts these whatever the log level.
  if (level == Level::kWarning) statsd().increment("gunicorn.log.warning", 1);
  else if (level == Level::kError) statsd().increment("gunicorn.log.error", 1);
  else if (level == Level::kCritical) statsd().increment("gunicorn.log.critical", 1);
  if (!enabled(level)) return;
  if (syslog_sink().enabled()) syslog_sink().error_line(level, message);
  if (sink_ != nullptr) {
    sink_(level, message);
    return;
  }
  if (!host_sink_ && !file_.enabled()) file_.open("-", stderr);
  // gunicorn: "[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"
  std::string line;
  line.reserve(message.size() + 64);
  line += '[';
  line += base::error_log_time(std::time(nullptr));
  line += "] [";
  line += std::to_string(::getpid());
  line += "] [";
  line += level_name(level);
  line += "] ";
  line += message;
  if (host_sink_) {
    if (line.back() == '\n') line.pop_back();
    host_sink_(level, line);
    return;
  }
  if (line.back() != '\n') line += '\n';
  file_.write(line);
}

void Logger::reset() {
  level_ = Level::kInfo;
  file_.close();
  sink_ = nullptr;
  host_sink_ = nullptr;
}

void capture_output_into_error_log(bool enabled, const std::string& errorlog) {
  int fd = error_log().file().fileno();
  if (!enabled || errorlog.empty() || errorlog == "-" || fd < 0) return;
  std::fflush(stdout);
  std::fflush(stderr);
  ::dup2(fd, STDOUT_FILENO);
  ::dup2(fd, STDERR_FILENO);
}

Logger& error_log() {
  static Logger logger;
  return logger;
}

}  // namespace cppgunicorn::log
