"""examples/embed_cpp: a C++ program built against the installed library.

The library is installed from a build tree that already compiled it (the
one `pip install .` keeps under build/, or the sanitizer build's when
$CPPGUNICORN_BIN points there), into a temporary prefix with
`cmake --install --component cppgunicorn_library`; nothing of the server is
compiled again. The example is then built twice against that prefix, with
CMake's find_package(cppgunicorn) and with pkg-config, and each program is
run and driven over HTTP: its own thread counts primes while the Flask app
is served from the same process, and it stops the server itself (on the
app's shutdown request, or after its --seconds).
"""
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "embed_cpp"
VENV_BIN = Path(sys.executable).parent


def tool(name):
    """A build tool from the test's virtualenv (cmake, ninja), else PATH."""
    local = VENV_BIN / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed")
    return found


def library_build_tree():
    """The build tree whose compiled library is installed."""
    explicit = os.environ.get("CPPGUNICORN_BIN")
    if explicit:
        tree = Path(explicit).resolve().parent
        if (tree / "CMakeCache.txt").exists():
            return tree
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    trees = sorted(ROOT.glob(f"build/{tag}-{tag}-*/CMakeCache.txt"),
                   key=lambda p: p.stat().st_mtime, reverse=True)
    if not trees:
        pytest.fail("no build tree under build/: run `pip install .` (./dev.sh setup) first")
    return trees[0].parent


def run(cmd, **kwargs):
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kwargs)
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    prefix = tmp_path_factory.mktemp("prefix")
    run([tool("cmake"), "--install", str(library_build_tree()),
         "--component", "cppgunicorn_library", "--prefix", str(prefix)])
    for path in ["include/cppgunicorn/server.h", "include/cppgunicorn/config.h",
                 "lib/libcppgunicorn.a", "lib/cmake/cppgunicorn/cppgunicornConfig.cmake",
                 "lib/pkgconfig/cppgunicorn.pc",
                 "share/cppgunicorn/python/cppgunicorn/_app_loader.py"]:
        assert (prefix / path).exists(), path
    return prefix


@pytest.fixture(scope="module")
def built_with_cmake(prefix, tmp_path_factory):
    build = tmp_path_factory.mktemp("embed_cpp_cmake")
    env = dict(os.environ, PATH=f"{VENV_BIN}:{os.environ.get('PATH', '')}")
    run([tool("cmake"), "-S", str(EXAMPLE), "-B", str(build), "-G", "Ninja",
         f"-DCMAKE_MAKE_PROGRAM={tool('ninja')}", f"-DCMAKE_PREFIX_PATH={prefix}"], env=env)
    run([tool("cmake"), "--build", str(build)], env=env)
    return build / "embed_cpp"


@pytest.fixture(scope="module")
def built_with_pkg_config(prefix, tmp_path_factory):
    out = tmp_path_factory.mktemp("embed_cpp_pc") / "embed_cpp"
    env = dict(os.environ, PKG_CONFIG_PATH=str(prefix / "lib" / "pkgconfig"))
    pc = [tool("pkg-config")]
    flags = run(pc + ["--cflags", "--libs", "cppgunicorn"], env=env).stdout.split()
    package_dir = run(pc + ["--variable=pythonpackagedir", "cppgunicorn"], env=env).stdout.strip()
    python = run(pc + ["--variable=python", "cppgunicorn"], env=env).stdout.strip()
    run([os.environ.get("CXX", "g++"), "-o", str(out), str(EXAMPLE / "main.cpp"),
         f'-DEMBED_CPP_SOURCE_DIR="{EXAMPLE}"',
         f'-DCPPGUNICORN_PYTHON_PACKAGE_DIR="{package_dir}"',
         f'-DCPPGUNICORN_PYTHON_EXECUTABLE="{python}"', *flags])
    return out


class Host:
    """The example program, running, with the address it printed."""

    def __init__(self, binary, *args):
        self.proc = subprocess.Popen([str(binary), "--bind", "127.0.0.1:0", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        match = re.match(r"serving on (http://127\.0\.0\.1:\d+)$", line.strip())
        if match is None:
            self.proc.kill()
            out, err = self.proc.communicate()
            pytest.fail(f"the example did not start: {line}{out}\n{err}")
        self.url = match.group(1)

    def finish(self, timeout=30):
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


def drive(binary):
    host = Host(binary, "--seconds", "60")
    try:
        first = requests.get(f"{host.url}/host/primes", timeout=10).json()
        assert first["count"] > 0 and first["largest"] >= 2
        # The Flask app, templates and JSON, served beside the host's own work.
        index = requests.get(f"{host.url}/", timeout=10)
        assert index.status_code == 200 and "teapot" in index.text
        echo = requests.post(f"{host.url}/api/echo", json={"b": 1, "a": 2}, timeout=10).json()
        assert echo["keys"] == ["a", "b"]
        time.sleep(0.3)
        later = requests.get(f"{host.url}/host/primes", timeout=10).json()
        assert later["count"] > first["count"], "the host's thread stopped counting"
        # The app asks, the program calls stop() itself and exits 0.
        assert requests.post(f"{host.url}/host/shutdown", timeout=10).json() == {"stopping": True}
        status, out, err = host.finish()
        assert status == 0, err
        assert "stopped with status 0" in out
        assert '"POST /host/shutdown HTTP/1.1" 200' in out  # the access log, on stdout
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{host.url}/", timeout=2)
    finally:
        host.kill()


def test_built_with_cmake_find_package_serves_and_stops_itself(built_with_cmake):
    drive(built_with_cmake)


def test_built_with_pkg_config_serves_and_stops_itself(built_with_pkg_config):
    drive(built_with_pkg_config)


def test_stops_after_its_own_timer(built_with_cmake):
    host = Host(built_with_cmake, "--seconds", "1")
    try:
        assert requests.get(f"{host.url}/api/items", timeout=10).json()["count"] == 3
        status, out, err = host.finish(timeout=20)
        assert status == 0, err
        assert "stopped with status 0" in out
    finally:
        host.kill()
