#!/usr/bin/env bash
# Set-up and the two everyday commands, on a fresh machine or an old one:
#   ./dev.sh serve   install what is missing, then serve examples/flask_app
#                    on 127.0.0.1:8000
#   ./dev.sh test    install what is missing, then run every test: doctest
#                    and pytest units (tests/python: the package's Python)
#                    and the pytest integration suite against the
#                    installed binary, then both again against an
#                    AddressSanitizer/UBSan build
#   ./dev.sh wheels [3.X ...]
#                    install what is missing, then build a repaired manylinux
#                    wheel for every CPython 3.9-3.13 found (or those named)
#                    into dist/ (packaging/wheels.sh)
#   ./dev.sh setup   only install
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
VENV=${CPPGUNICORN_VENV:-$ROOT/.venv}
PYTHON=${PYTHON:-python3}
# Paths under the checkout hash the same in any clone, so ccache hits across them.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$ROOT}

APT_PACKAGES=(g++ pkg-config ccache libuv1-dev libtomlplusplus-dev doctest-dev libssl-dev
  openssl curl  # the TLS tests: a test CA, s_client and curl as clients
  strace iproute2  # the integration tests: which system call sent a file, a socket's backlog (ss)
  clang libclang-rt-14-dev node-llhttp  # the request-parser fuzzer: clang + libFuzzer, llhttp as its oracle
  nginx-light  # real nginx in front of the server: proxy_pass and uwsgi_pass
  python3-venv)  # the wheel check: a venv of Debian's own python3

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

install_system_packages() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

install_python_env() {
  if [ ! -x "$VENV/bin/python" ]; then
    echo "== creating virtualenv $VENV"
    "$PYTHON" -m venv "$VENV"
  fi
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
  # Build requirements live in the venv and the build tree persists in
  # build/, so a rebuild only compiles what changed.
  "$VENV/bin/python" -m pip install -q -r "$ROOT/requirements-dev.txt"
  echo "== building and installing cppgunicorn into $VENV"
  CPPGUNICORN_BUILD_TESTS=${CPPGUNICORN_BUILD_TESTS:-ON} \
    "$VENV/bin/python" -m pip install -q --no-build-isolation "$ROOT"
}

setup() {
  install_system_packages
  install_python_env
}

build_sanitized() {
  echo "== building the AddressSanitizer/UBSan variant in build/asan"
  local pybind11_dir
  pybind11_dir=$("$VENV/bin/python" -c 'import pybind11; print(pybind11.get_cmake_dir())')
  PATH="$VENV/bin:$PATH" cmake -S "$ROOT" -B "$ROOT/build/asan" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
    -DCPPGUNICORN_SANITIZE=ON -DCPPGUNICORN_BUILD_TESTS=ON -DCPPGUNICORN_BUILD_MODULE=ON \
    -DPython_EXECUTABLE="$VENV/bin/python" -Dpybind11_DIR="$pybind11_dir" >/dev/null
  PATH="$VENV/bin:$PATH" cmake --build "$ROOT/build/asan" >/dev/null
}

# Bounded libFuzzer runs over the request parsers (tests/fuzz): the HTTP/1.x
# parser for three quarters of the time, the uwsgi packet reader for a third
# (65 s in all by default). New inputs go to build/fuzz/corpus and
# build/fuzz/uwsgi_corpus, the committed seeds stay as they are.
# CPPGUNICORN_FUZZ_SECONDS sets the length (0 skips it).
run_fuzzer() {
  local secs=${CPPGUNICORN_FUZZ_SECONDS:-60}
  [ "$secs" = 0 ] && return 0
  PATH="$VENV/bin:$PATH" cmake -S "$ROOT/tests/fuzz" -B "$ROOT/build/fuzz" -G Ninja \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ >/dev/null
  PATH="$VENV/bin:$PATH" cmake --build "$ROOT/build/fuzz" >/dev/null
  fuzz_one "the request parser" http_parser_fuzzer corpus corpus $(( secs * 3 / 4 ))
  fuzz_one "the uwsgi packet reader" uwsgi_parser_fuzzer uwsgi_corpus uwsgi_corpus \
    $(( secs / 3 > 0 ? secs / 3 : 1 ))
}

# fuzz_one WHAT BINARY NEW_CORPUS SEEDS SECONDS
fuzz_one() {
  local what=$1 binary=$2 corpus=$3 seeds=$4 secs=$5
  echo "== fuzzing $what (libFuzzer, ${secs} s)"
  mkdir -p "$ROOT/build/fuzz/$corpus"
  if ! "$ROOT/build/fuzz/$binary" -max_total_time="$secs" -print_final_stats=1 \
      -artifact_prefix="$ROOT/build/fuzz/" "$ROOT/build/fuzz/$corpus" "$ROOT/tests/fuzz/$seeds" \
      >"$ROOT/build/fuzz/last-run.log" 2>&1; then
    tail -n 60 "$ROOT/build/fuzz/last-run.log"
    echo "the fuzzer found a failing input: see build/fuzz/crash-* and build/fuzz/last-run.log" >&2
    exit 1
  fi
  grep -E "^Done|average_exec_per_sec" "$ROOT/build/fuzz/last-run.log"
}

# The installed product as a slim image has it (packaging/slim_check.sh):
# wheels for the venv's Python and for 3.13, each installed where libuv,
# headers, compilers and libstdc++ are hidden, serving the example app and
# passing the smoke tests. The venv's version goes into a fresh venv; 3.13
# into the layout of the official Docker image; Debian's own python3, which
# links libpython in, takes the wheel of its version with the shared
# libpython hidden. CPPGUNICORN_SKIP_WHEELS=1 skips it.
check_wheels() {
  [ "${CPPGUNICORN_SKIP_WHEELS:-0}" = 1 ] && return 0
  local default
  default=$(python_version "$VENV/bin/python")
  echo "== wheels for CPython $default and 3.13 (packaging/wheels.sh)"
  CPPGUNICORN_VENV="$VENV" "$ROOT/packaging/wheels.sh" "$default" 3.13
  local python wheel
  while read -r python wheel; do
    if [ "$(python_version "$python")" = "$default" ]; then
      CPPGUNICORN_VENV="$VENV" "$ROOT/packaging/slim_check.sh" "$python" "$wheel"
      if [ -x /usr/bin/python3 ] && [ "$(python_version /usr/bin/python3)" = "$default" ]; then
        CPPGUNICORN_VENV="$VENV" "$ROOT/packaging/slim_check.sh" --no-libpython /usr/bin/python3 "$wheel"
      fi
    else
      CPPGUNICORN_VENV="$VENV" "$ROOT/packaging/slim_check.sh" --docker "$python" "$wheel"
    fi
  done < "$ROOT/dist/built.txt"
}

python_version() {
  "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])'
}

# The suites whose requests carry bodies, run a second time with bodies
# streamed to the app (tests that are about buffering choose it themselves).
STREAMED_BODY_TESTS=(test_http_bodies.py test_spool_and_sendfile.py test_threads.py)

# cppgunicorn.serve() runs the server inside the test's own Python, so the
# sanitized server there is build/asan's extension module: a package
# directory of the source tree's modules and that .so goes first on the
# path, and the sanitizer runtime is preloaded into Python (which is not
# instrumented itself; its own allocations at exit are not ours to report).
# Not part of `test` yet: under it the test process stops after the tenth
# in-process test without a report; until that is understood the in-process
# tests run in the two passes above (the sanitized binary's pass loads the
# uninstrumented module).
run_inprocess_sanitized() {
  local pkg="$ROOT/build/asan/python"
  rm -rf "$pkg" && mkdir -p "$pkg/cppgunicorn"
  ln -s "$ROOT"/python/cppgunicorn/*.py "$pkg/cppgunicorn/"
  ln -s "$ROOT"/build/asan/_server*.so "$pkg/cppgunicorn/"
  LD_PRELOAD="$(g++ -print-file-name=libasan.so)" PYTHONPATH="$pkg" \
    ASAN_OPTIONS=detect_leaks=0 "$VENV/bin/python" -m pytest -q "$@" \
    integration/test_serve_inprocess.py
}

run_tests() {
  local unit
  unit=$(ls -t "$ROOT"/build/cp*/cppgunicorn_unit_tests 2>/dev/null | head -n 1 || true)
  if [ -z "$unit" ]; then
    echo "unit test binary not found under build/" >&2
    exit 1
  fi
  cd "$ROOT"
  echo "== unit tests (doctest)"
  "$unit"
  echo "== unit tests (pytest, the package's Python: tests/python)"
  "$VENV/bin/python" -m pytest tests/python -q
  run_fuzzer
  echo "== integration tests (pytest, installed binary)"
  "$VENV/bin/python" -m pytest integration -q "$@"
  echo "== request-body tests again, bodies streamed (--no-request-buffering)"
  CPPGUNICORN_TEST_REQUEST_BUFFERING=off "$VENV/bin/python" -m pytest -q "$@" \
    "${STREAMED_BODY_TESTS[@]/#/integration/}"
  check_wheels
  if [ "${CPPGUNICORN_SKIP_SANITIZERS:-0}" != 1 ]; then
    build_sanitized
    # Python's own allocations at exit are not ours to report.
    export ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    echo "== unit tests (doctest, sanitizers)"
    "$ROOT/build/asan/cppgunicorn_unit_tests"
    echo "== integration tests (pytest, sanitizers)"
    CPPGUNICORN_BIN="$ROOT/build/asan/cppgunicorn" "$VENV/bin/python" -m pytest integration -q "$@"
  fi
}

case "${1:-}" in
  setup) setup ;;
  serve)
    setup
    # The example's static/ folder is served from C++ (--static-map), not
    # through Flask: docs/static-files.md.
    exec "$VENV/bin/cppgunicorn" --bind 127.0.0.1:8000 --chdir "$ROOT/examples/flask_app" \
      --static-map /static=static --access-logfile - app:app
    ;;
  test)
    shift
    setup
    run_tests "$@"
    ;;
  wheels)
    shift
    setup
    CPPGUNICORN_VENV="$VENV" exec "$ROOT/packaging/wheels.sh" "$@"
    ;;
  *)
    sed -n '2,13p' "$0"
    exit 2
    ;;
esac
