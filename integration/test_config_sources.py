"""Configuration sources: gunicorn.conf.py, TOML, GUNICORN_CMD_ARGS,
CPPGUNICORN_CMD_ARGS and the command line, their precedence, --check-config,
--print-config, and clear errors for bad values."""
import subprocess

import pytest
import requests

from conftest import APPS, free_port, server_binary

APP_DIR = APPS / "cmdlines"

CONF_PY = """
workers = 2
raw_env = ["FOO=from-file"]
proc_name = "conf-app"
accesslog = {accesslog!r}
access_log_format = "%(m)s %(U)s %(s)s"
forwarded_allow_ips = "*"
timeout = 45
preload_app = False
"""

CONF_TOML = """
workers = 2
raw_env = ["FOO=from-file"]
proc_name = "conf-app"
accesslog = {accesslog!r}
access_log_format = "%(m)s %(U)s %(s)s"
forwarded_allow_ips = "*"
timeout = 45
preload_app = false
"""


def run(*args, cwd=None, env=None, timeout=30):
    import os
    full_env = dict(os.environ)
    full_env.pop("GUNICORN_CMD_ARGS", None)
    full_env.pop("CPPGUNICORN_CMD_ARGS", None)
    full_env.update(env or {})
    return subprocess.run([server_binary(), *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def printed(output):
    """--print-config lines as {name: (value, source)}."""
    out = {}
    for line in output.splitlines():
        if " = " not in line:
            continue
        name, rest = line.split(" = ", 1)
        value, _, source = rest.rpartition("  (")
        out[name.strip()] = (value, source.rstrip(")"))
    return out


@pytest.mark.parametrize("kind", ["py", "toml"])
def test_config_file_settings_are_served(start_server, tmp_path, kind):
    log = tmp_path / "access.log"
    conf = tmp_path / f"conf.{kind}"
    conf.write_text((CONF_PY if kind == "py" else CONF_TOML).format(accesslog=str(log)))
    srv = start_server("app:app", "-c", str(conf), chdir=APP_DIR, cwd=tmp_path)
    pids = set()
    for _ in range(20):
        body = requests.get(srv.url + "/x", timeout=5).json()
        assert body["FOO"] == "from-file"
        pids.add(body["pid"])
    srv.stop()
    assert "GET /x 200" in log.read_text()
    p = printed(run("--print-config", "-c", str(conf), "--chdir", str(APP_DIR), "app:app",
                    cwd=tmp_path).stdout)
    assert p["workers"] == ("2", f"config file {conf}")
    assert p["timeout"] == ("45", f"config file {conf}")
    assert p["proc_name"] == ("conf-app", f"config file {conf}")
    assert p["preload_app"] == ("False", f"config file {conf}")


def test_gunicorn_conf_py_in_the_current_directory_is_read_without_c(tmp_path):
    (tmp_path / "gunicorn.conf.py").write_text("workers = 3\n")
    p = printed(run("--print-config", "--chdir", str(APP_DIR), "app:app", cwd=tmp_path).stdout)
    assert p["workers"] == ("3", "config file gunicorn.conf.py")
    assert p["config"][0] == "gunicorn.conf.py"


def test_python_module_config(tmp_path):
    (tmp_path / "myconf.py").write_text("workers = 4\nbind = ['127.0.0.1:1', '127.0.0.1:2']\n")
    p = printed(run("--print-config", "-c", "python:myconf", "--chdir", str(APP_DIR), "app:app",
                    cwd=tmp_path).stdout)
    assert p["workers"] == ("4", "config file python:myconf")
    assert p["bind"] == ("127.0.0.1:1,127.0.0.1:2", "config file python:myconf")


def test_precedence_file_then_gunicorn_env_then_cppgunicorn_env_then_command_line(tmp_path):
    conf = tmp_path / "c.py"
    conf.write_text("workers = 2\ntimeout = 11\nkeepalive = 7\nbind = ['127.0.0.1:1']\n"
                    "graceful_timeout = 9\n")
    env = {"GUNICORN_CMD_ARGS": "--timeout 12 --keep-alive 8 --bind 127.0.0.1:2 --bind 127.0.0.1:3",
           "CPPGUNICORN_CMD_ARGS": "--keep-alive=9 --graceful-timeout '10'"}
    out = run("--print-config", "-c", str(conf), "--graceful-timeout", "13", "--chdir",
              str(APP_DIR), "app:app", cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    p = printed(out.stdout)
    assert p["workers"] == ("2", f"config file {conf}")
    assert p["timeout"] == ("12", "env GUNICORN_CMD_ARGS")
    # A higher source replaces a list, it does not extend it.
    assert p["bind"] == ("127.0.0.1:2,127.0.0.1:3", "env GUNICORN_CMD_ARGS")
    assert p["keepalive"] == ("9", "env CPPGUNICORN_CMD_ARGS")
    assert p["graceful_timeout"] == ("13", "command line")
    assert p["max_requests"] == ("0", "default")
    assert p["check_config"] == ("False", "default")


def test_precedence_is_what_the_server_does(start_server, tmp_path):
    conf = tmp_path / "c.py"
    conf.write_text("raw_env = ['FOO=file']\n")
    srv = start_server("app:app", "-c", str(conf), chdir=APP_DIR, cwd=tmp_path,
                       env={"GUNICORN_CMD_ARGS": "-e FOO=gunicorn-env"})
    assert requests.get(srv.url + "/", timeout=5).json()["FOO"] == "gunicorn-env"
    srv2 = start_server("app:app", "-c", str(conf), "-e", "FOO=cli", chdir=APP_DIR, cwd=tmp_path,
                        env={"GUNICORN_CMD_ARGS": "-e FOO=gunicorn-env",
                             "CPPGUNICORN_CMD_ARGS": "-e FOO=cpp-env"})
    assert requests.get(srv2.url + "/", timeout=5).json()["FOO"] == "cli"


def test_config_file_named_in_gunicorn_cmd_args_is_read(tmp_path):
    (tmp_path / "env.conf.py").write_text("workers = 5\n")
    p = printed(run("--print-config", "--chdir", str(APP_DIR), "app:app", cwd=tmp_path,
                    env={"GUNICORN_CMD_ARGS": "-c env.conf.py"}).stdout)
    assert p["workers"] == ("5", "config file env.conf.py")


def test_print_config_names_every_setting_and_loads_the_app():
    out = run("--print-config", "--chdir", str(APP_DIR), "app:app")
    assert out.returncode == 0, out.stderr
    p = printed(out.stdout)
    for name in ("bind", "workers", "worker_class", "statsd_host", "on_starting", "keyfile",
                 "forwarded_allow_ips", "secure_scheme_headers", "raw_env", "reload"):
        assert name in p
    assert len(p) >= 90
    assert all(source == "default" for name, (value, source) in p.items()
               if name not in ("print_config", "default_proc_name", "chdir")), p
    assert p["print_config"] == ("True", "command line")


def test_check_config_exits_0_for_a_good_config():
    out = run("--check-config", "--chdir", str(APP_DIR), "app:app")
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("uri, reason", [
    ("nosuchmodule:app", "No module named 'nosuchmodule'"),
    ("app:nosuchattr", "Failed to find attribute 'nosuchattr'"),
])
def test_check_config_exits_1_with_the_reason_when_the_app_does_not_load(uri, reason):
    out = run("--check-config", "--chdir", str(APP_DIR), uri)
    assert out.returncode == 1
    assert reason in out.stderr


def test_check_config_exits_1_for_a_config_file_that_raises(tmp_path):
    conf = tmp_path / "bad.py"
    conf.write_text("workers = 2\nraise RuntimeError('broken conf')\n")
    out = run("--check-config", "-c", str(conf), "--chdir", str(APP_DIR), "app:app")
    assert out.returncode == 1
    assert "Failed to read config file" in out.stderr and "broken conf" in out.stderr


# Status 2 where gunicorn's argparse refuses the command line (unknown flag,
# missing value, not an int for an int flag), 1 for a value that parses but
# is not allowed (gunicorn's validators).
@pytest.mark.parametrize("args, env, code, fragments", [
    (["--workers", "abc"], {}, 2, ["-w/--workers", "invalid int value: 'abc'"]),
    (["--timeout", "-1"], {}, 1, ["timeout", "'-1'", "integer"]),
    (["--umask", "999"], {}, 1, ["umask", "'999'"]),
    (["--log-level", "loud"], {}, 1, ["loglevel", "'loud'", "debug, info"]),
    (["--forwarded-allow-ips", "300.1.1.1"], {}, 1, ["forwarded_allow_ips", "300.1.1.1", "IP"]),
    (["--reload-engine", "magic"], {}, 1, ["reload_engine", "'magic'", "auto, poll, inotify"]),
    (["-e", "NOEQUALS"], {}, 1, ["raw_env", "'NOEQUALS'", "NAME=VALUE"]),
    (["--max-requests", "1.5"], {}, 2, ["--max-requests", "invalid int value: '1.5'"]),
    ([], {"GUNICORN_CMD_ARGS": "--workers=none"}, 2, ["--workers", "'none'", "GUNICORN_CMD_ARGS"]),
    ([], {"CPPGUNICORN_CMD_ARGS": "--no-such-flag"}, 2, ["unrecognized", "--no-such-flag"]),
    (["--no-such-flag"], {}, 2, ["unrecognized arguments: --no-such-flag"]),
    (["--workers"], {}, 2, ["--workers", "expected one argument"]),
    (["--worker-class", "uvicorn.workers.UvicornWorker"], {}, 1, ["worker_class", "ASGI"]),
    (["-c", "missing.conf.py"], {}, 1, ["config", "missing.conf.py", "no such file"]),
])
def test_bad_value_names_the_setting_and_exits_before_any_worker(args, env, code, fragments):
    out = run(*args, "--bind", f"127.0.0.1:{free_port()}", "--chdir", str(APP_DIR), "app:app",
              env=env)
    assert out.returncode == code, out.stderr
    if code == 2:
        assert out.stderr.startswith("usage: cppgunicorn"), out.stderr
    for f in fragments:
        assert f in out.stderr, out.stderr
    assert "Booting worker" not in out.stderr


@pytest.mark.parametrize("name, text, fragments", [
    ("c.py", "workers = 'many'\n", ["workers", "'many'", "integer"]),
    ("c.py", "timeout = 30.5\n", ["timeout", "'30.5'"]),
    ("c.py", "bind = 'x'\nworkers = (\n", ["Failed to read config file", "SyntaxError"]),
    ("c.toml", "workers = \"many\"\n", ["workers", "'many'", "integer"]),
    ("c.toml", "wokers = 2\n", ["Unknown setting 'wokers'"]),
    ("c.toml", "timeout = 1.5\n", ["timeout", "expected a string, integer or boolean"]),
    ("c.toml", "workers = \n", ["Failed to read config file", "line 1"]),
    ("c.toml", "preload_app = \"maybe\"\n", ["preload_app", "'maybe'", "true or false"]),
])
def test_bad_value_in_a_config_file_names_the_setting(tmp_path, name, text, fragments):
    conf = tmp_path / name
    conf.write_text(text)
    out = run("-c", str(conf), "--bind", f"127.0.0.1:{free_port()}", "--chdir", str(APP_DIR),
              "app:app")
    assert out.returncode == 1, out.stderr
    for f in fragments:
        assert f in out.stderr, out.stderr


def test_toml_dict_and_hook_path(tmp_path):
    (tmp_path / "hookmod.py").write_text("def when_ready(server):\n    pass\n")
    conf = tmp_path / "c.toml"
    conf.write_text('when_ready = "hookmod.when_ready"\n'
                    '[secure_scheme_headers]\n"X-Forwarded-Proto" = "https"\n')
    out = run("--print-config", "-c", str(conf), "--pythonpath", str(tmp_path), "--chdir",
              str(APP_DIR), "app:app", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    p = printed(out.stdout)
    assert p["secure_scheme_headers"][0] == "X-Forwarded-Proto=https"
    assert p["when_ready"][0] == "hookmod.when_ready"
