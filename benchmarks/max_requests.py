#!/usr/bin/env python3
"""Throughput with --max-requests against without, for cppgunicorn and gunicorn.

    .venv/bin/python benchmarks/max_requests.py                 # 3 rounds of 30 s cells
    .venv/bin/python benchmarks/max_requests.py --seconds 10 --rounds 1

Each cell starts a server with ``-w 2 -b 127.0.0.1:PORT --pythonpath benchmarks
soak_app:app`` and the cell's flags (none, ``--max-requests 1000
--max-requests-jitter 100``, ``--max-requests 200 --max-requests-jitter 100``;
for cppgunicorn also the 1000 case with ``--preload`` and with ``-c
preimport.py``, a config that imports what its app loader imports), pinned to CPU 0 (``taskset``; --no-pin to leave it free), waits for an answer,
warms up for 1 s, then runs ``wrk -t1 -c16 -dSs`` on ``/hello`` pinned to CPU 1
with a Lua script that counts completed responses per wall-clock second and
reports wrk's errors (connect, read, write, timeout, non-2xx). Then TERM, and
the server's exit status.

Per cell it reports req/s (wrk's), the per-second completions (min, median,
seconds with none, the first and last partial seconds left out), wrk's errors,
how many workers were booted during the run, and each worker's boot time:
from the moment its ``Booting worker with pid: N`` line reached us (the
server's stderr, read by a thread as lines come, timestamped with the wall
clock) to its app's first answer (the app appends ``pid import_time
first_answer_time`` to a file named by SOAK_FIRST_ANSWER_FILE), also split at
the end of the app's import. Ratios are taken within a round (with / without
max-requests, same server), of req/s and of CPU-µs/req of the server's process
tree (without / with), and the median over rounds is printed. Last, boot time
with the machine not saturated by us: ``-w 1 --max-requests 20`` and one
client sending one request per connection, one after the other.

Every process started is in its own process group and is killed at the end,
also on error or Ctrl-C. Talks to 127.0.0.1 only.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
HOST = "127.0.0.1"

LUA = r"""
counts = {}
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
function response(status, headers, body)
  local s = os.time()
  counts[s] = (counts[s] or 0) + 1
end
function done(summary, latency, requests)
  local merged = {}
  for _, t in ipairs(threads) do
    local c = t:get("counts")
    for k, v in pairs(c) do merged[k] = (merged[k] or 0) + v end
  end
  for k, v in pairs(merged) do io.write(string.format("SEC %d %d\n", k, v)) end
  local e = summary.errors
  io.write(string.format("ERRORS connect=%d read=%d write=%d status=%d timeout=%d\n",
    e.connect, e.read, e.write, e.status, e.timeout))
  io.write(string.format("TOTAL requests=%d duration_us=%d\n", summary.requests, summary.duration))
end
"""

CELLS = {
    "none": [],
    "mr1000": ["--max-requests", "1000", "--max-requests-jitter", "100"],
    "mr200": ["--max-requests", "200", "--max-requests-jitter", "100"],
    # Where the boot time goes: with the app imported in the master, and with
    # only the modules cppgunicorn's app loader imports (ast, importlib)
    # imported in the master by a config file (preimport.py, written to the
    # temporary directory), so the forked worker finds them loaded.
    "mr1000-preload": ["--max-requests", "1000", "--max-requests-jitter", "100", "--preload"],
    "mr1000-preimport": ["--max-requests", "1000", "--max-requests-jitter", "100", "-c", "{tmp}/preimport.py"],
}
PREIMPORT = "import ast, importlib  # what cppgunicorn's app loader imports in each worker\n"


def free_port():
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def uptime():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def tree_cpu_s(master):
    """User+system CPU seconds of the master, its reaped children (cutime,
    cstime) and its live children: a worker that exits between two readings
    moves from the last term into the second, so differences are exact."""
    tick = os.sysconf("SC_CLK_TCK")

    def stat(pid):
        try:
            with open("/proc/%d/stat" % pid) as f:
                text = f.read()
        except OSError:
            return None
        return text[text.rfind(")") + 2:].split()

    st = stat(master)
    if st is None:
        return None
    total = sum(int(x) for x in st[11:15])
    try:
        with open("/proc/%d/task/%d/children" % (master, master)) as f:
            kids = [int(x) for x in f.read().split()]
    except OSError:
        kids = []
    for k in kids:
        ks = stat(k)
        if ks is not None:
            total += int(ks[11]) + int(ks[12])
    return total / tick


def get_hello(port):
    s = socket.create_connection((HOST, port), timeout=2)
    try:
        s.sendall(b"GET /hello?id=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data.startswith(b"HTTP/1.1 200") and data.endswith(b"hello 1\n")
    finally:
        s.close()


class Server:
    """A server in its own process group; its stderr read line by line and
    each 'Booting worker with pid' line timestamped as it arrives."""

    def __init__(self, cmd, env, cpu):
        self.boot_lines = {}   # pid -> wall time the line arrived
        self.lines = []
        if cpu is not None:
            cmd = ["taskset", "-c", str(cpu)] + cmd
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                     env=env, start_new_session=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        boot = re.compile(rb"Booting worker with pid: (\d+)")
        for line in self.proc.stderr:
            t = time.time()
            m = boot.search(line)
            if m:
                self.boot_lines[int(m.group(1))] = t
            if len(self.lines) < 5000:
                self.lines.append(line.decode(errors="replace").rstrip())

    def stop(self):
        """TERM, then the exit status (or why none)."""
        if self.proc.poll() is not None:
            return "exited early: %s" % self.proc.returncode
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=40)
            return self.proc.returncode
        except subprocess.TimeoutExpired:
            return "no exit within 40 s of TERM"
        finally:
            self.kill()

    def kill(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        if self.proc.poll() is None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self.reader.join(timeout=2)


def run_cell(server_name, binary, cell, args, tmp, cpus):
    port = free_port()
    first_file = os.path.join(tmp, "first-%s-%s-%d.txt" % (server_name, cell, port))
    env = dict(os.environ, SOAK_FIRST_ANSWER_FILE=first_file)
    flags = [a.replace("{tmp}", tmp) for a in CELLS[cell]]
    cmd = [binary, "-w", "2", "-b", "%s:%d" % (HOST, port), "--pythonpath", HERE] + flags + ["soak_app:app"]
    shown = " ".join([os.path.relpath(binary, ROOT) if binary.startswith(ROOT) else binary,
                      "-w", "2", "-b", "127.0.0.1:PORT", "--pythonpath", "benchmarks"]
                     + [a.replace("{tmp}/", "") for a in CELLS[cell]] + ["soak_app:app"])
    srv = Server(cmd, env, cpus[0])
    rec = {"server": server_name, "cell": cell, "command": shown, "load_start": uptime()}
    try:
        deadline = time.time() + 30
        while True:
            if srv.proc.poll() is not None:
                raise RuntimeError("%s exited at start: %s\n%s" % (server_name, srv.proc.returncode,
                                                                   "\n".join(srv.lines[-20:])))
            try:
                if get_hello(port):
                    break
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError("%s did not answer within 30 s" % server_name)
            time.sleep(0.1)
        url = "http://%s:%d/hello?id=1" % (HOST, port)
        wrk = (["taskset", "-c", str(cpus[1])] if cpus[1] is not None else []) + ["wrk"]
        subprocess.run(wrk + ["-t1", "-c16", "-d1s", url], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=30)
        booted_before = set(srv.boot_lines)
        cpu_start = tree_cpu_s(srv.proc.pid)
        t_start = time.time()
        out = subprocess.run(wrk + ["-t1", "-c16", "-d%ds" % args.seconds, "--timeout", "5s", "-s",
                                    os.path.join(tmp, "per_second.lua"), url],
                             capture_output=True, text=True, timeout=args.seconds + 60).stdout
        t_end = time.time()
        cpu_end = tree_cpu_s(srv.proc.pid)
        rec["wrk_command"] = "wrk -t1 -c16 -d%ds --timeout 5s -s per_second.lua %s" % (
            args.seconds, "http://127.0.0.1:PORT/hello?id=1")
        m = re.search(r"Requests/sec:\s+([\d.]+)", out)
        rec["req_s"] = float(m.group(1)) if m else None
        secs = {}
        for line in out.splitlines():
            if line.startswith("SEC "):
                _, k, v = line.split()
                secs[int(k)] = int(v)
            elif line.startswith("ERRORS "):
                rec["errors"] = {k: int(v) for k, v in (kv.split("=") for kv in line.split()[1:])}
            elif line.startswith("TOTAL "):
                rec["total"] = {k: int(v) for k, v in (kv.split("=") for kv in line.split()[1:])}
        if secs:
            series = [secs.get(s, 0) for s in range(min(secs), max(secs) + 1)]
            inner = series[1:-1]
            rec["per_second"] = series
            rec["empty_seconds"] = sum(1 for c in inner if c == 0)
            rec["min_1s"] = min(inner) if inner else None
            rec["median_1s"] = statistics.median(inner) if inner else None
        if cpu_start is not None and cpu_end is not None and rec.get("total", {}).get("requests"):
            rec["cpu_us_per_req"] = round((cpu_end - cpu_start) * 1e6 / rec["total"]["requests"], 1)
        rec["wrk_tail"] = "\n".join(out.splitlines()[:12])
        # Boot times of the workers booted while wrk ran.
        answers = {}
        try:
            with open(first_file) as f:
                for line in f:
                    pid, imported, first = line.split()
                    answers[int(pid)] = (float(imported), float(first))
        except OSError:
            pass
        boots = []
        for pid, t in sorted(srv.boot_lines.items(), key=lambda kv: kv[1]):
            if pid in booted_before or not (t_start <= t <= t_end):
                continue
            if pid in answers:
                imported, first = answers[pid]
                boots.append({"pid": pid, "to_first_answer_ms": round((first - t) * 1000, 1),
                              # with --preload the app was imported in the master, before the fork
                              "to_import_ms": None if "--preload" in flags else round((imported - t) * 1000, 1)})
            else:
                boots.append({"pid": pid, "to_first_answer_ms": None})
        rec["workers_booted_during_run"] = len(boots)
        done_boots = [b["to_first_answer_ms"] for b in boots if b["to_first_answer_ms"] is not None]
        if done_boots:
            done_boots.sort()
            to_import = [b["to_import_ms"] for b in boots if b.get("to_import_ms") is not None]
            rec["boot_ms"] = {"median": statistics.median(done_boots),
                              "p90": done_boots[int(0.9 * (len(done_boots) - 1))],
                              "max": done_boots[-1], "min": done_boots[0],
                              "to_import_median": statistics.median(to_import) if to_import else None}
        rec["never_answered"] = sum(1 for b in boots if b["to_first_answer_ms"] is None)
        rec["initial_boot_ms"] = sorted(round((answers[p][1] - srv.boot_lines[p]) * 1000, 1)
                                        for p in booted_before if p in answers and p in srv.boot_lines)
    finally:
        rec["exit_status"] = srv.stop()
        rec["load_end"] = uptime()
        rec["server_log_tail"] = srv.lines[-5:]
        rec["error_lines"] = [ln for ln in srv.lines if "[ERROR]" in ln or "Traceback" in ln][:20]
    return rec


IDLE_CELLS = [("cppgunicorn", []), ("cppgunicorn", ["-c", "{tmp}/preimport.py"]), ("cppgunicorn", ["--preload"]),
              ("gunicorn", []), ("gunicorn", ["--preload"])]


def idle_boot(server_name, binary, extra, seconds, tmp, cpu):
    """Boot time with the machine not saturated by us: one worker retiring
    every 20 requests (-w 1 --max-requests 20), a single client sending one
    request per connection, one after the other, for `seconds`."""
    port = free_port()
    first_file = os.path.join(tmp, "idle-first-%s-%d.txt" % (server_name, port))
    env = dict(os.environ, SOAK_FIRST_ANSWER_FILE=first_file)
    flags = ["-w", "1", "--max-requests", "20"] + [a.replace("{tmp}", tmp) for a in extra]
    srv = Server([binary, "-b", "%s:%d" % (HOST, port), "--pythonpath", HERE] + flags + ["soak_app:app"], env, cpu)
    shown = " ".join([os.path.basename(binary)] + flags).replace(tmp + "/", "")
    n = failed = 0
    try:
        deadline = time.time() + 30
        while True:
            try:
                if get_hello(port):
                    break
            except OSError:
                pass
            if srv.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("%s did not start" % shown)
            time.sleep(0.1)
        t_end = time.time() + seconds
        while time.time() < t_end:
            try:
                ok = get_hello(port)
            except OSError:
                ok = False
            n += 1
            failed += 0 if ok else 1
    finally:
        status = srv.stop()
    answers = {}
    with open(first_file) as f:
        for line in f:
            pid, imported, first = line.split()
            answers[int(pid)] = (float(imported), float(first))
    first_ms, import_ms = [], []
    for pid, t in srv.boot_lines.items():
        if pid in answers:
            imported, first = answers[pid]
            first_ms.append((first - t) * 1000)
            if "--preload" not in flags:
                import_ms.append((imported - t) * 1000)
    return {"server": server_name, "flags": shown, "requests": n, "failed": failed, "workers": len(first_ms),
            "boot_to_first_answer_ms_median": round(statistics.median(first_ms), 1) if first_ms else None,
            "boot_to_import_end_ms_median": round(statistics.median(import_ms), 1) if import_ms else None,
            "exit_status": status}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cppgunicorn", default=os.path.join(ROOT, ".venv", "bin", "cppgunicorn"))
    ap.add_argument("--gunicorn", default=os.path.join(ROOT, ".venv", "bin", "gunicorn"))
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cells", default="cppgunicorn:none,cppgunicorn:mr1000,cppgunicorn:mr200,"
                                       "cppgunicorn:mr1000-preload,cppgunicorn:mr1000-preimport,"
                                       "gunicorn:none,gunicorn:mr1000,gunicorn:mr200",
                    help="SERVER:CELL,... with CELL in %s" % ", ".join(CELLS))
    ap.add_argument("--idle-seconds", type=int, default=8,
                    help="length of each idle boot-time cell (-w 1 --max-requests 20, one client); 0 skips them")
    ap.add_argument("--no-pin", action="store_true", help="do not pin the server to CPU 0 and wrk to CPU 1")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "max_requests.json"))
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    cells = [tuple(c.split(":")) for c in args.cells.split(",")]
    binaries = {"cppgunicorn": args.cppgunicorn, "gunicorn": args.gunicorn}
    for name, _ in cells:
        if not os.access(binaries[name], os.X_OK):
            raise SystemExit("%s not found at %s" % (name, binaries[name]))
    usable = sorted(os.sched_getaffinity(0))
    cpus = (usable[0], usable[1]) if (len(usable) >= 2 and not args.no_pin) else (None, None)
    tmp = tempfile.mkdtemp(prefix="maxreq-")
    with open(os.path.join(tmp, "per_second.lua"), "w") as f:
        f.write(LUA)
    with open(os.path.join(tmp, "preimport.py"), "w") as f:
        f.write(PREIMPORT)
    result = {"load_start": uptime(), "pinned": cpus, "seconds": args.seconds, "rounds": []}
    print("load average at start: %s; server on CPU %s, wrk on CPU %s" % (result["load_start"], *cpus), flush=True)
    try:
        for rnd in range(args.rounds):
            # A server's cells run back to back (their ratio is what counts),
            # rotated from round to round, and the servers take turns first.
            servers = list(dict.fromkeys(c[0] for c in cells))
            servers = servers[rnd % len(servers):] + servers[:rnd % len(servers)]
            order = []
            for sv in servers:
                mine = [c for c in cells if c[0] == sv]
                order += mine[rnd % len(mine):] + mine[:rnd % len(mine)]
            recs = []
            for server, cell in order:
                rec = run_cell(server, binaries[server], cell, args, tmp, cpus)
                rec["round"] = rnd
                recs.append(rec)
                print("round %d %-11s %-16s %8s req/s, %s CPU-us/req, min 1-s %s, median 1-s %s, empty s %s, errors %s, "
                      "boots %s, boot ms %s, exit %s, load %s -> %s" % (
                          rnd, server, cell, rec.get("req_s"), rec.get("cpu_us_per_req"), rec.get("min_1s"), rec.get("median_1s"),
                          rec.get("empty_seconds"), rec.get("errors"), rec.get("workers_booted_during_run"),
                          rec.get("boot_ms"), rec["exit_status"], rec["load_start"], rec["load_end"]), flush=True)
            result["rounds"].append(recs)
        result["idle_boot"] = []
        if args.idle_seconds > 0:
            result["idle_load_start"] = uptime()
            for server, extra in IDLE_CELLS:
                if server not in {c[0] for c in cells}:
                    continue
                rec = idle_boot(server, binaries[server], extra, args.idle_seconds, tmp, cpus[0])
                result["idle_boot"].append(rec)
                print("idle boot: %s" % json.dumps(rec), flush=True)
            result["idle_load_end"] = uptime()
    except KeyboardInterrupt:
        print("\ninterrupted", flush=True)
        return 130
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result["load_end"] = uptime()
    # Ratios within each round.
    ratios = {}
    cpu_ratios = {}
    for recs in result["rounds"]:
        by = {(r["server"], r["cell"]): r for r in recs}
        for (server, cell), r in by.items():
            base = by.get((server, "none"))
            if cell != "none" and base and base.get("req_s") and r.get("req_s"):
                ratios.setdefault("%s %s" % (server, cell), []).append(round(r["req_s"] / base["req_s"], 3))
            if cell != "none" and base and base.get("cpu_us_per_req") and r.get("cpu_us_per_req"):
                cpu_ratios.setdefault("%s %s" % (server, cell), []).append(
                    round(base["cpu_us_per_req"] / r["cpu_us_per_req"], 3))
    result["ratios"] = {k: {"per_round": v, "median": statistics.median(v)} for k, v in ratios.items()}
    # The server is pinned to one CPU and keeps it busy: its req/s is about
    # 1 / CPU per request, and this ratio, CPU/req without over CPU/req
    # with, is much less sensitive to what else runs on that CPU.
    result["cpu_ratios"] = {k: {"per_round": v, "median": statistics.median(v)} for k, v in cpu_ratios.items()}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print("\nload average: start %s, end %s" % (result["load_start"], result["load_end"]))
    print("\n| server | flags | round | req/s | ×without | CPU-µs/req | min 1-s | median 1-s | empty s | wrk errors | "
          "workers booted | boot ms median / p90 / max | exit |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for recs in result["rounds"]:
        by = {(r["server"], r["cell"]): r for r in recs}
        for r in sorted(recs, key=lambda r: (r["server"], list(CELLS).index(r["cell"]))):
            base = by.get((r["server"], "none"))
            ratio = r["req_s"] / base["req_s"] if base and base.get("req_s") and r.get("req_s") else None
            errs = r.get("errors") or {}
            b = r.get("boot_ms")
            print("| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                r["server"], " ".join(a.replace("{tmp}/", "") for a in CELLS[r["cell"]]) or "(none)",
                r["round"], r.get("req_s"),
                "%.2f" % ratio if ratio else "", r.get("cpu_us_per_req"), r.get("min_1s"), r.get("median_1s"), r.get("empty_seconds"),
                sum(errs.values()) if errs else "?", r.get("workers_booted_during_run"),
                "%.0f / %.0f / %.0f" % (b["median"], b["p90"], b["max"]) if b else "",
                r["exit_status"]))
    print("\nratios (with / without, same round): %s" % json.dumps(result["ratios"]))
    print("CPU ratios (CPU-µs/req without / with, same round): %s" % json.dumps(result["cpu_ratios"]))
    if result.get("idle_boot"):
        print("\nidle boot (load %s -> %s):" % (result["idle_load_start"], result["idle_load_end"]))
        print("| server flags | requests | failed | workers booted | boot line to end of app import, median ms | "
              "boot line to first answer, median ms | exit |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for r in result["idle_boot"]:
            print("| %s | %d | %d | %d | %s | %s | %s |" % (
                r["flags"] if r["flags"].startswith(r["server"]) else r["server"] + " " + r["flags"],
                r["requests"], r["failed"], r["workers"], r["boot_to_import_end_ms_median"],
                r["boot_to_first_answer_ms_median"], r["exit_status"]))
    print("JSON record: %s" % args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
