"""cppgunicornc prints what gunicornc prints and finds the same socket."""
import pytest

from cppgunicorn import control

gunicornc = pytest.importorskip("gunicorn.ctl.cli")
gunicorn_config = pytest.importorskip("gunicorn.config")

ANSWERS = {
    "show workers": {"workers": [{"pid": 11, "age": 1, "booted": True, "aborted": False,
                                  "last_heartbeat": 0.25},
                                 {"pid": 12, "age": 2, "booted": False, "aborted": False,
                                  "last_heartbeat": None}], "count": 2},
    "show stats": {"uptime": 3723.4, "pid": 10, "workers_current": 2, "workers_target": 2,
                   "workers_spawned": 5, "workers_killed": 3, "reloads": 1,
                   "dirty_arbiter_pid": None},
    "show listeners": {"listeners": [{"address": "http://127.0.0.1:8000", "fd": 3,
                                      "type": "tcp"}], "count": 1},
    "show config": {"bind": ["127.0.0.1:8000", "unix:/tmp/s"], "workers": 2, "pidfile": None},
    "show all": {"arbiter": {"pid": 10, "type": "arbiter", "role": "master"},
                 "web_workers": [{"pid": 11, "type": "web", "age": 1, "booted": True,
                                  "last_heartbeat": 0.1}],
                 "web_worker_count": 1, "dirty_arbiter": None, "dirty_workers": [],
                 "dirty_worker_count": 0},
    "help": {"commands": {"show all": "Show all", "reload": "Graceful reload (HUP)"}},
    "worker add 2": {"added": 2, "previous": 1, "total": 3},
    "reopen": {},
}


@pytest.mark.parametrize("command", sorted(ANSWERS))
def test_the_output_is_gunicornc_s(command):
    data = ANSWERS[command]
    assert control.render(command, data, as_json=False) == gunicornc.format_response(command, data)


def test_the_default_socket_path_is_gunicorn_s(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert control.default_socket_path() == str(tmp_path / "gunicorn.ctl")
    assert control.default_socket_path() == gunicorn_config._get_default_control_socket()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "missing"))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert control.default_socket_path() == str(tmp_path / ".gunicorn" / "gunicorn.ctl")
    assert control.default_socket_path() == gunicorn_config._get_default_control_socket()


def test_command_words_are_sent_as_gunicornc_sends_them():
    for line in ["show workers", "  worker   add 2 ", "worker kill 123", "shutdown quick"]:
        cmd, args = gunicornc.parse_command(line)
        expected = f"{cmd} {' '.join(args)}".strip() if args else cmd
        assert control.normalize(line) == expected
