#!/usr/bin/env bash
# Creates benchmarks/.venv: the peers (one pip install each, failures recorded,
# never fatal), matplotlib and requests, and cppgunicorn built from this repo.
#
#   benchmarks/setup.sh                 full set-up (idempotent, re-run at will)
#   benchmarks/setup.sh --cppgunicorn   only rebuild/reinstall cppgunicorn
#
# Writes benchmarks/.venv/peer-status.json ({"name": {"ok": bool, "version":
# ..., "error": "last lines of pip's output"}}), which run.py reports, and
# benchmarks/.venv/.setup-stamp once done.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
VENV=${BENCH_VENV:-$HERE/.venv}
PYTHON=${PYTHON:-python3}
LOG_DIR=$VENV/setup-logs
STATUS=$VENV/peer-status.json

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

need_apt() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing Debian packages: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null ||
      { as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; } ||
      echo "!! could not install ${missing[*]} (peers that need them will fail to build)"
  fi
}

record() { # name ok(0/1) logfile
  "$VENV/bin/python" - "$STATUS" "$1" "$2" "$3" <<'PY'
import json, os, sys
from importlib import metadata
path, name, ok, log = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4]
st = json.load(open(path)) if os.path.exists(path) else {}
entry = {"ok": ok}
try:
    entry["version"] = metadata.version(name)
except metadata.PackageNotFoundError:
    entry["version"] = None
if not ok:
    lines = [l for l in open(log, errors="replace").read().splitlines() if l.strip()]
    errs = [l for l in lines if "error" in l.lower()]
    entry["error"] = "\n".join((errs[-6:] if errs else []) + lines[-4:])[-1500:]
st[name] = entry
json.dump(st, open(path, "w"), indent=1, sort_keys=True)
PY
}

install_cppgunicorn() {
  echo "== building cppgunicorn from $ROOT into $VENV"
  local log=$LOG_DIR/cppgunicorn.log
  # The build tools live in the venv so the build can run without isolation;
  # a build tree of our own (not the repo's build/) keeps this venv's CMake
  # cache apart from the developers' one.
  "$VENV/bin/python" -m pip install -q scikit-build-core pybind11 cmake ninja >"$log" 2>&1 &&
    CPPGUNICORN_BUILD_TESTS=OFF "$VENV/bin/python" -m pip install --no-build-isolation \
      -C build-dir="$VENV/cppgunicorn-build" "$ROOT" >>"$log" 2>&1
  local rc=$?
  record cppgunicorn $([ $rc = 0 ] && echo 1 || echo 0) "$log"
  if [ $rc = 0 ]; then echo "   ok"; else echo "!! cppgunicorn failed to build, see $log"; fi
  # Stamp: what source the installed binary was built from (run.sh compares).
  source_stamp >"$VENV/.cppgunicorn-stamp"
  return $rc
}

source_stamp() {
  ( cd "$ROOT" && git rev-parse HEAD 2>/dev/null
    git diff HEAD -- src include python CMakeLists.txt pyproject.toml 2>/dev/null | sha1sum ) | tr '\n' ' '
}

if [ "${1:-}" = "--stamp" ]; then source_stamp; exit 0; fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "== creating virtualenv $VENV"
  "$PYTHON" -m venv "$VENV" || exit 1
fi
mkdir -p "$LOG_DIR"

if [ "${1:-}" = "--cppgunicorn" ]; then
  install_cppgunicorn
  exit $?
fi

# bjoern links against libev; the rest build from bundled sources or wheels.
# OpenSSL's headers: cppgunicorn links it, uWSGI builds its --https-socket
# with it, and run.py builds the wrk preload of the TLS cells (wrk_tls.c)
# against it; the openssl command makes the TLS cells' certificate.
need_apt libev-dev gcc wrk libssl-dev openssl
"$VENV/bin/python" -m pip install -q --upgrade pip wheel setuptools >/dev/null 2>&1

grep -v '^\s*#' "$HERE/requirements.txt" | grep -v '^\s*$' | while read -r req; do
  name=${req%%[<>=!; ]*}
  log=$LOG_DIR/$name.log
  printf '== %-12s ' "$name"
  if "$VENV/bin/python" -m pip install "$req" >"$log" 2>&1; then
    record "$name" 1 "$log"; echo ok
  else
    record "$name" 0 "$log"; echo "FAILED (see $log)"
  fi
done

install_cppgunicorn
date -u +%FT%TZ >"$VENV/.setup-stamp"
echo "== peer status: $STATUS"
"$VENV/bin/python" -c "
import json; st = json.load(open('$STATUS'))
for k, v in sorted(st.items()): print(f\"   {k:12} {'ok ' + str(v.get('version')) if v['ok'] else 'FAILED'}\")"
exit 0
