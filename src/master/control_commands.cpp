#include "master/control_commands.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <stdexcept>

namespace cppgunicorn::master {

namespace {

using base::Json;

// gunicorn answers a bad argument (a ValueError) with "Invalid argument: ...".
struct BadArgument : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

double two_decimals(double v) { return std::round(v * 100.0) / 100.0; }

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Python's int(text) for the counts and pids gunicorn reads, with its message.
long parse_int(const std::string& text) {
  std::string t = text;
  while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.pop_back();
  size_t start = 0;
  while (start < t.size() && std::isspace(static_cast<unsigned char>(t[start]))) ++start;
  t = t.substr(start);
  errno = 0;
  char* end = nullptr;
  long v = std::strtol(t.c_str(), &end, 10);
  bool digits = !t.empty() && std::isdigit(static_cast<unsigned char>(t.back()));
  if (!digits || *end != '\0' || errno == ERANGE || v > INT_MAX || v < INT_MIN) {
    throw BadArgument("invalid literal for int() with base 10: '" + text + "'");
  }
  return v;
}

int count_arg(const std::vector<std::string>& args) {
  return args.empty() ? 1 : static_cast<int>(std::max(1L, parse_int(args[0])));
}

Json worker_list(const std::vector<ControlWorker>& workers, bool with_type) {
  Json::Array out;
  for (const ControlWorker& w : workers) {
    Json::Object o{{"pid", w.pid}};
    if (with_type) o.emplace_back("type", "web");
    o.emplace_back("age", w.age);
    o.emplace_back("booted", w.booted);
    if (!with_type) o.emplace_back("aborted", w.aborted);
    o.emplace_back("last_heartbeat", two_decimals(w.last_heartbeat_s));
    out.emplace_back(std::move(o));
  }
  return Json(std::move(out));
}

std::vector<ControlWorker> by_age(std::vector<ControlWorker> workers) {
  std::sort(workers.begin(), workers.end(),
            [](const ControlWorker& a, const ControlWorker& b) { return a.age < b.age; });
  return workers;
}

Json show_workers(const ControlTarget& t) {
  std::vector<ControlWorker> workers = by_age(t.control_workers());
  size_t n = workers.size();
  return Json(Json::Object{{"workers", worker_list(workers, false)}, {"count", n}});
}

Json show_all(const ControlTarget& t) {
  std::vector<ControlWorker> workers = by_age(t.control_workers());
  size_t n = workers.size();
  return Json(Json::Object{
      {"arbiter", Json(Json::Object{{"pid", ::getpid()}, {"type", "arbiter"}, {"role", "master"}})},
      {"web_workers", worker_list(workers, true)},
      {"web_worker_count", n},
      {"dirty_arbiter", nullptr},
      {"dirty_workers", Json::Array{}},
      {"dirty_worker_count", 0}});
}

Json show_dirty() {
  return Json(Json::Object{
      {"enabled", false}, {"pid", nullptr}, {"workers", Json::Array{}}, {"apps", Json::Array{}}});
}

Json or_none(const std::string& s) { return s.empty() ? Json() : Json(s); }

Json show_config(const ControlTarget& t) {
  const config::Config& c = t.control_config();
  Json::Array binds;
  for (const std::string& b : c.bind_or_default()) binds.emplace_back(b);
  return Json(Json::Object{
      {"bind", std::move(binds)},
      {"workers", c.workers},
      {"worker_class", t.control_worker_class()},
      {"threads", c.threads},
      {"timeout", c.timeout},
      {"graceful_timeout", c.graceful_timeout},
      {"keepalive", c.keepalive},
      {"max_requests", c.max_requests},
      {"max_requests_jitter", c.max_requests_jitter},
      {"worker_connections", c.worker_connections},
      {"preload_app", c.preload_app},
      {"daemon", c.daemon},
      {"pidfile", or_none(c.pidfile)},
      {"proc_name", or_none(c.proc_name)},
      {"reload", c.reload},
      // No dirty arbiter runs here (those settings are refused).
      {"dirty_workers", 0},
      {"dirty_apps", Json::Array{}},
      {"dirty_timeout", 300},
      {"control_socket", c.control_socket_path()},
      {"control_socket_disable", c.control_socket_disable}});
}

Json show_stats(const ControlTarget& t) {
  ControlStats s = t.control_stats();
  return Json(Json::Object{{"uptime", two_decimals(s.uptime_s)},
                           {"pid", ::getpid()},
                           {"workers_current", t.control_workers().size()},
                           {"workers_target", t.target_workers()},
                           {"workers_spawned", s.workers_spawned},
                           {"workers_killed", s.workers_killed},
                           {"reloads", s.reloads},
                           {"dirty_arbiter_pid", nullptr}});
}

Json show_listeners(const ControlTarget& t) {
  Json::Array out;
  std::vector<ControlListener> listeners = t.control_listeners();
  for (const ControlListener& l : listeners) {
    out.emplace_back(Json::Object{{"address", l.address}, {"fd", l.fd}, {"type", l.type}});
  }
  return Json(Json::Object{{"listeners", std::move(out)}, {"count", listeners.size()}});
}

Json help() {
  return Json(Json::Object{{"commands", Json(Json::Object{
      {"show all", "Show all processes (arbiter, web workers, dirty workers)"},
      {"show workers", "List HTTP workers with their status"},
      {"show dirty", "List dirty workers and apps (none: there is no dirty arbiter)"},
      {"show config", "Show current effective configuration"},
      {"show stats", "Show server statistics"},
      {"show listeners", "Show bound sockets"},
      {"worker add [N]", "Spawn N workers (default 1)"},
      {"worker remove [N]", "Remove N workers (default 1)"},
      {"worker kill <PID>", "Gracefully terminate specific worker"},
      {"dirty add [N]", "Spawn N dirty workers (not supported)"},
      {"dirty remove [N]", "Remove N dirty workers (not supported)"},
      {"reload", "Graceful reload (HUP)"},
      {"reopen", "Reopen log files (USR1)"},
      {"shutdown [graceful|quick]", "Shutdown server (TERM/INT)"},
      {"help", "Show this help message"}})}});
}

// As gunicorn: the master signals itself, and acts on it from its loop
// once this answer is on its way.
Json signal_self(int signum, Json answer) {
  ::kill(::getpid(), signum);
  return answer;
}

Json show(const ControlTarget& t, const std::vector<std::string>& args) {
  if (args.empty()) throw BadArgument("Missing show target (all|workers|dirty|config|stats|listeners)");
  std::string target = lower(args[0]);
  if (target == "all") return show_all(t);
  if (target == "workers") return show_workers(t);
  if (target == "dirty") return show_dirty();
  if (target == "config") return show_config(t);
  if (target == "stats") return show_stats(t);
  if (target == "listeners") return show_listeners(t);
  throw BadArgument("Unknown show target: " + target);
}

Json worker(ControlTarget& t, const std::vector<std::string>& args) {
  if (args.empty()) throw BadArgument("Missing worker action (add|remove|kill)");
  std::string action = lower(args[0]);
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (action == "add") {
    int count = count_arg(rest);
    int previous = t.target_workers();
    t.set_target_workers(previous + count);
    return Json(Json::Object{{"added", count}, {"previous", previous}, {"total", t.target_workers()}});
  }
  if (action == "remove") {
    int count = count_arg(rest);
    int previous = t.target_workers();
    int total = std::max(1, previous - count);
    t.set_target_workers(total);
    return Json(Json::Object{{"removed", previous - total}, {"previous", previous}, {"total", total}});
  }
  if (action == "kill") {
    if (rest.empty()) throw BadArgument("Missing PID for worker kill");
    long pid = parse_int(rest[0]);
    std::string error;
    if (!t.terminate_worker(static_cast<pid_t>(pid), &error)) {
      return Json(Json::Object{{"success", false}, {"error", error}});
    }
    return Json(Json::Object{{"success", true}, {"killed", pid}});
  }
  throw BadArgument("Unknown worker action: " + action);
}

Json dirty(const std::vector<std::string>& args) {
  if (args.empty()) throw BadArgument("Missing dirty action (add|remove)");
  std::string action = lower(args[0]);
  if (action != "add" && action != "remove") throw BadArgument("Unknown dirty action: " + action);
  if (args.size() > 1) parse_int(args[1]);
  return Json(Json::Object{{"success", false}, {"error", "Dirty arbiter not running"}});
}

Json execute(ControlTarget& t, const std::vector<std::string>& parts) {
  std::string cmd = lower(parts[0]);
  std::vector<std::string> rest(parts.begin() + 1, parts.end());
  if (cmd == "show") return show(t, rest);
  if (cmd == "worker") return worker(t, rest);
  if (cmd == "dirty") return dirty(rest);
  if (cmd == "reload") return signal_self(SIGHUP, Json(Json::Object{{"status", "reloading"}}));
  if (cmd == "reopen") return signal_self(SIGUSR1, Json(Json::Object{{"status", "reopening"}}));
  if (cmd == "shutdown") {
    std::string mode = rest.empty() ? "graceful" : rest[0];
    return signal_self(mode == "quick" ? SIGINT : SIGTERM,
                       Json(Json::Object{{"status", "shutting_down"}, {"mode", mode}}));
  }
  if (cmd == "help") return help();
  throw BadArgument("Unknown command: " + cmd);
}

// Python's str() of an argument given in "args".
std::string argument_text(const Json& a) {
  switch (a.type()) {
    case Json::Type::kString: return a.string();
    case Json::Type::kBool: return a.as_bool() ? "True" : "False";
    case Json::Type::kNull: return "None";
    default: return a.dump();
  }
}

}  // namespace

std::vector<std::string> split_command(const std::string& line) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (c == '\'' || c == '"') {
      size_t close = line.find(c, i + 1);
      if (c == '"') {
        // Inside double quotes a backslash escapes " and \ only.
        std::string quoted;
        size_t j = i + 1;
        for (; j < line.size() && line[j] != '"'; ++j) {
          if (line[j] == '\\' && j + 1 < line.size() && (line[j + 1] == '"' || line[j + 1] == '\\')) ++j;
          quoted += line[j];
        }
        if (j >= line.size()) throw BadArgument("No closing quotation");
        word += quoted;
        i = j;
      } else {
        if (close == std::string::npos) throw BadArgument("No closing quotation");
        word += line.substr(i + 1, close - i - 1);
        i = close;
      }
      in_word = true;
    } else if (c == '\\') {
      if (i + 1 >= line.size()) throw BadArgument("No escaped character");
      word += line[++i];
      in_word = true;
    } else if (std::isspace(static_cast<unsigned char>(c))) {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (in_word) words.push_back(std::move(word));
  return words;
}

Json answer_control_request(ControlTarget& target, const Json& request) {
  const Json* id_field = request.find("id");
  Json id = id_field ? *id_field : Json(0);
  auto error = [&](const std::string& message) {
    return Json(Json::Object{{"id", id}, {"status", "error"}, {"error", message}});
  };
  const Json* command = request.find("command");
  std::string text = command && command->type() == Json::Type::kString ? command->string() : "";
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) return error("Empty command");
  try {
    std::vector<std::string> parts = split_command(text);
    if (const Json* args = request.find("args"); args && args->type() == Json::Type::kArray) {
      for (const Json& a : args->array()) parts.push_back(argument_text(a));
    }
    if (parts.empty()) return error("Empty command");
    Json data = execute(target, parts);
    return Json(Json::Object{{"id", id}, {"status", "ok"}, {"data", std::move(data)}});
  } catch (const BadArgument& e) {
    return error(std::string("Invalid argument: ") + e.what());
  } catch (const std::exception& e) {
    return error(std::string("Command failed: ") + e.what());
  }
}

}  // namespace cppgunicorn::master
