#!/usr/bin/env bash
# Installs a repaired wheel the way a python:3.x-slim image would have it,
# and serves with it. In a private mount namespace where libuv, the C/C++
# headers, the compilers and libstdc++ are hidden, PYTHON installs WHEEL and
# Flask, serves examples/flask_app, and the integration suite's smoke tests
# run against the installed `cppgunicorn`.
#   packaging/slim_check.sh [--docker] [--no-libpython] PYTHON WHEEL
#   (default)       into a fresh venv of PYTHON
#   --docker        the official image's layout: PYTHON's prefix appears as
#                   /usr/local (a writable overlay; libpython3.X.so in
#                   /usr/local/lib, found as the image's ldconfig finds it)
#                   and the wheel goes into its site-packages, as the runtime
#                   stage of examples/docker/Dockerfile does: that stage
#                   replayed without Docker
#   --no-libpython  the system's shared libpython is hidden too (Debian's
#                   python3 links its own in)
# Needs root or unprivileged user namespaces; the test runner is the
# project's venv.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TOOLS=${CPPGUNICORN_VENV:-$ROOT/.venv}

if [ "${1:-}" != "--inside" ]; then
  layout=venv hide_libpython=0
  while [ $# -gt 2 ]; do
    case "$1" in
      --docker) layout=docker ;;
      --no-libpython) hide_libpython=1 ;;
      *) sed -n '2,20p' "$0"; exit 2 ;;
    esac
    shift
  done
  [ $# -eq 2 ] || { sed -n '2,20p' "$0"; exit 2; }
  user_ns=()
  [ "$(id -u)" = 0 ] || user_ns=(--map-root-user)
  exec unshare "${user_ns[@]}" --mount --propagation private -- \
    "$0" --inside "$layout" "$hide_libpython" "$(readlink -f "$1")" "$(readlink -f "$2")"
fi
layout=$2
hide_libpython=$3
PYTHON=$4
WHEEL=$5
MULTIARCH=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
LIBDIR=/usr/lib/$MULTIARCH

# --- What a slim image does not have. ---------------------------------------
hide() {  # an empty file or directory in place of each path that exists
  local p real
  for p in "$@"; do
    [ -e "$p" ] || continue
    real=$(readlink -f "$p")
    if [ -d "$real" ]; then
      mount -t tmpfs -o ro,size=1k hidden "$real"
    else
      mount --bind /dev/null "$real"
    fi
  done
}
compilers=()
for c in cc c++ gcc g++ clang clang++ "$MULTIARCH-gcc-12" "$MULTIARCH-g++-12" pkg-config; do
  found=$(command -v "$c" 2>/dev/null || true)
  [ -n "$found" ] && compilers+=("$found")
done
hide "${compilers[@]}" /usr/include /usr/lib/gcc /usr/lib/llvm-14 \
  "$LIBDIR"/libuv.so.1 "$LIBDIR"/libuv_a.a "$LIBDIR"/libstdc++.so.6
if [ "$hide_libpython" = 1 ]; then
  hide "$LIBDIR"/libpython3*.so.1.0
fi

# Make sure they are gone, so that a pass means what it says.
if "$TOOLS/bin/python" -c 'import ctypes, sys; ctypes.CDLL("libuv.so.1")' 2>/dev/null; then
  echo "slim check: libuv.so.1 still loads" >&2; exit 1
fi
if "$TOOLS/bin/python" -c 'import ctypes; ctypes.CDLL("libstdc++.so.6")' 2>/dev/null; then
  echo "slim check: libstdc++.so.6 still loads" >&2; exit 1
fi
if echo 'int main(){}' | g++ -x c++ - -o /dev/null 2>/dev/null; then
  echo "slim check: a compiler still works" >&2; exit 1
fi
work=$(mktemp -d /tmp/cppgunicorn-slim-XXXXXX)
trap 'rm -rf "$work"' EXIT
version=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ "$layout" = docker ]; then
  # python:3.X-slim: the interpreter in /usr/local, libpython beside it in
  # /usr/local/lib, pip installing into its own site-packages.
  prefix=$("$PYTHON" -c 'import sys; print(sys.base_prefix)')
  mkdir -p "$work/upper" "$work/overlay-work"
  mount -t overlay overlay -o "lowerdir=$prefix,upperdir=$work/upper,workdir=$work/overlay-work" /usr/local
  # Nothing is left of the original prefix: libpython is found in /usr/local/lib only.
  mount -t tmpfs -o ro,size=1k hidden "$prefix"
  export LD_LIBRARY_PATH=/usr/local/lib
  python=/usr/local/bin/python$version
  bin=/usr/local/bin
else
  "$PYTHON" -m venv "$work/venv"
  python=$work/venv/bin/python
  bin=$work/venv/bin
fi
echo "== slim check: Python $("$python" -c 'import sys; print(sys.version.split()[0])') ($layout layout of $PYTHON), $(basename "$WHEEL")"
echo "   hidden: libuv, libstdc++, headers, compilers$([ "$hide_libpython" = 1 ] && echo ", the system libpython")"

# --- The runtime stage: install the wheel. ----------------------------------
start=$EPOCHREALTIME
"$python" -m pip install -q --disable-pip-version-check --root-user-action=ignore "$WHEEL"
echo "   wheel installed in $(awk "BEGIN { printf \"%.1f\", $EPOCHREALTIME - $start }") s"
"$python" -m pip install -q --disable-pip-version-check --root-user-action=ignore flask
"$bin/cppgunicorn" --version

# Serves the example app with the image's CMD (on loopback), from its WORKDIR.
port=$("$TOOLS/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$ROOT/examples/flask_app" && exec "$bin/cppgunicorn" --bind "127.0.0.1:$port" app:app) \
  >"$work/serve.log" 2>&1 &
server=$!
"$TOOLS/bin/python" - "$port" <<'PY'
import sys, time, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/"
deadline = time.monotonic() + 20
while True:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            body = r.read()
            assert r.status == 200, r.status
            break
    except OSError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.1)
print(f"   examples/flask_app: GET / -> 200, {len(body)} bytes")
PY
kill -TERM "$server"
wait "$server" || { cat "$work/serve.log"; echo "slim check: the server did not stop cleanly" >&2; exit 1; }

# The smoke subset of the integration suite, against this binary.
CPPGUNICORN_BIN="$bin/cppgunicorn" "$TOOLS/bin/python" -m pytest "$ROOT/integration" \
  -q -p no:cacheprovider -m smoke
