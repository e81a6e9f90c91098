"""cppgunicorn.serve() in a process whose other Python threads are busy:
three threads count in pure Python the whole time, one thread is the
client of the server, and the main thread calls serve(). The client ends
it with SIGINT (Ctrl-C) once done. Prints one JSON line.
Usage: busy_process.py PORT THREADS"""
import http.client
import json
import os
import signal
import sys
import threading
import time

import apps
import cppgunicorn

# Ctrl-C raises KeyboardInterrupt here even when the test suite was started
# from a shell's background job, whose children inherit SIGINT ignored (and
# Python then installs no handler of its own).
signal.signal(signal.SIGINT, signal.default_int_handler)

port, threads = int(sys.argv[1]), int(sys.argv[2])
done = threading.Event()
counts = [0, 0, 0]


def count(i):
    while not done.is_set():
        counts[i] += 1


def client(report):
    deadline = time.monotonic() + 20
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.connect()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)
    before = list(counts)
    statuses = []
    for _ in range(200):
        conn.request("GET", "/")
        r = conn.getresponse()
        r.read()
        statuses.append(r.status)
    # The counters must move while the server serves, not only while the
    # client waits for its connection.
    after = list(counts)
    conn.close()
    report.update(statuses=sorted(set(statuses)), requests=len(statuses),
                  counted=[b - a for a, b in zip(before, after)])
    os.kill(os.getpid(), signal.SIGINT)


report = {}
counters = [threading.Thread(target=count, args=(i,), daemon=True) for i in range(3)]
for t in counters:
    t.start()
threading.Thread(target=client, args=(report,), daemon=True).start()
cppgunicorn.serve(apps.hello, bind="127.0.0.1:%d" % port, threads=threads)
report["counters_alive"] = sum(t.is_alive() for t in counters)
done.set()
for t in counters:
    t.join()
print(json.dumps(report), flush=True)
