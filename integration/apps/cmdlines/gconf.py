# Read with -c python:gconf.
workers = 1
raw_env = ["FOO=from-module"]
