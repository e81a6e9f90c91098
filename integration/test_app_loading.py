"""App URIs, --chdir/--pythonpath, the embedded interpreter's environment,
and how a failed load is reported."""
import re
import subprocess
from pathlib import Path

import pytest
import requests

from conftest import APPS, ROOT, free_port, server_binary, server_python

URI_APPS = APPS / "uri"


@pytest.mark.parametrize("uri, body", [
    ("plainmod", "application"),
    ("plainmod:app", "app"),
    ("plainmod:create_app()", "factory"),
    ("plainmod:create_app_with('x', key=1)", "factory:x:1"),
    ("plainmod:holder.inner", "attr"),
    ("pkg.sub.mod:obj.attr", "package-attr"),
])
def test_every_app_uri_form_serves(start_server, uri, body):
    srv = start_server(uri, chdir=URI_APPS)
    assert requests.get(srv.url + "/", timeout=5).text == body


def test_pythonpath_adds_directories_to_sys_path(start_server, tmp_path):
    srv = start_server("extra_app:app", "--pythonpath", f"{tmp_path},{APPS / 'extra_path'}",
                       cwd=tmp_path)
    assert requests.get(srv.url + "/", timeout=5).status_code == 200


def test_installed_binary_embeds_the_venv_it_was_installed_into(start_server, tmp_path):
    # Run from an unrelated directory: sys.prefix must still be the venv and
    # its site-packages (Flask) importable.
    srv = start_server("extra_app:app", chdir=APPS / "extra_path", cwd=tmp_path)
    prefix, module = requests.get(srv.url + "/", timeout=5).text.split()
    expected = subprocess.run([server_python(), "-c", "import sys; print(sys.prefix)"],
                              capture_output=True, text=True, check=True).stdout.strip()
    assert Path(prefix).resolve() == Path(expected).resolve()
    assert module == "flask"


def run_failing(*args, cwd=None):
    port = free_port()
    proc = subprocess.run(
        [server_binary(), "--bind", f"127.0.0.1:{port}", *args],
        cwd=cwd, capture_output=True, text=True, timeout=30)
    return proc


def test_a_missing_app_module_is_a_worker_boot_error_with_one_line_naming_it():
    # gunicorn lets the ImportError through as a boot error: status 3.
    proc = run_failing("--chdir", str(URI_APPS), "no_such_module:app")
    assert proc.returncode == 3, proc.stderr
    lines = [l for l in proc.stderr.splitlines() if "No module named 'no_such_module'" in l]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("uri, message", [
    ("plainmod:missing", "Failed to find attribute 'missing' in 'plainmod'."),
    ("plainmod:not_callable", "Application object must be callable"),
    ("plainmod:returns_none", "Failed to find application object"),
    ("plainmod:create_app(", "Failed to parse"),
    ("plainmod:holder.nothing", "Failed to find attribute 'holder.nothing'"),
])
def test_an_app_that_cannot_load_exits_4_with_one_line_naming_it(uri, message):
    proc = run_failing("--chdir", str(URI_APPS), uri)
    assert proc.returncode == 4, proc.stderr
    lines = [l for l in proc.stderr.splitlines() if message in l]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_import_error_inside_the_app_is_a_worker_boot_error_with_its_traceback():
    # gunicorn: an exception while importing the app exits 3 ("Worker failed
    # to boot."); only a missing module/attribute/callable is 4.
    proc = run_failing("--chdir", str(URI_APPS), "broken_import:app")
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" in proc.stderr
    assert "a_module_that_does_not_exist" in proc.stderr


def test_no_app_module_is_a_usage_error():
    proc = run_failing()
    assert proc.returncode != 0
    assert "No application module specified" in proc.stderr


def test_unknown_flag_is_reported():
    proc = run_failing("--no-such-flag", "app:app")
    assert proc.returncode == 2
    assert "--no-such-flag" in proc.stderr


def test_bad_integer_names_the_setting():
    proc = run_failing("--workers", "many", "app:app")
    assert proc.returncode == 2
    assert "workers" in proc.stderr and "many" in proc.stderr


def test_version_and_help():
    out = subprocess.run([server_binary(), "--version"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0 and "cppgunicorn" in out.stdout
    out = subprocess.run([server_binary(), "--help"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0 and "--bind" in out.stdout


def test_python_package_reports_version_and_finds_the_binary():
    # cppgunicorn.__version__ and --version agree, and --version names the
    # Python and libuv it runs with.
    package = subprocess.run(
        [server_python(), "-c",
         "import sys, cppgunicorn; print(cppgunicorn.__version__, cppgunicorn.executable(), "
         "'%d.%d.%d' % sys.version_info[:3])"],
        capture_output=True, text=True, check=True).stdout.split()
    version, executable, python = package
    assert Path(executable).exists()
    line = subprocess.run([server_binary(), "--version"], capture_output=True, text=True,
                          check=True).stdout.strip()
    assert re.fullmatch(r"cppgunicorn \(version (\S+)\) on Python (\S+), libuv (\d+\.\d+\.\d+), OpenSSL .+",
                        line), line
    assert line.startswith(f"cppgunicorn (version {version}) on Python ")
    assert f"on Python {python}," in line
