# Read with -c python:gconf.
workers = 2
raw_env = ["FOO=from-module"]
