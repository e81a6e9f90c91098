#!/usr/bin/env bash
# Set-up and the two everyday commands, on a fresh machine or an old one:
#   ./dev.sh serve   install what is missing, then serve examples/flask_app
#                    on 127.0.0.1:8000
#   ./dev.sh test    install what is missing, then run every test
#                    (doctest units, then the pytest integration suite)
#   ./dev.sh setup   only install
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
VENV=${CPPGUNICORN_VENV:-$ROOT/.venv}
PYTHON=${PYTHON:-python3}

APT_PACKAGES=(g++ pkg-config ccache libuv1-dev libtomlplusplus-dev doctest-dev node-llhttp)

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

run_tests() {
  local unit
  unit=$(ls -t "$ROOT"/build/*/cppgunicorn_unit_tests 2>/dev/null | head -n 1 || true)
  if [ -z "$unit" ]; then
    echo "unit test binary not found under build/" >&2
    exit 1
  fi
  echo "== unit tests (doctest)"
  "$unit"
  echo "== integration tests (pytest)"
  cd "$ROOT"
  "$VENV/bin/python" -m pytest integration -q "$@"
}

case "${1:-}" in
  setup) setup ;;
  serve)
    setup
    exec "$VENV/bin/cppgunicorn" --bind 127.0.0.1:8000 --chdir "$ROOT/examples/flask_app" \
      --access-logfile - app:app
    ;;
  test)
    shift
    setup
    run_tests "$@"
    ;;
  *)
    sed -n '2,8p' "$0"
    exit 2
    ;;
esac
