"""Settings that change what is spoken on the wire, or who may connect, and
that cppgunicorn cannot honour (or whose value is no such thing: a
``--protocol`` other than http or uwsgi, a host name in
``--uwsgi-allow-from``) are refused at start: exit status 1 and one
line, ``Error: Invalid value for SETTING: 'VALUE' (... what to use instead)``,
before anything listens. That holds for every source (command line,
GUNICORN_CMD_ARGS, gunicorn.conf.py, TOML, --check-config); on HUP such a
value leaves the running configuration in force. What we do anyway
(``--protocol http``, ``--http-protocols h1``, the sync, gthread, gevent and
eventlet workers)
is served without a warning."""
import os
import signal
import socket
import subprocess

import pytest
import requests

from conftest import APPS, free_port, server_binary
from proc_tools import wait_for_workers, wait_until

APP_DIR = APPS / "cmdlines"

# (command-line flags, setting name, value as the message shows it, a
# fragment of what to use instead)
REFUSED = [
    (["--protocol", "spdy"], "protocol", "spdy", "expected http or uwsgi"),
    (["--protocol=fastcgi"], "protocol", "fastcgi", "expected http or uwsgi"),
    (["--uwsgi-allow-from", "10.0.0.1,nginx"], "uwsgi_allow_ips", "10.0.0.1,nginx",
     "'nginx' is not an IP address or network"),
    (["--uwsgi-allow-from", "10.0.0.1/33"], "uwsgi_allow_ips", "10.0.0.1/33",
     "is not an IP address or network"),
    (["--http-protocols", "h2"], "http_protocols", "h2", "use h1"),
    (["--http-protocols", "h1,h2"], "http_protocols", "h1,h2", "use h1"),
    (["--http-protocols", "h3"], "http_protocols", "h3", "use h1"),
    (["-k", "tornado"], "worker_class", "tornado", "gthread with --threads N"),
    (["-k", "egg:gunicorn#tornado"], "worker_class", "egg:gunicorn#tornado",
     "gthread with --threads N"),
    (["-k", "gunicorn.workers.gtornado.TornadoWorker"], "worker_class",
     "gunicorn.workers.gtornado.TornadoWorker", "gthread with --threads N"),
    (["-k", "myproject.workers.CustomWorker"], "worker_class", "myproject.workers.CustomWorker",
     "gthread with --threads N"),
]

# One refused value per setting, as a config file writes it:
# (setting, Python/TOML value, value as the message shows it)
IN_FILES = [
    ("protocol", '"spdy"', "spdy"),
    ("uwsgi_allow_ips", '"10.0.0.1,nginx"', "10.0.0.1,nginx"),
    ("http_protocols", '"h2,h1"', "h2,h1"),
    ("worker_class", '"tornado"', "tornado"),
]


def run(*args, cwd=APP_DIR, env=None):
    """Runs the server to its exit; returns (process, port it was given)."""
    port = free_port()
    full_env = {k: v for k, v in os.environ.items()
                if k not in ("GUNICORN_CMD_ARGS", "CPPGUNICORN_CMD_ARGS")}
    full_env.update(env or {})
    proc = subprocess.run([server_binary(), "--bind", f"127.0.0.1:{port}", *args],
                          cwd=cwd, env=full_env, capture_output=True, text=True, timeout=30)
    return proc, port


def nothing_listens(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def assert_refused(proc, port, setting, value, *fragments):
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    # One line, naming the setting and the value, and nothing started.
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"Error: Invalid value for {setting}: '{value}' ("), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert nothing_listens(port)
    return lines[0]


@pytest.mark.parametrize("flags, setting, value, instead", REFUSED,
                         ids=[" ".join(r[0]) for r in REFUSED])
def test_refused_on_the_command_line(flags, setting, value, instead):
    proc, port = run(*flags, "app:app")
    line = assert_refused(proc, port, setting, value, instead)
    assert line.endswith("[from command line]"), line


@pytest.mark.parametrize("flags, setting, value, instead", REFUSED[::2],
                         ids=[" ".join(r[0]) for r in REFUSED[::2]])
def test_refused_by_check_config(flags, setting, value, instead):
    proc, port = run("--check-config", *flags, "app:app")
    assert_refused(proc, port, setting, value, instead)


@pytest.mark.parametrize("setting, literal, value", IN_FILES, ids=[f[0] for f in IN_FILES])
def test_refused_from_gunicorn_conf_py(tmp_path, setting, literal, value):
    # ./gunicorn.conf.py, found without -c, as gunicorn finds it.
    (tmp_path / "gunicorn.conf.py").write_text(f"workers = 1\n{setting} = {literal}\n")
    proc, port = run("--chdir", str(APP_DIR), "app:app", cwd=tmp_path)
    line = assert_refused(proc, port, setting, value)
    assert line.endswith("[from config file gunicorn.conf.py]"), line


@pytest.mark.parametrize("setting, literal, value", IN_FILES, ids=[f[0] for f in IN_FILES])
def test_refused_from_a_toml_file(tmp_path, setting, literal, value):
    conf = tmp_path / "conf.toml"
    conf.write_text(f"workers = 1\n{setting} = {literal}\n")
    proc, port = run("-c", str(conf), "app:app")
    line = assert_refused(proc, port, setting, value)
    assert line.endswith(f"[from config file {conf}]"), line


def test_a_python_list_with_a_host_name_is_refused_too(tmp_path):
    conf = tmp_path / "conf.py"
    conf.write_text("uwsgi_allow_ips = ['10.0.0.1', 'nginx']\n")
    proc, port = run("-c", str(conf), "--check-config", "app:app")
    assert_refused(proc, port, "uwsgi_allow_ips", "10.0.0.1,nginx")


@pytest.mark.parametrize("env_line, setting, value", [
    ("--worker-class tornado", "worker_class", "tornado"),
    ("--http-protocols h2", "http_protocols", "h2"),
])
def test_refused_from_gunicorn_cmd_args(env_line, setting, value):
    proc, port = run("app:app", env={"GUNICORN_CMD_ARGS": env_line})
    line = assert_refused(proc, port, setting, value)
    assert line.endswith("[from env GUNICORN_CMD_ARGS]"), line


def test_a_higher_source_that_sets_an_accepted_value_wins(start_server, tmp_path):
    # Only the value in force counts: the command line puts sync and http back.
    (tmp_path / "gunicorn.conf.py").write_text('worker_class = "tornado"\nprotocol = "uwsgi"\n')
    srv = start_server("app:app", "-k", "sync", "--protocol", "http", chdir=APP_DIR,
                       cwd=tmp_path)
    assert requests.get(srv.url + "/", timeout=5).status_code == 200


@pytest.mark.parametrize("flags", [
    ["--protocol", "http"],
    ["--http-protocols", "h1"],
    ["-k", "sync"],
    ["-k", "gunicorn.workers.sync.SyncWorker"],
    ["-k", "gthread", "--threads", "4"],
    ["-k", "gunicorn.workers.gthread.ThreadWorker", "--threads", "2"],
    ["-k", "egg:gunicorn#gthread", "--threads", "2"],
    ["-k", "gevent"],
    ["-k", "gunicorn.workers.ggevent.GeventWorker"],
    ["-k", "egg:gunicorn#gevent", "--worker-connections", "10"],
    ["-k", "gevent_pywsgi"],
    ["-k", "eventlet"],
    ["-k", "gunicorn.workers.geventlet.EventletWorker"],
    ["-k", "egg:gunicorn#eventlet"],
    ["--uwsgi-allow-from", "10.0.0.1,10.1.0.0/16"],  # with protocol http it changes nothing
], ids=lambda f: " ".join(f))
def test_accepted_values_are_served_without_a_warning(start_server, flags):
    srv = start_server("app:app", *flags, chdir=APP_DIR)
    r = requests.get(srv.url + "/", timeout=5)
    assert r.status_code == 200 and "pid" in r.json()
    srv.stop()
    assert "not acted upon" not in srv.stderr(), srv.stderr()
    assert "Invalid value" not in srv.stderr(), srv.stderr()


@pytest.mark.parametrize("setting, literal, value", [IN_FILES[0], IN_FILES[3]],
                         ids=["protocol", "worker_class"])
def test_hup_with_a_refused_value_keeps_the_running_config(start_server, tmp_path, setting,
                                                            literal, value):
    conf = tmp_path / "conf.py"
    conf.write_text("workers = 1\n")
    srv = start_server("app:app", "-c", conf, chdir=APP_DIR)
    master = srv.proc.pid
    wait_for_workers(master, 1)
    conf.write_text(f"workers = 1\n{setting} = {literal}\n")
    os.kill(master, signal.SIGHUP)
    wait_until(lambda: "Configuration not reloaded" in srv.stderr(), 15,
               what="the refused value to be reported")
    err = srv.stderr()
    assert f"Invalid value for {setting}: '{value}'" in err, err
    assert f"[from config file {conf}]" in err
    assert requests.get(srv.url + "/", timeout=5).status_code == 200
    assert srv.proc.poll() is None
