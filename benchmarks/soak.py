#!/usr/bin/env python3
"""Soak: a million mixed requests against cppgunicorn while the master is
sent kill -9 (of a worker), HUP, TTIN, TTOU and USR1; every answer checked.

    .venv/bin/python benchmarks/soak.py --threads 1
    .venv/bin/python benchmarks/soak.py --threads 4 --requests 200000   # shorter

Starts ``cppgunicorn -w 2 --threads T -b 127.0.0.1:PORT --access-logfile F
--error-logfile F soak_app:app`` (``.venv/bin/cppgunicorn`` of this checkout, or
``--binary``) in its own process group, then client processes (``--clients``,
blocking sockets, our own HTTP/1.1 code) send ``--requests`` requests in all:
a mix of /hello, /json, /stream (chunked generator), /upload (POST, with
Content-Length or chunked) and /error (the app raises, 500 expected), over
keep-alive connections of 1 to 200 requests and one-request
``Connection: close`` connections. Every status and body is checked against
what soak_app.py computes for that request id.

At fixed request counts (--events) the master is sent: kill -9 of its oldest
worker, HUP, TTIN, TTOU, and USR1 (after renaming both log files, as
logrotate would). Every 100,000 requests VmRSS of each worker (the master's
children) is read from /proc. At the end the master gets TERM and its exit
status is reported.

Lost requests: a request that got no answer (refused, reset, EOF, timeout
after --timeout s) or a wrong one (status, body, framing, a pid that changed
on a keep-alive connection). Excused, and counted apart, are those in flight
on the worker killed with -9: on a connection that worker had answered
before (its X-Pid), or, on a new connection that had no answer yet, sent
before the kill and failed after it. A request on a reused keep-alive
connection that the server closed before sending a byte of the answer is
retried once on a new connection, as HTTP clients do; such requests are
counted (and reported with the event they fall next to) but are lost only
if the retry fails too.

Bounded: --requests and --max-seconds. Talks to 127.0.0.1 only. Every
process it starts is stopped at the end, also on error or Ctrl-C. Writes a
JSON record (--out) and prints a Markdown summary.
"""
import argparse
import collections
import json
import multiprocessing as mp
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import soak_app  # noqa: E402

HOST = "127.0.0.1"

# endpoint: weight in the mix
MIX = [("hello", 35), ("json", 20), ("stream", 15), ("upload", 20), ("error", 10)]
# upload size: weight
UPLOAD_SIZES = [(0, 5), (17, 20), (1000, 30), (8192, 25), (65536, 14), (300000, 5), (1200000, 1)]
CLOSE_CONN_SHARE = 0.25      # share of connections that carry one request with Connection: close
KEEPALIVE_MAX = 200           # a keep-alive connection carries 1..KEEPALIVE_MAX requests

DEFAULT_EVENTS = "kill9@130000,hup@230000,ttin@330000,ttou@370000,usr1@460000"


# ---------------------------------------------------------------- client side

class Failed(Exception):
    def __init__(self, kind, got_bytes, detail=""):
        super().__init__(kind)
        self.kind = kind
        self.got_bytes = got_bytes
        self.detail = detail


class Wrong(Exception):
    """An answer came, but not the right one."""


def read_response(sock, buf):
    """Reads one response from sock (buf: bytes already read past the last
    one). Returns (status, headers dict lowercased, body, got_bytes) and
    leaves in buf what follows the response."""
    got = len(buf)
    try:
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            data = sock.recv(65536)
            if not data:
                raise Failed("eof", got)
            got += len(data)
            buf += data
        head = bytes(buf[:end]).decode("latin-1").split("\r\n")
        del buf[:end + 4]
        parts = head[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise Wrong("bad status line %r" % head[0][:80])
        status = int(parts[1])
        headers = {}
        for line in head[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        te = headers.get("transfer-encoding", "").lower()
        if te == "chunked":
            body = bytearray()
            while True:
                while True:
                    nl = buf.find(b"\r\n")
                    if nl >= 0:
                        break
                    data = sock.recv(65536)
                    if not data:
                        raise Failed("eof-mid-body", got)
                    got += len(data)
                    buf += data
                size = int(bytes(buf[:nl]).split(b";")[0], 16)
                del buf[:nl + 2]
                while len(buf) < size + 2:
                    data = sock.recv(65536)
                    if not data:
                        raise Failed("eof-mid-body", got)
                    got += len(data)
                    buf += data
                if size == 0:
                    # no trailers expected: the chunk of size 0 ends with CRLF
                    if bytes(buf[:2]) != b"\r\n":
                        raise Wrong("trailers or bad last chunk")
                    del buf[:2]
                    break
                body += buf[:size]
                if bytes(buf[size:size + 2]) != b"\r\n":
                    raise Wrong("chunk not followed by CRLF")
                del buf[:size + 2]
            body = bytes(body)
        elif "content-length" in headers:
            n = int(headers["content-length"])
            while len(buf) < n:
                data = sock.recv(max(65536, n - len(buf)))
                if not data:
                    raise Failed("eof-mid-body", got)
                got += len(data)
                buf += data
            body = bytes(buf[:n])
            del buf[:n]
        else:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                got += len(data)
                buf += data
            body = bytes(buf)
            del buf[:]
        return status, headers, body, got
    except (ConnectionResetError, BrokenPipeError) as e:
        raise Failed("reset", got, type(e).__name__)
    except socket.timeout:
        raise Failed("timeout", got)


def weighted(rng, table):
    total = sum(w for _, w in table)
    x = rng.random() * total
    for v, w in table:
        x -= w
        if x < 0:
            return v
    return table[-1][0]


def build_request(rng, endpoint, rid, close, pool):
    """(request bytes, expected status, expected body or None for /error)."""
    conn = b"Connection: close\r\n" if close else b""
    if endpoint == "upload":
        size = weighted(rng, UPLOAD_SIZES)
        off = rid % 4096
        body = pool[off:off + size]
        expected = soak_app.upload_answer(body)
        if rng.random() < 0.25:
            pieces = []
            for i in range(0, len(body), 16384):
                piece = body[i:i + 16384]
                pieces.append(b"%x\r\n" % len(piece) + piece + b"\r\n")
            pieces.append(b"0\r\n\r\n")
            req = (b"POST /upload?id=%d HTTP/1.1\r\nHost: 127.0.0.1\r\n%sContent-Type: application/octet-stream\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n" % (rid, conn)) + b"".join(pieces)
        else:
            req = (b"POST /upload?id=%d HTTP/1.1\r\nHost: 127.0.0.1\r\n%sContent-Type: application/octet-stream\r\n"
                   b"Content-Length: %d\r\n\r\n" % (rid, conn, len(body))) + body
        return req, 200, expected
    req = b"GET /%s?id=%d HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n" % (endpoint.encode(), rid, conn)
    if endpoint == "hello":
        return req, 200, soak_app.hello_body(rid)
    if endpoint == "json":
        return req, 200, soak_app.json_body(rid)
    if endpoint == "stream":
        return req, 200, b"".join(soak_app.stream_chunks(rid))
    return req, 500, None


def client_main(idx, quota, seed, port, timeout, deadline, counts, stop, out_q):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    rng = random.Random(seed)
    pool = random.Random(seed + 1).randbytes(4096 + 1_300_000)
    failures = []          # first-attempt failures and wrong answers
    server_closes = []     # 200 answers with Connection: close we did not ask for
    per_sec = collections.Counter()
    stats = collections.Counter()
    rid = (idx + 1) * 100_000_000
    done = 0
    sock = None
    buf = bytearray()
    conn_pid = None
    conn_reqs = 0
    conn_left = 0
    conn_close = False

    def open_conn():
        nonlocal sock, buf, conn_pid, conn_reqs, conn_left, conn_close
        sock = None
        s = socket.create_connection((HOST, port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock = s
        buf = bytearray()
        conn_pid = None
        conn_reqs = 0
        conn_close = rng.random() < CLOSE_CONN_SHARE
        conn_left = 1 if conn_close else rng.randint(1, KEEPALIVE_MAX)
        stats["connections"] += 1

    def drop_conn():
        nonlocal sock
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass
        sock = None

    def one_attempt(req, endpoint):
        """Sends req on the current connection and reads the answer."""
        try:
            sock.sendall(req)
        except (ConnectionResetError, BrokenPipeError) as e:
            raise Failed("reset-on-send", 0, type(e).__name__)
        except socket.timeout:
            raise Failed("timeout", 0)
        return read_response(sock, buf)

    while done < quota and not stop.is_set() and time.time() < deadline:
        endpoint = weighted(rng, MIX)
        rid += 1
        t_send = time.time()
        record = None
        try:
            if sock is None:
                try:
                    open_conn()
                except OSError as e:
                    raise Failed("connect", 0, type(e).__name__)
            close = conn_close or conn_left <= 1
            req, want_status, want_body = build_request(rng, endpoint, rid, close, pool)
            reused = conn_reqs > 0
            pid_before = conn_pid
            try:
                status, headers, body, _ = one_attempt(req, endpoint)
            except Failed as f:
                if not (reused and f.got_bytes == 0):
                    raise
                # The server closed a reused keep-alive connection before any
                # byte of this answer: note it, retry once on a new connection.
                record = {"client": idx, "rid": rid, "endpoint": endpoint, "t_send": t_send,
                          "t_fail": time.time(), "pid": pid_before, "reused": True, "kind": f.kind,
                          "detail": f.detail, "got_bytes": 0, "retried": True}
                drop_conn()
                stats["retries"] += 1
                t_send2 = time.time()
                try:
                    open_conn()
                    close = conn_close or close
                    status, headers, body, _ = one_attempt(req, endpoint)
                except (Failed, OSError) as f2:
                    record["retry_ok"] = False
                    record["retry_kind"] = getattr(f2, "kind", type(f2).__name__)
                    record["retry_t_send"] = t_send2
                    record["retry_t_fail"] = time.time()
                    failures.append(record)
                    drop_conn()
                    done += 1
                    counts[idx] = done
                    continue
                record["retry_ok"] = True
                reused = False
                pid_before = None
            pid = headers.get("x-pid")
            if status != want_status:
                raise Wrong("status %d, expected %d" % (status, want_status))
            if want_body is None:
                if b"Internal Server Error" not in body:
                    raise Wrong("500 without the error body: %r" % body[:80])
            elif body != want_body:
                raise Wrong("body of %d bytes differs from the expected %d" % (len(body), len(want_body)))
            if want_status == 200 and not pid:
                raise Wrong("no X-Pid")
            if pid:
                pid = int(pid)
                if pid_before is not None and pid != pid_before:
                    raise Wrong("keep-alive connection moved from worker %d to %d" % (pid_before, pid))
                conn_pid = pid
            if len(buf):
                raise Wrong("%d unexpected bytes after the answer" % len(buf))
            stats["ok"] += 1
            stats["ok_" + endpoint] += 1
            per_sec[int(time.time())] += 1
            if record is not None:
                failures.append(record)
            conn_reqs += 1
            conn_left -= 1
            if close or headers.get("connection", "").lower() == "close":
                if not close:
                    stats["closed_by_server_" + endpoint] += 1
                    if status == 200 and len(server_closes) < 10000:
                        server_closes.append({"t_send": t_send, "endpoint": endpoint, "status": status,
                                              "pid": conn_pid})
                drop_conn()
        except Failed as f:
            failures.append({"client": idx, "rid": rid, "endpoint": endpoint, "t_send": t_send,
                             "t_fail": time.time(), "pid": conn_pid, "reused": conn_reqs > 0,
                             "kind": f.kind, "detail": f.detail, "got_bytes": f.got_bytes, "retried": False})
            drop_conn()
        except (Wrong, ValueError, IndexError) as w:
            failures.append({"client": idx, "rid": rid, "endpoint": endpoint, "t_send": t_send,
                             "t_fail": time.time(), "pid": conn_pid, "reused": conn_reqs > 0,
                             "kind": "wrong", "detail": str(w), "retried": False})
            stats["wrong"] += 1
            drop_conn()
        done += 1
        counts[idx] = done
    drop_conn()
    out_q.put({"client": idx, "done": done, "t_last": time.time(), "failures": failures, "per_sec": dict(per_sec), "stats": dict(stats),
               "server_closes": server_closes})


# ---------------------------------------------------------------- server side

def proc_stat(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()
    return fields  # fields[0] state, [1] ppid, [19] starttime


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            kids = [int(x) for x in f.read().split()]
    except OSError:
        kids = []
        for e in os.listdir("/proc"):
            if e.isdigit():
                st = proc_stat(int(e))
                if st and int(st[1]) == pid:
                    kids.append(int(e))
    return [k for k in kids if (proc_stat(k) or ["Z"])[0] != "Z"]


def vmrss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def oldest_first(pids):
    return sorted(pids, key=lambda p: int((proc_stat(p) or [0] * 20)[19]) * 10_000_000 + p)


def free_port():
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_ready(port, master, limit=60.0):
    deadline = time.time() + limit
    while time.time() < deadline:
        if master.poll() is not None:
            raise RuntimeError("the server exited during start-up with status %s" % master.returncode)
        try:
            s = socket.create_connection((HOST, port), timeout=2)
            s.sendall(b"GET /hello?id=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            status, _, body, _ = read_response(s, bytearray())
            s.close()
            if status == 200 and body == soak_app.hello_body(1):
                return
        except (OSError, Failed, Wrong):
            pass
        time.sleep(0.1)
    raise RuntimeError("the server did not answer within %.0f s" % limit)


def uptime():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def parse_events(text):
    out = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        name, _, at = item.partition("@")
        if name not in ("kill9", "hup", "ttin", "ttou", "usr1"):
            raise SystemExit("unknown event %r" % name)
        out.append((int(at), name))
    return sorted(out)


def count_lines(path):
    n = 0
    statuses = collections.Counter()
    status_re = re.compile(rb'" (\d{3}) ')
    try:
        with open(path, "rb") as f:
            for line in f:
                n += 1
                m = status_re.search(line)
                statuses[m.group(1).decode() if m else "?"] += 1
    except OSError:
        return None, {}
    return n, dict(statuses)


def error_log_summary(paths):
    """Counts of the error log's messages, digits folded, tracebacks apart."""
    kinds = collections.Counter()
    tracebacks = 0
    line_re = re.compile(r"^\[[^\]]*\] \[\d+\] \[(\w+)\] (.*)$")
    for path in paths:
        try:
            f = open(path, errors="replace")
        except OSError:
            continue
        with f:
            for line in f:
                line = line.rstrip("\n")
                if line.startswith("Traceback"):
                    tracebacks += 1
                    continue
                m = line_re.match(line)
                if not m:
                    continue
                msg = re.sub(r"\d+", "N", m.group(2))
                kinds["[%s] %s" % (m.group(1), msg[:160])] += 1
    return tracebacks, dict(kinds.most_common())


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(ROOT, ".venv", "bin", "cppgunicorn"))
    ap.add_argument("--threads", type=int, choices=(1, 4), default=1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--clients", type=int, default=4, help="client processes (default 4)")
    ap.add_argument("--events", default=DEFAULT_EVENTS,
                    help="NAME@COUNT,... with NAME in kill9, hup, ttin, ttou, usr1 (default %(default)s)")
    ap.add_argument("--rss-every", type=int, default=100_000)
    ap.add_argument("--timeout", type=float, default=30.0, help="client socket timeout, s")
    ap.add_argument("--max-seconds", type=float, default=1800.0, help="stop the clients after this long")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", help="JSON record (default benchmarks/results/soak-threadsT.json)")
    ap.add_argument("--keep-logs", help="copy the server's logs into this directory at the end")
    args = ap.parse_args()
    out_path = args.out or os.path.join(HERE, "results", "soak-threads%d.json" % args.threads)
    events = parse_events(args.events)

    tmp = tempfile.mkdtemp(prefix="soak-")
    access = os.path.join(tmp, "access.log")
    errlog = os.path.join(tmp, "error.log")
    port = free_port()
    cmd = [args.binary, "-w", str(args.workers), "--threads", str(args.threads), "-b", "%s:%d" % (HOST, port),
           "--access-logfile", access, "--error-logfile", errlog, "--pythonpath", HERE, "soak_app:app"]
    master = None
    clients = []
    result = {"command": " ".join(cmd), "threads": args.threads, "workers": args.workers,
              "requests": args.requests, "clients": args.clients, "load_start": uptime(),
              "started": time.strftime("%Y-%m-%d %H:%M:%S %z")}
    print("load average at start: %s" % result["load_start"], flush=True)
    print("server: %s" % result["command"], flush=True)

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        out = open(os.path.join(tmp, "master.out"), "wb")
        master = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  start_new_session=True, cwd=tmp)
        wait_ready(port, master)
        ctx = mp.get_context("fork")
        counts = ctx.Array("q", args.clients, lock=False)
        stop = ctx.Event()
        out_q = ctx.Queue()
        t0 = time.time()
        deadline = t0 + args.max_seconds
        for i in range(args.clients):
            quota = args.requests // args.clients + (1 if i < args.requests % args.clients else 0)
            p = ctx.Process(target=client_main, args=(i, quota, args.seed * 1000 + i, port, args.timeout,
                                                      deadline, counts, stop, out_q), daemon=True)
            p.start()
            clients.append(p)

        done_events = []
        pending = list(events)
        rss_rows = []
        marks = {}   # request count (multiples of rss_every) -> time reached
        next_rss = args.rss_every
        watch = []   # (what, pids, t) to follow: replacement after kill, HUP turnover
        results = []
        last_print = 0
        while True:
            total = sum(counts)
            now = time.time()
            while pending and total >= pending[0][0]:
                at, name = pending.pop(0)
                ev = {"event": name, "at_count": total, "planned": at, "t": now,
                      "workers_before": oldest_first(children(master.pid))}
                if name == "kill9":
                    victim = ev["workers_before"][0]
                    ev["pid"] = victim
                    ev["t_before"] = time.time()
                    os.kill(victim, signal.SIGKILL)
                    ev["t_after"] = time.time()
                elif name == "usr1":
                    os.rename(access, access + ".1")
                    os.rename(errlog, errlog + ".1")
                    ev["t_before"] = time.time()
                    os.kill(master.pid, signal.SIGUSR1)
                    ev["t_after"] = time.time()
                else:
                    sig = {"hup": signal.SIGHUP, "ttin": signal.SIGTTIN, "ttou": signal.SIGTTOU}[name]
                    ev["t_before"] = time.time()
                    os.kill(master.pid, sig)
                    ev["t_after"] = time.time()
                done_events.append(ev)
                print("%7d requests, %6.1f s: %s%s" % (total, now - t0, name,
                                                     " of worker %d" % ev["pid"] if "pid" in ev else ""), flush=True)
            # Follow the worker set after each event: when it settles.
            for ev in done_events:
                if "settled_t" in ev:
                    continue
                cur = set(children(master.pid))
                before = set(ev["workers_before"])
                n_before = len(before)
                want = {"kill9": n_before, "hup": n_before, "ttin": n_before + 1, "ttou": n_before - 1,
                        "usr1": n_before}[ev["event"]]
                settled = len(cur) == want
                if ev["event"] == "kill9":
                    settled = settled and ev["pid"] not in cur
                if ev["event"] == "hup":
                    settled = settled and not (cur & before)
                if ev["event"] == "usr1":
                    settled = os.path.exists(access) and os.path.exists(errlog)
                if settled:
                    ev["settled_t"] = time.time()
                    ev["settled_after_s"] = round(ev["settled_t"] - ev["t_before"], 3)
                    ev["workers_after"] = oldest_first(cur)
            while total >= next_rss:
                marks[next_rss] = now
                pids = oldest_first(children(master.pid))
                per = {p: vmrss_kb(p) for p in pids}
                per = {p: v for p, v in per.items() if v is not None}
                row = {"at": next_rss, "count": total, "t": round(now - t0, 1), "per_worker_kb": per,
                       "sum_kb": sum(per.values()), "workers": len(per),
                       "master_kb": vmrss_kb(master.pid)}
                rss_rows.append(row)
                print("%7d requests, %6.1f s: RSS %s kB (sum %d kB), %.0f req/s so far" % (
                    total, now - t0, ", ".join("%d:%d" % kv for kv in per.items()), row["sum_kb"],
                    total / max(now - t0, 1e-9)), flush=True)
                next_rss += args.rss_every
            if master.poll() is not None:
                print("the master exited during the run with status %s" % master.returncode, flush=True)
                result["master_died"] = master.returncode
                stop.set()
            while True:
                try:
                    results.append(out_q.get_nowait())
                except Exception:
                    break
            if len(results) == len(clients):
                break
            if now > deadline + args.timeout + 30:
                print("clients past the deadline: stopping them", flush=True)
                stop.set()
                break
            if now - last_print > 30:
                last_print = now
                print("%7d requests, %6.1f s" % (total, now - t0), flush=True)
            time.sleep(0.01)
        t_end = time.time()
        stop.set()
        end_wait = time.time() + args.timeout + 10
        while len(results) < len(clients) and time.time() < end_wait:
            try:
                results.append(out_q.get(timeout=1))
            except Exception:
                pass
        for p in clients:
            p.join(timeout=5)
        result["clients_reported"] = len(results)
        result["elapsed_s"] = round(t_end - t0, 1)

        # Final state, then TERM.
        result["workers_at_end"] = oldest_first(children(master.pid)) if master.poll() is None else []
        time.sleep(0.5)
        if master.poll() is None:
            t_term = time.time()
            os.kill(master.pid, signal.SIGTERM)
            try:
                master.wait(timeout=60)
                result["exit_status"] = master.returncode
                result["term_to_exit_s"] = round(time.time() - t_term, 2)
            except subprocess.TimeoutExpired:
                result["exit_status"] = "did not exit within 60 s of TERM"
        else:
            result["exit_status"] = "exited before TERM: %s" % master.returncode
        left = []
        try:
            os.killpg(master.pid, 0)
            left = ["process group %d still had members after the master exited" % master.pid]
        except OSError:
            pass
        result["left_behind"] = left
        result["load_end"] = uptime()

        analyse(result, results, done_events, rss_rows, marks, t0, args)
        acc_lines = {}
        for path in (access + ".1", access):
            acc_lines[os.path.basename(path)] = count_lines(path)
        result["access_log"] = acc_lines
        tb, kinds = error_log_summary([errlog + ".1", errlog])
        result["error_log"] = {"tracebacks": tb, "messages": kinds}
        result["usr1_reopened"] = {"access.log lines after USR1": acc_lines["access.log"][0],
                                   "error.log exists after USR1": os.path.exists(errlog)}
        with open(os.path.join(tmp, "master.out"), errors="replace") as f:
            result["master_output_tail"] = f.read()[-2000:]
        os.makedirs(os.path.dirname(out_path), exist_ok=True)
        with open(out_path, "w") as f:
            json.dump(result, f, indent=1, default=str)
        report(result)
        print("\nJSON record: %s" % out_path)
        if args.keep_logs:
            os.makedirs(args.keep_logs, exist_ok=True)
            for name in os.listdir(tmp):
                shutil.copy(os.path.join(tmp, name), args.keep_logs)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping everything", flush=True)
        return_code = 130
    else:
        return_code = 0
    finally:
        for p in clients:
            if p.is_alive():
                p.terminate()
        for p in clients:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
        if master is not None:
            if master.poll() is None:
                try:
                    os.kill(master.pid, signal.SIGTERM)
                    master.wait(timeout=10)
                except (OSError, subprocess.TimeoutExpired):
                    pass
            try:
                os.killpg(master.pid, signal.SIGKILL)
            except OSError:
                pass
            if master.poll() is None:
                master.wait(timeout=5)
        shutil.rmtree(tmp, ignore_errors=True)
    return return_code


def analyse(result, results, events, rss_rows, marks, t0, args):
    failures = [f for r in results for f in r["failures"]]
    stats = collections.Counter()
    per_sec = collections.Counter()
    for r in results:
        stats.update(r["stats"])
        per_sec.update({int(k): v for k, v in r["per_sec"].items()})
    attempted = sum(r["done"] for r in results)
    kills = [e for e in events if e["event"] == "kill9"]

    def excused(f):
        for k in kills:
            if f.get("pid") == k["pid"] and f["t_fail"] >= k["t_before"]:
                return True
            if f.get("pid") is None and f["t_send"] <= k["t_after"] and f["t_fail"] >= k["t_before"]:
                return True
        return False

    def near_event(f):
        best = None
        for e in events:
            d = f["t_send"] - e["t_before"]
            if -1.0 <= d <= 15.0 and (best is None or abs(d) < abs(best[1])):
                best = (e["event"], d)
        return "%s%+.2fs" % best if best else "none"

    killed, retried_ok, lost = [], [], []
    for f in failures:
        if f.get("retried") and f.get("retry_ok"):
            (killed if excused(f) else retried_ok).append(f)
        elif excused(f) and f["kind"] != "wrong":
            killed.append(f)
        else:
            lost.append(f)
    for f in failures:
        f["near"] = near_event(f)
    closes = [c for r in results for c in r.get("server_closes", [])]
    result["server_closed_keepalive_after_200"] = dict(collections.Counter(
        near_event(c).split("+")[0].split("-")[0] for c in closes))
    result["attempted"] = attempted
    result["answered_ok"] = stats["ok"]
    result["client_stats"] = dict(stats)
    result["events"] = events
    result["lost"] = len(lost)
    result["lost_detail"] = lost[:200]
    result["killed_worker_in_flight"] = len(killed)
    result["killed_worker_detail"] = collections.Counter(
        "%s %s%s" % (f["kind"], "retried ok" if f.get("retry_ok") else "no retry", " reused" if f["reused"] else " new-conn")
        for f in killed)
    result["killed_worker_in_flight_list"] = killed[:200]
    result["retried_ok"] = len(retried_ok)
    result["retried_ok_by_event"] = dict(collections.Counter(f["near"].split("+")[0].split("-")[0]
                                                             for f in retried_ok))
    result["retried_ok_detail"] = retried_ok[:200]

    # RSS: flat within 5 % after warm-up (the first reading, at rss_every requests)?
    if rss_rows:
        base = rss_rows[0]
        base_mean = base["sum_kb"] / max(base["workers"], 1)
        for row in rss_rows:
            mean = row["sum_kb"] / max(row["workers"], 1)
            row["mean_kb"] = round(mean)
            row["mean_vs_first"] = round(mean / base_mean - 1, 4) if base_mean else None
        later = rss_rows[1:]
        result["rss_flat_5pct"] = all(abs(r["mean_vs_first"]) <= 0.05 for r in later) if later else None
        # Per process: growth of each worker between its first and last reading.
        series = collections.OrderedDict()
        for row in rss_rows:
            for pid, kb in row["per_worker_kb"].items():
                series.setdefault(pid, []).append((row["at"], kb))
        result["rss_per_pid"] = {str(p): s for p, s in series.items()}
        result["rss_per_pid_growth"] = {str(p): round(s[-1][1] / s[0][1] - 1, 4)
                                        for p, s in series.items() if len(s) >= 2}
    result["rss_rows"] = rss_rows

    # Throughput: per segment of rss_every requests, and per second.
    seg = []
    prev_n, prev_t = 0, t0
    for n in sorted(marks):
        t = marks[n]
        seg.append({"from": prev_n, "to": n, "seconds": round(t - prev_t, 1),
                    "req_s": round((n - prev_n) / max(t - prev_t, 1e-9))})
        prev_n, prev_t = n, t
    result["throughput_segments"] = seg
    if per_sec:
        secs = sorted(per_sec)
        series = [per_sec.get(s, 0) for s in range(secs[0], secs[-1] + 1)]
        # The 1-s figures leave out the first second and every second from
        # the one in which the first client finished its share (fewer
        # clients from there on).
        first_done = int(min(r["t_last"] for r in results))
        inner = [per_sec.get(s, 0) for s in range(secs[0] + 1, first_done)] or series
        result["per_second"] = {"first_second": secs[0], "counts": series,
                                "all_clients_until_second": first_done - secs[0]}
        result["seconds_with_no_answer"] = sum(1 for c in inner if c == 0)
        result["min_1s"] = min(inner) if inner else None
        result["median_1s"] = sorted(inner)[len(inner) // 2] if inner else None
        result["overall_req_s"] = round(attempted / max(result["elapsed_s"], 1e-9))
        around = {}
        for e in events:
            s0 = int(e["t_before"])
            window = [per_sec.get(s, 0) for s in range(s0, s0 + 5)]
            around["%s@%d" % (e["event"], e["at_count"])] = window
        result["req_s_in_5s_after_each_event"] = around


def report(r):
    print("\n## soak, --threads %d" % r["threads"])
    print("command: %s" % r["command"])
    print("load average: start %s, end %s" % (r["load_start"], r["load_end"]))
    print("requests sent: %d in %.1f s (%s req/s overall); answered right: %d" % (
        r["attempted"], r["elapsed_s"], r.get("overall_req_s"), r["answered_ok"]))
    print("lost: %d; in flight on the killed worker: %d (%s); retried after a keep-alive close: %d %s" % (
        r["lost"], r["killed_worker_in_flight"], dict(r["killed_worker_detail"]), r["retried_ok"],
        r["retried_ok_by_event"]))
    print("200 answers that closed a keep-alive connection unasked, by nearest event: %s" %
          r["server_closed_keepalive_after_200"])
    for f in r["lost_detail"][:20]:
        print("  lost: %s" % json.dumps(f))
    print("\n| requests | workers | RSS per worker (kB, pid:kB) | sum kB | mean kB | mean vs 100k | master kB |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for row in r["rss_rows"]:
        print("| %d | %d | %s | %d | %d | %+.1f %% | %s |" % (
            row["at"], row["workers"], ", ".join("%d:%d" % (p, v) for p, v in row["per_worker_kb"].items()),
            row["sum_kb"], row["mean_kb"], 100 * row["mean_vs_first"], row["master_kb"]))
    print("RSS flat within 5 %% after the first 100k: %s" % r.get("rss_flat_5pct"))
    print("per-worker growth (first to last reading): %s" % r.get("rss_per_pid_growth"))
    print("\n| requests | seconds | req/s |")
    print("| --- | --- | --- |")
    for s in r["throughput_segments"]:
        print("| %d-%d | %.1f | %d |" % (s["from"], s["to"], s["seconds"], s["req_s"]))
    print("1-s windows (while every client ran, the first second left out): min %s, median %s, "
          "with no answer: %s" % (r.get("min_1s"), r.get("median_1s"), r.get("seconds_with_no_answer")))
    print("req/s in the 5 s after each event: %s" % r.get("req_s_in_5s_after_each_event"))
    for e in r["events"]:
        print("event %s at %d: %s -> %s, settled after %s s" % (
            e["event"], e["at_count"], e["workers_before"], e.get("workers_after"), e.get("settled_after_s")))
    print("access log lines: %s" % r["access_log"])
    print("error log: %d tracebacks; messages: %s" % (r["error_log"]["tracebacks"],
                                                    json.dumps(r["error_log"]["messages"], indent=1)))
    print("USR1: %s" % r["usr1_reopened"])
    print("client stats: %s" % r["client_stats"])
    print("master exit status after TERM: %s (%s s)" % (r["exit_status"], r.get("term_to_exit_s")))
    if r["left_behind"]:
        print("left behind: %s" % r["left_behind"])


if __name__ == "__main__":
    sys.exit(main())
