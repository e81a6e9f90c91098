#!/usr/bin/env bash
# nginx `uwsgi_pass` in front of cppgunicorn --protocol uwsgi and in front of
# gunicorn --protocol uwsgi, one worker each, the raw hello app
# (benchmarks/apps.py:raw), wrk -t1 -c16 for 10 s, alternating, two rounds.
# Needs the dev venv (./dev.sh setup: gunicorn is in it), nginx and wrk.
#   benchmarks/uwsgi_behind_nginx.sh [VENV]
set -euo pipefail
cd "$(dirname "$0")"
VENV=${1:-../.venv}
BIN=$(cd "$VENV/bin" && pwd)
D=$(mktemp -d /tmp/uwsgi-bench.XXXX)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$D"' EXIT
free_port() { "$BIN/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

nginx_in_front() {  # name port upstream_port
  mkdir -p "$D/$1"
  cat > "$D/$1/nginx.conf" <<CONF
daemon off; master_process off; worker_processes 1; pid $D/$1/pid; error_log $D/$1/err.log;
events { worker_connections 1024; }
http { access_log off; uwsgi_temp_path $D/$1/u; client_body_temp_path $D/$1/c;
  proxy_temp_path $D/$1/p; fastcgi_temp_path $D/$1/f; scgi_temp_path $D/$1/s;
  server { listen 127.0.0.1:$2; location / { include /etc/nginx/uwsgi_params; uwsgi_pass 127.0.0.1:$3; } } }
CONF
  /usr/sbin/nginx -p "$D/$1" -c "$D/$1/nginx.conf" -e "$D/$1/err.log" &
}

OURS_UP=$(free_port); GUN_UP=$(free_port); OURS=$(free_port); GUN=$(free_port)
"$BIN/cppgunicorn" --protocol uwsgi -w 1 -b "127.0.0.1:$OURS_UP" apps:raw >"$D/ours.log" 2>&1 &
"$BIN/gunicorn" --no-control-socket --protocol uwsgi -w 1 -b "127.0.0.1:$GUN_UP" apps:raw >"$D/gunicorn.log" 2>&1 &
nginx_in_front ours "$OURS" "$OURS_UP"
nginx_in_front gunicorn "$GUN" "$GUN_UP"
sleep 3
for port in "$OURS" "$GUN"; do curl -sf "http://127.0.0.1:$port/" >/dev/null; done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in 1 2; do
  for name in ours gunicorn; do
    port=$([ "$name" = ours ] && echo "$OURS" || echo "$GUN")
    echo "== $name, round $round"
    wrk -t1 -c16 -d10s "http://127.0.0.1:$port/" | grep -E "Requests/sec|Latency|Non-2xx|errors"
  done
done
