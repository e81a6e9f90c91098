"""Replays the raw HTTP request corpus (gunicorn's tests/requests, decoded;
see tests/data/corpus/README.md) over real sockets against the server running
the echo app in apps/echo.

* A valid case must reach the app once per request it holds, in order, with
  the expected method, PATH_INFO, QUERY_STRING, RAW_URI, SERVER_PROTOCOL,
  headers (as CGI keys) and body, and nothing else may reach the app.
* Where we follow RFC 9112 more strictly than gunicorn (STRICTER_THAN_GUNICORN:
  Host on HTTP/1.1, transfer codings other than chunked), a case that breaks
  such a rule must be refused with that rule's status instead (after the
  pipelined requests before it were served) and never reach the app.
* An invalid case must be answered 400 (431/414 allowed for the limits) and
  must never reach the app; only a request cut short by EOF (NoMoreData) may
  instead be closed without an answer.

One server runs per distinct corpus ``cfg`` for the whole module.  A case
whose cfg names a setting outside SUPPORTED_SETTINGS is skipped, naming it.

Environment:
  CPPGUNICORN_CORPUS   path of gunicorn-requests.json (default: the copy in
                       tests/data/corpus/)
  CORPUS_ALL_SETTINGS=1  treat every setting in SETTING_FLAGS as supported
                       (to check the flag mapping against real gunicorn)
  CORPUS_SERVER_FLAGS  extra command-line flags for every corpus server
                       (shell syntax); when unset and the binary is gunicorn
                       itself, ``--worker-class gthread`` is used, because
                       gunicorn's default sync worker has no keep-alive.
"""
import base64
import ipaddress
import json
import os
import re
import shlex
import socket
import time
import urllib.parse
from pathlib import Path

import pytest

from conftest import APPS, Server, free_port, server_binary, wait_for_port

pytest_plugins = ["corpus_report"]

ECHO_DIR = APPS / "echo"
CORPUS_ENV = "CPPGUNICORN_CORPUS"
DEFAULT_CORPUS = (Path(__file__).absolute().parents[1] / "tests" / "data" / "corpus"
                  / "gunicorn-requests.json")

IO_TIMEOUT = 5.0      # every single socket operation
CASE_DEADLINE = 10.0  # everything one case does on its connection
AFTER_EOF_WAIT = 2.0  # valid case: for the server to close after our EOF


# --------------------------------------------------------------------------
# Corpus settings -> command-line flags (gunicorn's names and flags).

def _value_flag(flag):
    def flags(value):
        if isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        return [flag, str(value)]
    return flags


def _switch(flag):
    return lambda value: [flag] if value else []


def _proxy_protocol(value):
    # gunicorn: a bare --proxy-protocol means "auto"; True in a config too.
    if value is True:
        return ["--proxy-protocol"]
    if value in (False, None, "off"):
        return []
    return ["--proxy-protocol", str(value)]


SETTING_FLAGS = {
    "limit_request_line": _value_flag("--limit-request-line"),
    "limit_request_fields": _value_flag("--limit-request-fields"),
    "limit_request_field_size": _value_flag("--limit-request-field_size"),
    "proxy_protocol": _proxy_protocol,
    "proxy_allow_ips": _value_flag("--proxy-allow-from"),
    "forwarded_allow_ips": _value_flag("--forwarded-allow-ips"),
    "forwarder_headers": _value_flag("--forwarder-headers"),
    "header_map": _value_flag("--header-map"),
    "permit_obsolete_folding": _switch("--permit-obsolete-folding"),
    "strip_header_spaces": _switch("--strip-header-spaces"),
    "permit_unconventional_http_method": _switch("--permit-unconventional-http-method"),
    "permit_unconventional_http_version": _switch("--permit-unconventional-http-version"),
    "casefold_http_method": _switch("--casefold-http-method"),
}

# The settings the server under test implements: a case whose cfg names
# another one is skipped.
SUPPORTED_SETTINGS = {
    "limit_request_line", "limit_request_fields", "limit_request_field_size",
    "proxy_protocol", "proxy_allow_ips", "header_map", "permit_obsolete_folding",
    "strip_header_spaces", "permit_unconventional_http_method", "casefold_http_method",
    "forwarded_allow_ips",
}
if os.environ.get("CORPUS_ALL_SETTINGS") == "1":
    SUPPORTED_SETTINGS = set(SETTING_FLAGS)

# Status codes an invalid case may be answered with, by gunicorn's error name.
ALLOWED_STATUS = {
    "LimitRequestLine": {400, 414},
    "LimitRequestHeaders": {400, 431},
}
DEFAULT_ALLOWED_STATUS = {400}

# RFC 9112 rules enforced where gunicorn is laxer (docs/http.md says why): a
# case one of them applies to is expected to be refused with that rule's
# status, whatever gunicorn does with it, and must not reach the app.
STRICTER_THAN_GUNICORN = {
    "MissingHost": {400},                # section 3.2: HTTP/1.1 without Host
    "RepeatedHost": {400},               # section 3.2
    "InvalidHost": {400},                # section 3.2
    "UnsupportedTransferCoding": {501},  # sections 6.1 and 7: anything but chunked
}
_HOST = re.compile(r"^(\[[0-9A-Za-z:._~!$&'()*+,;=-]+\]|([0-9A-Za-z._~!$&'()*+,;=-]|%[0-9A-Fa-f]{2})*)"
                   r"(:[0-9]*)?$")


def _rule_broken(is_http11, hosts, codings):
    if any(c not in ("", "chunked") for c in codings):
        return "UnsupportedTransferCoding"
    if is_http11:
        if not hosts:
            return "MissingHost"
        if len(hosts) > 1:
            return "RepeatedHost"
        if not _HOST.match(hosts[0]):
            return "InvalidHost"
    return None


def rule_broken_by(request):
    """The rule above that one expected (parsed) request breaks, or None."""
    hosts = [v for n, v in request["headers"] if n.upper() == "HOST"]
    codings = [c.strip(" \t").lower() for n, v in request["headers"]
               if n.upper() == "TRANSFER-ENCODING" for c in v.split(",")]
    return _rule_broken(tuple(request["version"]) == (1, 1), hosts, codings)


def stricter_rule(raw):
    """The rule above that the first request in `raw` breaks, or None."""
    if raw.startswith(b"PROXY "):
        raw = raw.split(b"\n", 1)[-1]
    elif raw.startswith(b"\r\n\r\n\x00\r\nQUIT\n") and len(raw) >= 16:
        raw = raw[16 + int.from_bytes(raw[14:16], "big"):]
    text = raw.decode("latin-1").lstrip("\r\n")
    head = re.split(r"\r?\n\r?\n", text, maxsplit=1)[0]
    lines = head.split("\n")
    request_line = lines[0].rstrip("\r").split(" ")
    hosts, codings = [], []
    for line in lines[1:]:
        name, sep, value = line.rstrip("\r").partition(":")
        if not sep:
            continue
        if name.lower() == "host":
            hosts.append(value.strip(" \t"))
        elif name.lower() == "transfer-encoding":
            codings += [c.strip(" \t").lower() for c in value.split(",")]
    return _rule_broken(request_line[-1] == "HTTP/1.1", hosts, codings)
# Errors meaning "the bytes are an incomplete request and then EOF": closing
# the connection without an answer is also right for these.
INCOMPLETE_AT_EOF = {"NoMoreData"}


# --------------------------------------------------------------------------
# Loading the corpus (at collection: one test per case).

def _load_corpus():
    path = Path(os.environ.get(CORPUS_ENV) or DEFAULT_CORPUS)
    if not path.is_file():
        return path, None, (
            f"request corpus not found at {path}: set ${CORPUS_ENV} to the path "
            f"of gunicorn-requests.json (default <repo>/tests/data/corpus/)")
    try:
        cases = json.loads(path.read_text(encoding="utf-8"))
        assert isinstance(cases, list) and cases, "expected a non-empty JSON list"
        for case in cases:
            assert {"name", "kind", "raw_b64"} <= set(case), f"bad entry {case!r:.200}"
    except (ValueError, AssertionError) as exc:
        return path, None, f"request corpus {path} is unreadable: {exc}"
    return path, cases, None


CORPUS_PATH, CASES, CORPUS_ERROR = _load_corpus()
if CASES:
    PARAMS = [pytest.param(c, id=c["name"]) for c in CASES]
else:
    PARAMS = [pytest.param(None, id="corpus-missing")]


def _cfg_key(cfg):
    return json.dumps(cfg, sort_keys=True)


# --------------------------------------------------------------------------
# One server per distinct cfg, for the whole module.

class CorpusServers:
    def __init__(self, tmpdir):
        self.tmpdir = tmpdir
        self.servers = {}
        extra = os.environ.get("CORPUS_SERVER_FLAGS")
        if extra is not None:
            self.extra_flags = shlex.split(extra)
        elif Path(server_binary()).name == "gunicorn":
            self.extra_flags = ["--worker-class", "gthread", "--threads", "4"]
        else:
            self.extra_flags = []

    def get(self, cfg):
        key = _cfg_key(cfg)
        if key in self.servers:
            srv = self.servers[key]
            if srv.proc.poll() is not None:
                pytest.fail(f"the server for cfg {key} exited "
                            f"(status {srv.proc.returncode}):\n{srv.stderr()[-3000:]}")
            return srv
        setting_flags = []
        for name, value in sorted(cfg.items()):
            if name not in SETTING_FLAGS:
                pytest.fail(f"setting {name!r} is in SUPPORTED_SETTINGS but has no "
                            f"entry in SETTING_FLAGS")
            setting_flags += SETTING_FLAGS[name](value)
        port = free_port()
        log = self.tmpdir / f"echo-{len(self.servers)}.jsonl"
        log.touch()
        # The setting flags come first: a flag with an optional value (a bare
        # --proxy-protocol) must never be followed by the app URI.
        args = [server_binary(), *setting_flags, *self.extra_flags,
                "--bind", f"127.0.0.1:{port}", "--workers", "1",
                "--chdir", str(ECHO_DIR), "app:app"]
        srv = Server(args, env={"ECHO_LOG": str(log)}, port=port)
        srv.echo_log = log
        self.servers[key] = srv
        if not wait_for_port(port, srv.proc):
            pytest.fail(f"server did not start: {args}\nstdout:\n{srv.stdout()}\n"
                        f"stderr:\n{srv.stderr()}")
        return srv

    def stop(self):
        for srv in self.servers.values():
            srv.stop()


@pytest.fixture(scope="module")
def corpus_servers(tmp_path_factory):
    servers = CorpusServers(tmp_path_factory.mktemp("corpus"))
    yield servers
    servers.stop()


def app_calls(srv):
    """Every request that reached the echo app, in order."""
    text = srv.echo_log.read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line]


# --------------------------------------------------------------------------
# Reading HTTP/1.x responses off a raw socket.

class ConnectionClosed(Exception):
    pass


class ResponseReader:
    """Buffered reads from a socket, each bounded by IO_TIMEOUT and the
    whole connection by a deadline."""

    def __init__(self, sock, deadline):
        self.sock = sock
        self.deadline = deadline
        self.buf = b""
        self.eof = False
        self.reset = False

    def _fill(self):
        if self.eof:
            return False
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("case deadline passed")
        self.sock.settimeout(min(IO_TIMEOUT, left))
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data, self.reset = b"", True
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _line(self):
        while b"\n" not in self.buf:
            if not self._fill():
                raise ConnectionClosed(f"closed in the middle of a line: {self.buf[:200]!r}")
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r")

    def _exact(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise ConnectionClosed(f"closed {n - len(self.buf)} bytes short of a body")
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def _chunked(self):
        parts = []
        while True:
            size_line = self._line()
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while self._line():  # trailer section up to the empty line
                    pass
                return b"".join(parts)
            parts.append(self._exact(size))
            if self._exact(2) != b"\r\n":
                raise AssertionError("chunk data not followed by CRLF")

    def rest(self):
        """Everything up to EOF (the caller has no more responses to expect)."""
        while self._fill():
            pass
        data, self.buf = self.buf, b""
        return data

    def response(self):
        """The next final response as (status, headers, body), or None when the
        connection closes cleanly before its first byte."""
        while True:
            if not self.buf and not self._fill():
                return None
            status_line = self._line()
            parts = status_line.split(b" ", 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
                raise AssertionError(f"not an HTTP/1.x status line: {status_line[:200]!r}")
            status = int(parts[1])
            headers = []
            while True:
                line = self._line()
                if not line:
                    break
                name, _, value = line.partition(b":")
                headers.append((name.decode("latin-1").lower(),
                                value.strip().decode("latin-1")))
            if 100 <= status < 200:
                continue  # interim response: the final one follows
            fields = dict(headers)
            if status in (204, 304):
                body = b""
            elif "chunked" in fields.get("transfer-encoding", "").lower():
                body = self._chunked()
            elif "content-length" in fields:
                body = self._exact(int(fields["content-length"]))
            else:
                body = self.rest()
            return status, headers, body


# --------------------------------------------------------------------------
# What a valid case must look like to the app.

def _expected_path_info(uri, raw_uri):
    """PATH_INFO as PEP 3333 and gunicorn make it: the path percent-decoded
    to bytes, then those bytes as latin-1 code points."""
    if not raw_uri.startswith("/") and "://" not in raw_uri:
        # authority-form (CONNECT host:port, RFC 9112 §3.2.3) has no path; the
        # corpus's "path" there is urllib's split of "host:port" as
        # "scheme:path", which PEP 3333 (PATH_INFO empty or "/...") forbids.
        return ""
    path = uri["path"].encode("latin-1")
    return urllib.parse.unquote_to_bytes(path).decode("latin-1")


def _header_key(name):
    if name == "CONTENT-TYPE":
        return "CONTENT_TYPE"
    if name == "CONTENT-LENGTH":
        return "CONTENT_LENGTH"
    return "HTTP_" + name.replace("-", "_")


def _expected_environ(req, cfg):
    uri = req["uri"]
    major, minor = req["version"]
    want = {
        "REQUEST_METHOD": req["method"],
        "PATH_INFO": _expected_path_info(uri, uri["raw"]),
        "QUERY_STRING": uri["query"],
        "RAW_URI": uri["raw"],
        "SERVER_PROTOCOL": f"HTTP/{major}.{minor}",
    }
    joined = {}
    for name, value in req["headers"]:
        if "_" in name and cfg.get("header_map", "drop") == "drop":
            continue  # gunicorn drops names with "_": HTTP_A_B would be ambiguous
        joined.setdefault(_header_key(name), []).append(value)
    for key, values in joined.items():
        # RFC 9110 §5.3: repeated fields combine into one comma-separated
        # list, in order; gunicorn joins them with a bare ",".
        want[key] = ",".join(values)
    want["body"] = base64.b64decode(req.get("body_b64", ""))
    return want


def _actual_environ(seen):
    got = {k: seen.get(k) for k in ("REQUEST_METHOD", "PATH_INFO", "QUERY_STRING",
                                    "RAW_URI", "SERVER_PROTOCOL")}
    for key, value in seen.items():
        if key.startswith("HTTP_") or key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            got[key] = value
    got["body"] = base64.b64decode(seen["body_b64"])
    return got


PROXY_V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def _expected_remote_addr(raw, cfg):
    """REMOTE_ADDR: the PROXY protocol source when the case carries a PROXY
    header the server is told to accept, else the loopback client."""
    if not cfg.get("proxy_protocol"):
        return "127.0.0.1"
    if raw.startswith(b"PROXY "):
        fields = raw.split(b"\r\n", 1)[0].split(b" ")
        if fields[1] in (b"TCP4", b"TCP6"):
            return fields[2].decode("ascii")
    elif raw.startswith(PROXY_V2_SIGNATURE):
        command, family = raw[12] & 0x0F, raw[13] >> 4
        if command == 1 and family == 1:
            return str(ipaddress.IPv4Address(raw[16:20]))
        if command == 1 and family == 2:
            return str(ipaddress.IPv6Address(raw[16:32]))
    return "127.0.0.1"


# --------------------------------------------------------------------------
# The replay.

def _send(sock, raw):
    """Sends the case's bytes; a server that rejects early may close or reset
    before it has them all, which the reading side then judges."""
    try:
        sock.sendall(raw)
    except (BrokenPipeError, ConnectionResetError):
        pass


def _shutdown_write(sock):
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def _case_stderr(srv):
    """What the server logged since this case began (the tail of it)."""
    return srv.stderr()[srv.stderr_mark:][-2000:]


def _fail(srv, msg):
    pytest.fail(f"{msg}\n--- server stderr during the case ---\n{_case_stderr(srv)}")


def _describe(calls):
    return [(c.get("REQUEST_METHOD"), (c.get("RAW_URI") or "")[:80]) for c in calls]


def _replay_valid(srv, case, raw, refused_with=None):
    """`refused_with`: the statuses of a refusal that must follow the
    responses to case["expect"] (a later request breaks a rule above)."""
    cfg = case.get("cfg") or {}
    expect = case["expect"]
    calls_before = len(app_calls(srv))
    responses = []
    extra = b""
    deadline = time.monotonic() + CASE_DEADLINE
    with socket.create_connection(("127.0.0.1", srv.port), timeout=IO_TIMEOUT) as sock:
        # No shutdown before reading: every valid request here is framed by
        # its headers (no body, Content-Length or chunked), so none needs EOF
        # to end, and a client that keeps the write side open is the normal
        # keep-alive case.
        _send(sock, raw)
        reader = ResponseReader(sock, deadline)
        try:
            for i in range(len(expect)):
                resp = reader.response()
                if resp is None:
                    _fail(srv, f"connection closed after {i} response(s); "
                               f"the case holds {len(expect)} request(s)")
                status, _headers, body = resp
                if status != 200:
                    req = expect[i]
                    _fail(srv, f"request {i + 1} ({req['method']} {req['uri']['raw']!r}) "
                               f"answered {status}: {body[:500]!r}")
                responses.append(resp)
            if refused_with is not None:
                resp = reader.response()
                if resp is None or resp[0] not in refused_with:
                    _fail(srv, f"after {len(expect)} response(s) expected a refusal "
                               f"{sorted(refused_with)}, got {resp and resp[0]}")
            # Nothing may follow the expected responses (a request after
            # "Connection: close", say): end our side and read up to EOF.
            _shutdown_write(sock)
            reader.deadline = min(deadline, time.monotonic() + AFTER_EOF_WAIT)
            extra = reader.rest()
        except socket.timeout:
            if len(responses) < len(expect):
                _fail(srv, f"timed out waiting for response {len(responses) + 1} of "
                           f"{len(expect)}")
            # The responses all came; the server just kept the connection
            # open after our EOF, which is not this test's concern.
        except ConnectionClosed as exc:
            _fail(srv, f"response {len(responses) + 1}: {exc}")

    for i, ((_status, _headers, body), req) in enumerate(zip(responses, expect), 1):
        seen = json.loads(body)
        assert _actual_environ(seen) == _expected_environ(req, cfg), f"request {i}"
        assert seen.get("SCRIPT_NAME", "") == os.environ.get("SCRIPT_NAME", ""), f"request {i}"
        assert seen.get("REMOTE_ADDR") == _expected_remote_addr(raw, cfg), f"request {i}"
        assert seen.get("wsgi.url_scheme") == "http", f"request {i}"
    assert not extra, f"unexpected bytes after the expected responses: {extra[:300]!r}"
    calls = app_calls(srv)[calls_before:]
    assert len(calls) == len(expect), (
        f"the app was called {len(calls)} time(s) for {len(expect)} request(s): "
        f"{_describe(calls)}")


def _replay_invalid(srv, case, raw):
    error = case.get("error", "")
    allowed = (STRICTER_THAN_GUNICORN.get(error) or ALLOWED_STATUS.get(error) or
               DEFAULT_ALLOWED_STATUS)
    if case.get("gunicorn_error"):  # gunicorn refuses it too, for its own reason
        allowed = allowed | ALLOWED_STATUS.get(case["gunicorn_error"], DEFAULT_ALLOWED_STATUS)
    calls_before = len(app_calls(srv))
    deadline = time.monotonic() + CASE_DEADLINE
    with socket.create_connection(("127.0.0.1", srv.port), timeout=IO_TIMEOUT) as sock:
        _send(sock, raw)
        # Half-close: a server still waiting for more of the request sees EOF
        # instead of waiting for its timeout; its answer can still come back.
        _shutdown_write(sock)
        reader = ResponseReader(sock, deadline)
        try:
            resp = reader.response()
        except socket.timeout:
            _fail(srv, f"{error}: the server neither answered nor closed the connection")
        except ConnectionClosed as exc:
            _fail(srv, f"{error}: truncated response: {exc}")
        if resp is not None:
            try:
                reader.rest()
            except socket.timeout:
                _fail(srv, f"{error}: answered {resp[0]} but kept the connection open "
                           f"(it must close after rejecting a request)")

    calls = app_calls(srv)[calls_before:]
    assert not calls, (
        f"{error}: the request reached the app: "
        f"{_describe(calls)}")
    if resp is None:
        if error in INCOMPLETE_AT_EOF:
            return  # an incomplete request ended by EOF: closing is an answer
        how = "reset" if reader.reset else "closed"
        _fail(srv, f"{error}: connection {how} without a response "
                   f"(expected {sorted(allowed)})")
    status, _headers, body = resp
    assert status in allowed, (
        f"{error}: answered {status}, expected one of {sorted(allowed)}: {body[:300]!r}")


@pytest.mark.parametrize("case", PARAMS)
def test_corpus_case(case, corpus_servers):
    if case is None:
        pytest.fail(CORPUS_ERROR, pytrace=False)
    cfg = case.get("cfg") or {}
    missing = sorted(set(cfg) - SUPPORTED_SETTINGS)
    if missing:
        pytest.skip("server lacks setting(s): " + ", ".join(
            f"{name}={cfg[name]!r}" for name in missing))
    srv = corpus_servers.get(cfg)
    srv.stderr_mark = len(srv.stderr())
    raw = base64.b64decode(case["raw_b64"])
    rule = stricter_rule(raw)
    if rule is not None:
        case = {**case, "kind": "invalid", "error": rule,
                "gunicorn_error": case.get("error") if case["kind"] == "invalid" else None}
    elif case["kind"] == "valid":
        # A later pipelined request may break a rule: those before it are
        # served, it is refused, and the connection ends.
        for i, request in enumerate(case["expect"]):
            rule = rule_broken_by(request)
            if rule is not None:
                _replay_valid(srv, {**case, "expect": case["expect"][:i]}, raw,
                              refused_with=STRICTER_THAN_GUNICORN[rule])
                return
    if case["kind"] == "valid":
        _replay_valid(srv, case, raw)
    elif case["kind"] == "invalid":
        _replay_invalid(srv, case, raw)
    else:
        pytest.fail(f"unknown corpus kind {case['kind']!r}")
