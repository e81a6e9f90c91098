#include <doctest/doctest.h>

#include <stdexcept>

#include "master/control_commands.h"

using cppgunicorn::base::Json;
using namespace cppgunicorn::master;

namespace {

// A master with two workers, nothing behind it.
class FakeMaster : public ControlTarget {
 public:
  std::vector<ControlWorker> control_workers() const override {
    return {{30, 2, true, false, 0.254}, {20, 1, false, true, 1.0}};
  }
  std::vector<ControlListener> control_listeners() const override {
    return {{"unix:/tmp/x.sock", 5, "unix"}};
  }
  ControlStats control_stats() const override { return {12.345, 4, 2, 1}; }
  const cppgunicorn::config::Config& control_config() const override { return config; }
  std::string control_worker_class() const override { return "sync"; }
  int target_workers() const override { return target; }
  void set_target_workers(int n) override { target = n; }
  bool terminate_worker(pid_t pid, std::string* error) override {
    if (pid == 20) return true;
    *error = "Worker " + std::to_string(pid) + " not found";
    return false;
  }
  cppgunicorn::config::Config config;
  int target = 2;
};

Json ask(ControlTarget& t, const std::string& command) {
  return answer_control_request(
      t, Json(Json::Object{{"id", 3}, {"command", command}, {"args", Json::Array{}}}));
}

}  // namespace

TEST_CASE("control: show workers sorts by age and rounds the heartbeat") {
  FakeMaster m;
  Json a = ask(m, "show workers");
  CHECK(a.find("status")->string() == "ok");
  CHECK(a.find("id")->integer() == 3);
  CHECK(a.find("data")->dump() ==
        R"({"workers": [{"pid": 20, "age": 1, "booted": false, "aborted": true, "last_heartbeat": 1}, )"
        R"({"pid": 30, "age": 2, "booted": true, "aborted": false, "last_heartbeat": 0.25}], "count": 2})");
}

TEST_CASE("control: worker add/remove keep at least one worker; kill names a missing pid") {
  FakeMaster m;
  CHECK(ask(m, "worker add 3").find("data")->dump() == R"({"added": 3, "previous": 2, "total": 5})");
  CHECK(ask(m, "WORKER remove 9").find("data")->dump() == R"({"removed": 4, "previous": 5, "total": 1})");
  CHECK(ask(m, "worker add 0").find("data")->dump() == R"({"added": 1, "previous": 1, "total": 2})");
  CHECK(ask(m, "worker kill 20").find("data")->dump() == R"({"success": true, "killed": 20})");
  CHECK(ask(m, "worker kill 21").find("data")->dump() ==
        R"({"success": false, "error": "Worker 21 not found"})");
}

TEST_CASE("control: gunicorn's error messages") {
  FakeMaster m;
  auto error = [&](const std::string& command) { return ask(m, command).find("error")->string(); };
  CHECK(error("") == "Empty command");
  CHECK(error("bogus") == "Invalid argument: Unknown command: bogus");
  CHECK(error("show") == "Invalid argument: Missing show target (all|workers|dirty|config|stats|listeners)");
  CHECK(error("show nothing") == "Invalid argument: Unknown show target: nothing");
  CHECK(error("worker add x") == "Invalid argument: invalid literal for int() with base 10: 'x'");
  CHECK(error("worker kill") == "Invalid argument: Missing PID for worker kill");
  CHECK(error("worker 'add") == "Invalid argument: No closing quotation");
  CHECK(ask(m, "dirty add").find("data")->dump() ==
        R"({"success": false, "error": "Dirty arbiter not running"})");
}

TEST_CASE("control: args are appended to the command words") {
  FakeMaster m;
  Json a = answer_control_request(
      m, Json::parse(R"({"id": "x", "command": "worker", "args": ["add", 2]})"));
  CHECK(a.find("id")->string() == "x");
  CHECK(a.find("data")->find("total")->integer() == 4);
}

TEST_CASE("control: split_command follows shlex") {
  CHECK(split_command("  show   workers ") == std::vector<std::string>{"show", "workers"});
  CHECK(split_command(R"(a 'b c' "d \"e\"" f\ g)") ==
        std::vector<std::string>{"a", "b c", "d \"e\"", "f g"});
  CHECK_THROWS_AS(split_command("a \"b"), std::invalid_argument);
}
