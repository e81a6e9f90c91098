"""cppgunicorn.serve() on the main thread until Ctrl-C.
Usage: serve_until_interrupted.py PORT THREADS"""
import sys

import apps
import cppgunicorn

port, threads = int(sys.argv[1]), int(sys.argv[2])
print("serving", flush=True)
cppgunicorn.serve(apps.hello, bind="127.0.0.1:%d" % port, threads=threads)
print("serve() returned", flush=True)
