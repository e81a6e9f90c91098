# A typical project config file.
import multiprocessing
import os

workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = 1
timeout = 60
keepalive = 5
accesslog = "-"
errorlog = "-"
loglevel = "info"
forwarded_allow_ips = "*"
raw_env = ["FOO=from-conf"]
