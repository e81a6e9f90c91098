// The error log: gunicorn's line format, level filter, and the file it goes
// to ("-" is stderr). One per process, configured once at start-up.
#pragma once

#include <cstdio>
#include <functional>
#include <string>
#include <string_view>

namespace cppgunicorn::log {

enum class Level { kDebug = 10, kInfo = 20, kWarning = 30, kError = 40, kCritical = 50 };

// Parses gunicorn's --log-level names; returns false for an unknown name.
bool parse_level(std::string_view name, Level* out);

// A file that log lines are appended to, reopened on request (USR1).
class LogFile {
 public:
  LogFile() = default;
  ~LogFile();
  LogFile(const LogFile&) = delete;
  LogFile& operator=(const LogFile&) = delete;

  // `path` "-" means `fallback` (stdout or stderr). Throws on failure.
  void open(const std::string& path, std::FILE* fallback);
  void reopen();
  void write(std::string_view line);
  bool enabled() const { return file_ != nullptr; }
  int fileno() const { return file_ ? ::fileno(file_) : -1; }
  void close();  // nothing is written until the next open

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
  bool owned_ = false;
};

class Logger {
 public:
  void set_level(Level level) { level_ = level; }
  Level level() const { return level_; }
  LogFile& file() { return file_; }

  bool enabled(Level level) const { return level >= level_; }
  // Lines go to `sink` instead of the file (Python logging configured with
  // logconfig*); nullptr restores the file.
  using Sink = void (*)(Level level, std::string_view message);
  void set_sink(Sink sink) { sink_ = sink; }
  // An embedding host's sink (cppgunicorn::Config::set_log_sink): the
  // formatted line, without its newline, instead of the file.
  using HostSink = std::function<void(Level level, std::string_view line)>;
  void set_host_sink(HostSink sink) { host_sink_ = std::move(sink); }
  void write(Level level, std::string_view message);
  // Back to the state before configuration (INFO and up to stderr): what a
  // server leaves when it stops, so that the next one starts clean.
  void reset();

  void debug(std::string_view m) { write(Level::kDebug, m); }
  void info(std::string_view m) { write(Level::kInfo, m); }
  void warning(std::string_view m) { write(Level::kWarning, m); }
  void error(std::string_view m) { write(Level::kError, m); }
  void critical(std::string_view m) { write(Level::kCritical, m); }

 private:
  Level level_ = Level::kInfo;
  LogFile file_;
  Sink sink_ = nullptr;
  HostSink host_sink_;
};

// --capture-output: stdout and stderr (what the app prints) become the
// error log file; again after each reopen (USR1). No-op for "-".
void capture_output_into_error_log(bool enabled, const std::string& errorlog);

// The process's error log. Before configuration it writes INFO and up to
// stderr, so start-up errors are never lost.
Logger& error_log();

}  // namespace cppgunicorn::log
