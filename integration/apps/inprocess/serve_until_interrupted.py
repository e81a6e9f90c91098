"""cppgunicorn.serve() on the main thread until Ctrl-C.
Usage: serve_until_interrupted.py PORT THREADS"""
import signal
import sys

import apps
import cppgunicorn

# Ctrl-C raises KeyboardInterrupt here even when the test suite was started
# from a shell's background job, whose children inherit SIGINT ignored (and
# Python then installs no handler of its own).
signal.signal(signal.SIGINT, signal.default_int_handler)

port, threads = int(sys.argv[1]), int(sys.argv[2])
print("serving", flush=True)
cppgunicorn.serve(apps.hello, bind="127.0.0.1:%d" % port, threads=threads)
print("serve() returned", flush=True)
