"""cppgunicornc: the control socket's client, for users without gunicorn.

Speaks the protocol gunicorn's ``gunicornc`` speaks (a 4-byte big-endian
length, then a JSON object; one answer per request), takes the same
options (-s/--socket, -c/--command, -j/--json, -v/--version) and prints the
same tables, so that either client drives either server.
"""

import argparse
import json
import os
import shlex
import socket
import struct
import sys

LENGTH = struct.Struct(">I")
# The server refuses anything larger; answers are far smaller too.
MAX_ANSWER_BYTES = 16 * 1024 * 1024


class ControlError(Exception):
    """The server could not be reached, or answered with an error."""


def default_socket_path():
    """gunicorn's default: $XDG_RUNTIME_DIR/gunicorn.ctl if that directory
    exists, else ~/.gunicorn/gunicorn.ctl (the server resolves it alike)."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return os.path.join(runtime, "gunicorn.ctl")
    return os.path.join(os.path.expanduser("~"), ".gunicorn", "gunicorn.ctl")


def _receive_exactly(sock, count):
    data = bytearray()
    while len(data) < count:
        chunk = sock.recv(min(count - len(data), 65536))
        if not chunk:
            raise ControlError("connection closed by the server")
        data += chunk
    return bytes(data)


class Connection:
    """One connection to a control socket; send() is a round trip."""

    def __init__(self, path, timeout=30.0):
        self.path = path
        self.timeout = timeout
        self._sock = None
        self._next_id = 0

    def open(self):
        if self._sock is not None:
            return
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except OSError as e:
            sock.close()
            raise ControlError(f"Failed to connect to {self.path}: {e}") from None
        self._sock = sock

    def close(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, command):
        """Sends one command line; returns the answer's data, or raises
        ControlError with the server's error message."""
        self.open()
        self._next_id += 1
        payload = json.dumps({"id": self._next_id, "command": command, "args": []}).encode()
        try:
            self._sock.sendall(LENGTH.pack(len(payload)) + payload)
            (length,) = LENGTH.unpack(_receive_exactly(self._sock, LENGTH.size))
            if length > MAX_ANSWER_BYTES:
                raise ControlError(f"answer too large: {length} bytes")
            answer = json.loads(_receive_exactly(self._sock, length).decode("utf-8"))
        except (OSError, ValueError) as e:
            self.close()
            raise ControlError(f"Communication error: {e}") from None
        except ControlError as e:
            self.close()
            raise ControlError(f"Communication error: {e}") from None
        if answer.get("status") != "ok":
            raise ControlError(answer.get("error", "unknown error"))
        return answer.get("data", {})


def normalize(line):
    """The command words then their values, as gunicornc sends them
    ("worker add 2"); shlex quoting is kept apart."""
    words = shlex.split(line)
    return " ".join(words)


# --- How each answer is printed (the layout gunicornc uses) -----------------

def _beat(worker):
    seconds = worker.get("last_heartbeat")
    return "n/a" if seconds is None else f"{seconds}s ago"


def _worker_rows(workers, indent="", rule=40):
    rows = [f"{indent}{'PID':<10} {'AGE':<6} {'BOOTED':<8} LAST_BEAT"]
    rows.append(indent + "-" * rule)
    for w in workers:
        booted = "yes" if w.get("booted") else "no"
        rows.append(f"{indent}{w.get('pid', '?'):<10} {w.get('age', '?'):<6} {booted:<8} {_beat(w)}")
    return rows


def show_workers(data):
    workers = data.get("workers", [])
    if not workers:
        return "No workers running"
    rows = _worker_rows(workers)
    rows += ["", f"Total: {data.get('count', len(workers))} workers"]
    return "\n".join(rows)


def _duration(seconds):
    if not seconds:
        return "unknown"
    h, rest = divmod(int(seconds), 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h}h {m}m {s}s"
    if m:
        return f"{m}m {s}s"
    return f"{s}s"


def show_stats(data):
    fields = [
        ("Uptime", _duration(data.get("uptime"))),
        ("PID", data.get("pid", "unknown")),
        ("Workers current", data.get("workers_current", 0)),
        ("Workers target", data.get("workers_target", 0)),
        ("Workers spawned", data.get("workers_spawned", 0)),
        ("Workers killed", data.get("workers_killed", 0)),
        ("Reloads", data.get("reloads", 0)),
    ]
    if data.get("dirty_arbiter_pid"):
        fields.append(("Dirty arbiter", data["dirty_arbiter_pid"]))
    return "\n".join(f"{name + ':':<18}{value}" for name, value in fields)


def show_listeners(data):
    listeners = data.get("listeners", [])
    if not listeners:
        return "No listeners bound"
    rows = [f"{'ADDRESS':<40} {'TYPE':<8} FD", "-" * 55]
    for entry in listeners:
        rows.append(f"{entry.get('address', '?'):<40} {entry.get('type', '?'):<8} {entry.get('fd', '?')}")
    rows += ["", f"Total: {data.get('count', len(listeners))} listeners"]
    return "\n".join(rows)


def show_config(data):
    rows = []
    for key in sorted(data):
        value = data[key]
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        rows.append(f"{key}: {value}")
    return "\n".join(rows)


def show_all(data):
    rows = ["ARBITER (master)", f"  PID: {data.get('arbiter', {}).get('pid', '?')}", ""]
    workers = data.get("web_workers", [])
    rows.append(f"WEB WORKERS ({data.get('web_worker_count', 0)})")
    rows += _worker_rows(workers, indent="  ", rule=38) if workers else ["  (none)"]
    rows.append("")
    dirty = data.get("dirty_arbiter")
    rows.append("DIRTY ARBITER")
    if not dirty:
        rows.append("  (not running)")
    else:
        rows += [f"  PID: {dirty.get('pid', '?')}", "",
                 f"DIRTY WORKERS ({data.get('dirty_worker_count', 0)})"]
        for w in data.get("dirty_workers", []) or []:
            apps = ", ".join(a.split(":")[-1] for a in w.get("apps", [])) or "(no apps)"
            rows.append(f"  {w.get('pid', '?'):<10} {w.get('age', '?'):<6} {apps}")
    return "\n".join(rows)


def show_dirty(data):
    if not data.get("enabled"):
        return "Dirty arbiter not running"
    return json.dumps(data, indent=2)


def show_help(data):
    commands = data.get("commands", {})
    width = max((len(c) for c in commands), default=0) + 2
    rows = ["Available commands:", ""]
    rows += [f"  {c:<{width}} {text}" for c, text in sorted(commands.items())]
    return "\n".join(rows)


PRINTERS = {
    "show all": show_all,
    "show workers": show_workers,
    "show dirty": show_dirty,
    "show stats": show_stats,
    "show listeners": show_listeners,
    "show config": show_config,
    "help": show_help,
}


def render(command, data, as_json):
    if as_json:
        return json.dumps(data, indent=2)
    printer = PRINTERS.get(command.lower().strip())
    if printer is not None:
        return printer(data)
    return json.dumps(data, indent=2) if data else "OK"


# --- The two modes -----------------------------------------------------------

def run_once(path, line, as_json):
    try:
        command = normalize(line)
        with Connection(path) as conn:
            print(render(command, conn.send(command), as_json))
        return 0
    except (ControlError, ValueError) as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def run_interactive(path, as_json, prompt="cppgunicorn> "):
    try:
        import readline  # noqa: F401  (line editing for input())
    except ImportError:
        pass
    conn = Connection(path)
    try:
        conn.open()
    except ControlError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    print(f"Connected to {path}")
    print("Type 'help' for available commands, 'quit' to exit.")
    print()
    status = 0
    try:
        while True:
            try:
                line = input(prompt).strip()
            except EOFError:
                print()
                break
            if not line:
                continue
            if line.lower() in ("quit", "exit", "q"):
                break
            try:
                command = normalize(line)
                print(render(command, conn.send(command), as_json))
            except ValueError as e:
                print(f"Error: {e}")
            except ControlError as e:
                print(f"Error: {e}")
                try:  # the server may have closed the connection: reconnect
                    conn.close()
                    conn.open()
                except ControlError:
                    print("Connection lost. Exiting.")
                    status = 1
                    break
            print()
    except KeyboardInterrupt:
        print()
        status = 130
    finally:
        conn.close()
    return status


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="cppgunicornc",
        description="Control a running cppgunicorn (or gunicorn) through its control socket.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="""examples:
  cppgunicornc                      interactive, default socket
  cppgunicornc -c "show workers"    one command
  cppgunicornc -c "worker add 2"    two more workers
  cppgunicornc -c "show stats" -j   the answer as JSON
""")
    parser.add_argument("-s", "--socket", default=default_socket_path(),
                        help="control socket path (default: $XDG_RUNTIME_DIR/gunicorn.ctl "
                             "or ~/.gunicorn/gunicorn.ctl)")
    parser.add_argument("-c", "--command", help="run one command and exit")
    parser.add_argument("-j", "--json", action="store_true", help="print answers as JSON")
    parser.add_argument("-v", "--version", action="store_true", help="print the version and exit")
    args = parser.parse_args(argv)
    if args.version:
        from cppgunicorn import __version__
        print(f"cppgunicornc (cppgunicorn {__version__})")
        return 0
    path = os.path.abspath(args.socket)
    if args.command:
        return run_once(path, args.command, args.json)
    return run_interactive(path, args.json)


def console_main():
    sys.exit(main())


if __name__ == "__main__":
    console_main()
