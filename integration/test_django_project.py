"""A real Django project: made by `django-admin startproject` for the
module, migrated on SQLite, with a superuser, and served with --workers 2
--threads 4 by cppgunicorn and, side by side, by gunicorn 27. The admin is
driven as a browser would: login with its CSRF token, add, change and
delete a Group, logout; then sessions in parallel across both workers and
their threads. Every step must give the same answers from both servers.
"""
import os
import re
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from conftest import Server, free_port, server_binary, wait_for_port

SERVERS = ["cppgunicorn", "gunicorn"]
FLAGS = ["--workers", "2", "--threads", "4"]
USER, PASSWORD = "admin", "correct horse battery staple"
PROJECT = "mysite"

# What a deployment adds to the generated settings: SQLite waits for the
# write lock instead of failing under concurrent logins (Django 5.1 takes
# it at the start of each transaction with transaction_mode). And what
# Django's testing docs advise: a fast password hasher, since the default
# (PBKDF2, a million rounds) spends a CPU-second or so per login here.
SETTINGS_TAIL = """
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
import django as _django
DATABASES["default"]["OPTIONS"] = {"timeout": 30}
if _django.VERSION >= (5, 1):
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
"""

# A view of the project's own, so a test can see which worker process and
# which thread served a request.
URLS_TAIL = """
import os as _os
import threading as _threading
from django.http import JsonResponse as _JsonResponse

def served_by(request):
    return _JsonResponse({"pid": _os.getpid(), "thread": _threading.get_ident(),
                          "user": request.user.get_username()})

urlpatterns.append(path("served-by/", served_by))
"""


def manage(project, *args, env=None):
    subprocess.run([sys.executable, "manage.py", *args], cwd=project, check=True,
                   env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, timeout=120)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("django")
    subprocess.run([sys.executable, "-m", "django", "startproject", PROJECT, str(root)],
                   check=True, timeout=60)
    with open(root / PROJECT / "settings.py", "a") as f:
        f.write(SETTINGS_TAIL)
    with open(root / PROJECT / "urls.py", "a") as f:
        f.write(URLS_TAIL)
    manage(root, "migrate", "--noinput")
    manage(root, "createsuperuser", "--noinput", "--username", USER, "--email", "a@example.com",
           env={"DJANGO_SUPERUSER_PASSWORD": PASSWORD})
    return root


@pytest.fixture(scope="module")
def servers(project):
    """{name: Server} for both servers, on the same project."""
    started = {}
    for name in SERVERS:
        port = free_port()
        if name == "cppgunicorn":
            binary, extra = server_binary(), []
        else:
            # gunicorn 27 opens a control socket in ~/.gunicorn by default,
            # which two gunicorns would share.
            binary, extra = str(Path(sys.executable).parent / "gunicorn"), ["--no-control-socket"]
        srv = Server([binary, "--bind", f"127.0.0.1:{port}", *extra, *FLAGS, "--chdir",
                      str(project), f"{PROJECT}.wsgi:application"], port=port)
        started[name] = srv
        assert wait_for_port(port, srv.proc), srv.stderr()
    yield started
    for name, srv in started.items():
        srv.stop()
        err = srv.stderr()
        assert "Traceback" not in err, f"{name}:\n{err}"
        for marker in ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer"):
            assert marker not in err, f"{name}:\n{err}"


def csrf_token(html):
    m = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert m, html[:2000]
    return m.group(1)


class Browser:
    """A requests.Session that records, for each step, the status and the
    path it ended on (object ids masked), to compare servers."""

    def __init__(self, url):
        self.url = url
        self.s = requests.Session()
        self.transcript = []

    def _note(self, step, r):
        path = re.sub(r"/\d+/", "/<id>/", r.url[len(self.url):])
        self.transcript.append((step, r.status_code, path))
        return r

    def get(self, step, path, **kw):
        return self._note(step, self.s.get(self.url + path, timeout=30, **kw))

    def post_form(self, step, path, fields, with_token=True):
        """GETs the form, then POSTs it with its CSRF token."""
        form = self.s.get(self.url + path, timeout=30)
        assert form.status_code == 200, form.text[:2000]
        data = dict(fields)
        if with_token:
            data["csrfmiddlewaretoken"] = csrf_token(form.text)
        return self._note(step, self.s.post(self.url + path, data=data, timeout=30))


def log_in(b):
    r = b.get("admin-anonymous", "/admin/")
    assert r.url.endswith("/admin/login/?next=/admin/")
    r = b.post_form("login", "/admin/login/?next=/admin/",
                    {"username": USER, "password": PASSWORD, "next": "/admin/"})
    assert r.status_code == 200 and r.url == b.url + "/admin/", r.text[:2000]
    assert "Site administration" in r.text and "Log out" in r.text
    assert b.s.cookies.get("sessionid") and b.s.cookies.get("csrftoken")
    return r


def log_out(b):
    # The admin's logout is a POST form on every page (Django 5).
    page = b.s.get(b.url + "/admin/", timeout=30)
    r = b._note("logout", b.s.post(b.url + "/admin/logout/", timeout=30,
                                   data={"csrfmiddlewaretoken": csrf_token(page.text)}))
    assert r.status_code == 200 and "Logged out" in r.text, r.text[:2000]
    assert b.get("admin-after-logout", "/admin/").url.endswith("/admin/login/?next=/admin/")


def admin_flow(url, tag):
    """Everything an editor does in one visit; returns the transcript."""
    b = Browser(url)
    # Refusals first: no CSRF token, then a wrong password.
    r = b._note("login-without-token", b.s.post(
        url + "/admin/login/", data={"username": USER, "password": PASSWORD}, timeout=30))
    assert r.status_code == 403 and "CSRF verification failed" in r.text
    r = b.post_form("login-wrong-password", "/admin/login/",
                    {"username": USER, "password": "wrong"})
    assert r.status_code == 200 and "Please enter the correct username and password" in r.text
    log_in(b)
    assert b.get("served-by", "/served-by/").json()["user"] == USER

    # Add a Group, with two permissions (a multi-valued field).
    name = f"editors-{tag}"
    r = b.post_form("group-add", "/admin/auth/group/add/",
                    {"name": name, "permissions": ["1", "2"], "_save": "Save"})
    assert r.status_code == 200 and r.url == url + "/admin/auth/group/", r.text[:2000]
    assert "was added successfully" in r.text and name in r.text
    group_id = re.search(r'href="/admin/auth/group/(\d+)/change/">' + re.escape(name), r.text)
    assert group_id, r.text[:4000]
    change = f"/admin/auth/group/{group_id.group(1)}/change/"

    # Change it: a new name and one permission fewer.
    r = b.post_form("group-change", change,
                    {"name": name + "-renamed", "permissions": ["2"], "_save": "Save"})
    assert "was changed successfully" in r.text and name + "-renamed" in r.text
    page = b.get("group-view", change).text
    assert re.search(r'<option value="2" selected>', page)
    assert not re.search(r'<option value="1" selected>', page)

    # Delete it (the confirmation page's form).
    r = b.post_form("group-delete", change.replace("/change/", "/delete/"), {"post": "yes"})
    assert "was deleted successfully" in r.text
    assert b.get("group-gone", change).status_code in (200, 302)  # "doesn't exist" message
    log_out(b)
    return b.transcript


@pytest.fixture(scope="module")
def transcripts():
    return {}


@pytest.mark.parametrize("name", SERVERS)
def test_admin_login_add_change_delete_logout(servers, transcripts, name):
    transcripts[name] = admin_flow(servers[name].url, name)


def test_both_servers_answer_the_admin_flow_alike(servers, transcripts):
    for name in SERVERS:
        if name not in transcripts:
            transcripts[name] = admin_flow(servers[name].url, name)
    assert transcripts["cppgunicorn"] == transcripts["gunicorn"]


def sessions_in_parallel(url, count):
    """`count` users at once, each logging in and reading pages; returns the
    (pid, thread) of every request served-by saw."""
    seen = []
    lock = threading.Lock()

    def visit(i):
        b = Browser(url)
        log_in(b)
        for _ in range(3):
            assert "Groups" in b.get("index", "/admin/auth/").text
            who = b.get("served-by", "/served-by/").json()
            assert who["user"] == USER
            with lock:
                seen.append((who["pid"], who["thread"]))
        log_out(b)

    with ThreadPoolExecutor(count) as pool:
        list(pool.map(visit, range(count)))
    return seen


@pytest.mark.parametrize("name", SERVERS)
def test_parallel_sessions_across_workers_and_threads(servers, name):
    srv = servers[name]
    # Each session keeps its own connection, which one worker accepted; a
    # burst of 16 normally reaches both workers, but nothing forces the
    # kernel to spread them, so bursts go on (a few at most) until it has.
    seen = []
    for _ in range(5):
        seen += sessions_in_parallel(srv.url, 16)
        if len({pid for pid, _ in seen}) == 2:
            break
    pids = {pid for pid, _ in seen}
    assert len(pids) == 2, seen
    assert len(set(seen)) > 2, seen  # more than one thread in some worker
