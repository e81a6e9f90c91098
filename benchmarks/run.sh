#!/usr/bin/env bash
# One command for the side-by-side benchmark: sets up benchmarks/.venv when it
# is missing (or rebuilds cppgunicorn when the repo's sources changed since it
# was built), then runs benchmarks/run.py with the given options.
#   benchmarks/run.sh [--quick] [--seconds S] [--repeat R] [--only a,b] [--workloads x,y]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
if [ ! -f "$HERE/.venv/.setup-stamp" ]; then
  bash "$HERE/setup.sh"
elif [ "$(bash "$HERE/setup.sh" --stamp)" != "$(cat "$HERE/.venv/.cppgunicorn-stamp" 2>/dev/null)" ]; then
  bash "$HERE/setup.sh" --cppgunicorn || echo "!! cppgunicorn rebuild failed; it will be reported as not built"
fi
export BENCH_COMMAND="benchmarks/run.sh${*:+ $*}"
exec "$HERE/.venv/bin/python" "$HERE/run.py" "$@"
