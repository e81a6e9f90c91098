#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>

#include "config/settings_table.h"
#include "config/sources.h"

using namespace cppgunicorn::config;

TEST_CASE("every setting and every flag is declared once") {
  std::set<std::string_view> names, flags;
  for (const Setting& s : settings_table()) {
    CHECK_MESSAGE(names.insert(s.name).second, s.name);
    for (std::string_view f : s.flags) CHECK_MESSAGE(flags.insert(f).second, f);
  }
  CHECK(names.size() >= 90);
}

TEST_CASE("shell_split splits like Python's shlex.split") {
  CHECK(shell_split("--bind=0.0.0.0:80 --workers 3") ==
        std::vector<std::string>{"--bind=0.0.0.0:80", "--workers", "3"});
  CHECK(shell_split(R"(--access-logformat '%(h)s "%(r)s"' -e A="b c")") ==
        std::vector<std::string>{"--access-logformat", R"(%(h)s "%(r)s")", "-e", "A=b c"});
  CHECK(shell_split(R"(a\ b "c\"d" '')") == std::vector<std::string>{"a b", "c\"d", ""});
  CHECK(shell_split("   ").empty());
  CHECK_THROWS_AS(shell_split("'unterminated"), ConfigError);
}

TEST_CASE("parse_arguments reads argparse's forms") {
  ParsedArgs p = parse_arguments({"-w4", "--bind=127.0.0.1:1", "--graceful", "2", "--preload", "app:app",
                                  "--timeout", "-1"});
  REQUIRE(p.assignments.size() == 5);
  CHECK(p.assignments[0].setting->name == "workers");
  CHECK(p.assignments[0].value == "4");
  CHECK(p.assignments[1].value == "127.0.0.1:1");
  CHECK(p.assignments[2].setting->name == "graceful_timeout");  // an unambiguous prefix
  CHECK(p.assignments[3].value == "true");
  CHECK(p.assignments[4].value == "-1");
  CHECK(p.positional == std::vector<std::string>{"app:app"});
  CHECK_THROWS_AS(parse_arguments({"--preload=yes"}), ConfigError);
  CHECK_THROWS_AS(parse_arguments({"--log"}), ConfigError);  // ambiguous prefix
  CHECK_THROWS_AS(parse_arguments({"--workers", "--preload"}), ConfigError);
  CHECK(parse_arguments({"--help"}).action == CliAction::kHelp);
}

TEST_CASE("TOML values become the settings' text forms") {
  char path[] = "/tmp/cppgunicorn-toml-XXXXXX.toml";
  int fd = ::mkstemps(path, 5);
  REQUIRE(fd >= 0);
  ::close(fd);
  {
    std::ofstream out(path);
    out << "workers = 3\npreload_app = true\nbind = [\"127.0.0.1:1\", \"127.0.0.1:2\"]\n"
           "[secure_scheme_headers]\nX-Proto = \"https\"\n";
  }
  std::vector<FileValue> values = read_toml_file(path);
  std::map<std::string, std::vector<std::string>> by_name;
  for (auto& v : values) by_name[v.name] = v.values;
  CHECK(by_name["workers"] == std::vector<std::string>{"3"});
  CHECK(by_name["preload_app"] == std::vector<std::string>{"true"});
  CHECK(by_name["bind"] == std::vector<std::string>{"127.0.0.1:1", "127.0.0.1:2"});
  CHECK(by_name["secure_scheme_headers"] == std::vector<std::string>{"X-Proto=https"});
  std::remove(path);
}

TEST_CASE("load_config: the highest source wins and replaces lists") {
  ::setenv("GUNICORN_CMD_ARGS", "--bind 127.0.0.1:2 --workers 2 --timeout 5", 1);
  ::setenv("CPPGUNICORN_CMD_ARGS", "--workers 3", 1);
  LoadedConfig loaded = load_config({"--timeout", "7", "--spew", "app:app"}, nullptr);
  ::unsetenv("GUNICORN_CMD_ARGS");
  ::unsetenv("CPPGUNICORN_CMD_ARGS");
  CHECK(loaded.config.bind == std::vector<std::string>{"127.0.0.1:2"});
  CHECK(loaded.config.workers == 3);
  CHECK(loaded.config.timeout == 7);
  CHECK(loaded.config.app_uri == "app:app");
  CHECK(loaded.origins["workers"].source == Source::kCppgunicornEnv);
  CHECK(loaded.origins["timeout"].source == Source::kCommandLine);
  CHECK(loaded.ignored_warning.find("spew=True") != std::string::npos);
  CHECK_THROWS_WITH_AS(load_config({"--workers", "0", "app:app"}, nullptr),
                       doctest::Contains("Invalid value for workers: '0'"), ConfigError);
}

TEST_CASE("load_config refuses what would change the wire or who may connect") {
  auto refused = [](std::vector<std::string> args, const char* text) {
    args.push_back("app:app");
    CHECK_THROWS_WITH_AS(load_config(args, nullptr), doctest::Contains(text), ConfigError);
  };
  refused({"--protocol", "spdy"}, "Invalid value for protocol: 'spdy' (expected http or uwsgi)");
  refused({"--uwsgi-allow-from", "10.0.0.1,nginx"},
          "Invalid value for uwsgi_allow_ips: '10.0.0.1,nginx' ('nginx' is not an IP address");
  refused({"--http-protocols", "h2"}, "Invalid value for http_protocols: 'h2' (only HTTP/1.x");
  refused({"--http-protocols", "h1, H2"}, "Invalid value for http_protocols: 'h1, H2'");
  refused({"--http-protocols", "h1,h1"}, "'h1' is given twice");
  refused({"--http-protocols", "h4"}, "'h4' is not a protocol");
  refused({"-k", "tornado"}, "Invalid value for worker_class: 'tornado' (cppgunicorn has no such");
  refused({"-k", "gunicorn.workers.gtornado.TornadoWorker"}, "gthread with --threads N");
  refused({"-k", "myproject.Worker"}, "[from command line]");
  refused({"-k", "uvicorn.workers.UvicornWorker"}, "an ASGI worker");
  // What we do anyway is accepted without a warning.
  LoadedConfig ok = load_config({"--protocol", "HTTP", "--http-protocols", "h1", "-k",
                                 "gunicorn.workers.gthread.ThreadWorker", "app:app"},
                                nullptr);
  CHECK(ok.ignored_warning.empty());
  CHECK(load_config({"--http-protocols", "", "app:app"}, nullptr).ignored_warning.empty());
  // Only the winning source counts: the command line sets sync back.
  ::setenv("GUNICORN_CMD_ARGS", "-k tornado --protocol uwsgi", 1);
  CHECK(load_config({"-k", "sync", "app:app"}, nullptr).config.protocol == "uwsgi");
  CHECK_NOTHROW(load_config({"-k", "sync", "--protocol", "http", "app:app"}, nullptr));
  CHECK_THROWS_WITH_AS(load_config({"app:app"}, nullptr),
                       doctest::Contains("[from env GUNICORN_CMD_ARGS]"), ConfigError);
  ::unsetenv("GUNICORN_CMD_ARGS");
}

TEST_CASE("worker classes: gunicorn's names for sync, gthread, gevent and eventlet") {
  auto kind = [](const char* worker_class) {
    return load_config({"-k", worker_class, "app:app"}, nullptr).config.worker_kind();
  };
  CHECK(kind("sync") == WorkerKind::kLoop);
  CHECK(kind("egg:gunicorn#gthread") == WorkerKind::kLoop);
  CHECK(kind("gevent") == WorkerKind::kGevent);
  CHECK(kind("gunicorn.workers.ggevent.GeventWorker") == WorkerKind::kGevent);
  CHECK(kind("egg:gunicorn#gevent") == WorkerKind::kGevent);
  CHECK(kind("gevent_pywsgi") == WorkerKind::kGevent);
  CHECK(kind("eventlet") == WorkerKind::kEventlet);
  CHECK(kind("gunicorn.workers.geventlet.EventletWorker") == WorkerKind::kEventlet);
  CHECK(kind("egg:gunicorn#eventlet") == WorkerKind::kEventlet);
  // Case matters, as in gunicorn's lookup.
  CHECK_THROWS_AS(kind("GEVENT"), ConfigError);
  Config config;
  CHECK_FALSE(config.concurrent_app());
  config.worker_class = "eventlet";
  CHECK(config.concurrent_app());
}

TEST_CASE("--protocol uwsgi and --uwsgi-allow-from are read as gunicorn reads them") {
  LoadedConfig c = load_config({"--protocol", "UWSGI", "--uwsgi-allow-from", "10.0.0.1, 192.168.0.0/16,*",
                                "app:app"},
                               nullptr);
  CHECK(c.config.protocol == "uwsgi");
  CHECK(c.config.uwsgi_allow_ips == std::vector<std::string>{"10.0.0.1", "192.168.0.0/16", "*"});
  LoadedConfig d = load_config({"app:app"}, nullptr);
  CHECK(d.config.protocol == "http");
  CHECK(d.config.uwsgi_allow_ips == std::vector<std::string>{"127.0.0.1", "::1"});
}

TEST_CASE("--no-sendfile and a file's sendfile = False switch sendfile off") {
  CHECK(load_config({"app:app"}, nullptr).config.sendfile);
  LoadedConfig flag = load_config({"--no-sendfile", "app:app"}, nullptr);
  CHECK_FALSE(flag.config.sendfile);
  CHECK(flag.shown.at("sendfile") == "False");
  CHECK(flag.config.ignored.count("sendfile") == 0);
  // --no-control-socket sets control_socket_disable (default False).
  LoadedConfig no_control = load_config({"--no-control-socket", "app:app"}, nullptr);
  CHECK(no_control.config.control_socket_disable);
  CHECK(no_control.config.ignored.count("control_socket_disable") == 0);
  CHECK_FALSE(load_config({"app:app"}, nullptr).config.control_socket_disable);
  char path[] = "/tmp/cppgunicorn-sendfile-XXXXXX.toml";
  int fd = ::mkstemps(path, 5);
  REQUIRE(fd >= 0);
  ::close(fd);
  std::ofstream(path) << "sendfile = false\ntmp_upload_dir = \"/var/tmp\"\n";
  LoadedConfig file = load_config({"-c", path, "app:app"}, nullptr);
  ::unlink(path);
  CHECK_FALSE(file.config.sendfile);
  CHECK(file.config.tmp_upload_dir == "/var/tmp");
  CHECK(file.config.ignored.empty());
}
