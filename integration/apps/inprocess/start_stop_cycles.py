"""Starts and stops in-process servers in turn, one request each, and
prints the process's open descriptors, threads and RSS after a warm-up
and at the end, as one JSON line. Usage: start_stop_cycles.py CYCLES"""
import http.client
import json
import os
import sys
import time

import apps
import cppgunicorn

PAGE = os.sysconf("SC_PAGE_SIZE")


def sample():
    with open("/proc/self/statm") as f:
        rss_pages = int(f.read().split()[1])
    return {"fds": len(os.listdir("/proc/self/fd")),
            "threads": len(os.listdir("/proc/self/task")),
            "rss_kib": rss_pages * PAGE // 1024}


def cycle(i):
    # Both paths: the app on the loop thread, and on a pool of threads.
    threads = 1 if i % 2 == 0 else 3
    with cppgunicorn.serve_in_thread(apps.hello, threads=threads) as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("GET", "/")
        r = conn.getresponse()
        assert r.status == 200 and r.read().startswith(b"hello"), r.status
        conn.close()
    assert not server.running


cycles = int(sys.argv[1])
for i in range(10):
    cycle(i)
warm = sample()
for i in range(cycles):
    cycle(i)
# A joined thread can still be listed in /proc/self/task for a moment
# after pthread_join returns (the kernel releases it just after it wakes
# the joiner): give the last cycle's threads a second to go. A leak of a
# thread per cycle stays: a hundred of them.
end = sample()
deadline = time.monotonic() + 1.0
while end["threads"] > warm["threads"] and time.monotonic() < deadline:
    time.sleep(0.02)
    end = sample()
print(json.dumps({"warm": warm, "end": end, "cycles": cycles}), flush=True)
