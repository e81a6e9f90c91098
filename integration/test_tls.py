"""TLS with gunicorn's settings (--certfile, --keyfile, --ca-certs,
--cert-reqs, --ciphers, --ssl-version, the same keys in config files),
through real clients: Python's ssl and http.client, requests, curl and
openssl s_client, verifying against a CA this module makes."""
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import APPS, free_port, server_binary
from http_helpers import SyscallTrace, start_hardening
from proc_tools import APP_DIR, wait_for_workers, wait_until

FEATURES = APPS / "features"


# --------------------------------------------------------------------------
# A test PKI: a CA, two server certificates for localhost, a client
# certificate, and the server key encrypted with a password.

def _openssl(directory, *args):
    subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(d, "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=cppgunicorn test CA")

    def leaf(name, cn, extensions):
        _openssl(d, "req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj",
                 f"/CN={cn}")
        (d / f"{name}.ext").write_text(extensions)
        _openssl(d, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext")

    server_ext = "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
    leaf("server", "localhost", server_ext)
    leaf("server2", "localhost", server_ext)
    leaf("client", "test client", "extendedKeyUsage=clientAuth\n")
    _openssl(d, "pkey", "-in", "server.key", "-aes256", "-passout", "pass:secret",
             "-out", "encrypted.key")
    (d / "garbage.pem").write_text("not a certificate\n")
    return d


def tls_flags(pki, cert="server"):
    return ["--certfile", pki / f"{cert}.pem", "--keyfile", pki / f"{cert}.key"]


def client_context(pki, cert=None):
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    if cert:
        ctx.load_cert_chain(str(pki / f"{cert}.pem"), str(pki / f"{cert}.key"))
    return ctx


def https_get(port, pki, path="/", cert=None, timeout=10):
    conn = http.client.HTTPSConnection("localhost", port, context=client_context(pki, cert),
                                       timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def der_of(pem_path):
    return ssl.PEM_cert_to_DER_cert(pem_path.read_text())


@pytest.fixture
def tls_features(start_server, pki):
    return start_server("app:app", *tls_flags(pki), chdir=FEATURES)


# --------------------------------------------------------------------------
# Serving.

def test_https_with_gunicorns_flags_is_verified_and_says_https(tls_features, pki):
    srv = tls_features
    r = requests.get(f"https://localhost:{srv.port}/environ", verify=str(pki / "ca.pem"),
                     timeout=10)
    assert r.status_code == 200
    environ = r.json()
    assert environ["wsgi.url_scheme"] == "https"
    assert environ["SERVER_PORT"] == str(srv.port)
    assert f"Listening at: https://127.0.0.1:{srv.port}" in srv.stderr()
    assert "not acted upon" not in srv.stderr()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_over_tls_with_keep_alive(tls_features, pki):
    url = f"https://localhost:{tls_features.port}/length"
    out = subprocess.run(["curl", "-s", "--cacert", str(pki / "ca.pem"), url, url,
                          "-w", "%{http_code} %{num_connects}\n"],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    # Two answers on one connection: the second made no new connection.
    assert out.splitlines() == ["abcdef200 1", "abcdef200 0"]


def test_plain_http_to_the_tls_port_gets_a_plain_400_and_a_close(start_server, pki, tmp_path):
    calls = tmp_path / "calls.log"
    srv = start_server("app:app", *tls_flags(pki), chdir=APPS / "echo",
                       env={"ECHO_LOG": str(calls)})
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    assert data.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert data.endswith(b"The plain HTTP request was sent to HTTPS port\n")
    assert not calls.exists() or calls.read_text() == "", "nothing is served in the clear"


def _s_client(port, pki, *args):
    proc = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost",
         "-CAfile", str(pki / "ca.pem"), *args],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    return proc.returncode, proc.stdout + proc.stderr


def test_tls_versions_and_alpn_with_openssl_s_client(tls_features, pki):
    port = tls_features.port
    rc, out = _s_client(port, pki, "-tls1_1")
    # A failed handshake: s_client exits 1 with no cipher agreed.
    assert rc != 0 and "Cipher is (NONE)" in out, "TLS 1.1 is refused by default"
    rc, out = _s_client(port, pki, "-tls1_2", "-alpn", "http/1.1")
    assert rc == 0 and "New, TLSv1.2, Cipher is" in out, out
    assert "ALPN protocol: http/1.1" in out
    assert "Verify return code: 0 (ok)" in out
    rc, out = _s_client(port, pki, "-tls1_3", "-alpn", "h2")
    assert rc == 0 and "New, TLSv1.3, Cipher is" in out, out
    assert "No ALPN negotiated" in out  # h2 alone: no ALPN, the handshake goes on


def test_ssl_version_sets_the_minimum_version(start_server, pki):
    srv = start_server("app:app", *tls_flags(pki), "--ssl-version", "TLSv1_3", chdir=FEATURES)
    rc, out = _s_client(srv.port, pki, "-tls1_2")
    assert rc != 0 and "Cipher is (NONE)" in out
    rc, out = _s_client(srv.port, pki, "-tls1_3")
    assert rc == 0 and "New, TLSv1.3, Cipher is" in out


def _read_response(f):
    status = f.readline()
    headers = {}
    while (line := f.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = f.read(int(headers["content-length"]))
    else:
        body = b""
        while (size := int(f.readline().split(b";")[0], 16)) > 0:
            body += f.read(size)
            f.readline()
        f.readline()
    return status, headers, body


def test_pipelining_chunked_upload_large_and_file_bodies_over_tls(tls_features, pki):
    ctx = client_context(pki)
    with socket.create_connection(("127.0.0.1", tls_features.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            f = s.makefile("rb")
            # Two requests in one write: two answers, in order.
            s.sendall(b"GET /length HTTP/1.1\r\nHost: x\r\n\r\n"
                      b"GET /bytes?1000000 HTTP/1.1\r\nHost: x\r\n\r\n")
            status, _, body = _read_response(f)
            assert status.startswith(b"HTTP/1.1 200") and body == b"abcdef"
            status, _, body = _read_response(f)
            assert len(body) == 1000000 and body.startswith(b"01000000")
            # A chunked upload, read back by the app.
            s.sendall(b"POST /input?read HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
            status, _, body = _read_response(f)
            assert json.loads(body) == ["hel", "lo world", ""]
            # wsgi.file_wrapper: the file goes through the TLS writer.
            s.sendall(b"GET /file-wrapper HTTP/1.1\r\nHost: x\r\n\r\n")
            status, _, body = _read_response(f)
            assert body == (FEATURES / "app.py").read_bytes()


def test_a_file_body_over_tls_is_read_and_encrypted_not_sendfiled(start_server, pki, tmp_path):
    # sendfile(2) would put the file's plain bytes on a TLS connection: the
    # file wrapper's blocks go through the encrypting writer instead (one
    # app thread, where plain HTTP would use sendfile).
    data = os.urandom(2 * 1024 * 1024 + 5)
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    srv = start_hardening(start_server, tmp_path, *tls_flags(pki), "--threads", "1")
    (worker,) = wait_for_workers(srv.proc.pid, 1)
    assert https_get(srv.port, pki, "/pid") == (200, str(worker).encode())
    with SyscallTrace(worker, tmp_path) as trace:
        conn = http.client.HTTPSConnection("localhost", srv.port, context=client_context(pki),
                                           timeout=30)
        try:
            conn.request("GET", f"/file?path={path}&len=1")
            r = conn.getresponse()
            assert r.status == 200 and r.read() == data
        finally:
            conn.close()
        trace.wait_for_bytes(str(path), len(data))
    assert "sendfile" not in [name for name, _ in trace.calls(str(path))]
    assert trace.bytes_by_call(str(path)).get("read", 0) >= len(data)


def test_streamed_response_over_tls(tls_features, pki):
    status, body = https_get(tls_features.port, pki, "/closing")
    assert status == 200 and body


# --------------------------------------------------------------------------
# Client certificates.

@pytest.mark.parametrize("cert_reqs", ["1", "2"])
def test_client_certificates(start_server, pki, cert_reqs):
    srv = start_server("app:app", *tls_flags(pki), "--ca-certs", pki / "ca.pem",
                       "--cert-reqs", cert_reqs, chdir=FEATURES)
    assert https_get(srv.port, pki, "/length", cert="client") == (200, b"abcdef")
    if cert_reqs == "1":
        assert https_get(srv.port, pki, "/length") == (200, b"abcdef")
    else:
        # TLS 1.3 reports the missing certificate at the first read.
        with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
            https_get(srv.port, pki, "/length")


# --------------------------------------------------------------------------
# Handshake deadlines, load, and a worker killed under TLS clients.

def _client_hello():
    ctx = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


def _closed_within(sock, seconds, trickle=b""):
    """Sends `trickle` a byte every 0.5 s; returns how long until the
    server closed the connection, or None if it did not within `seconds`."""
    start = time.monotonic()
    sock.settimeout(0.5)
    i = 0
    while time.monotonic() - start < seconds:
        if i < len(trickle):
            try:
                sock.sendall(trickle[i:i + 1])
            except OSError:
                return time.monotonic() - start
            i += 1
        try:
            if sock.recv(4096) == b"":
                return time.monotonic() - start
        except socket.timeout:
            continue
        except OSError:
            return time.monotonic() - start
    return None


def test_a_silent_or_trickling_handshake_is_closed(start_server, pki):
    srv = start_server("app:app", *tls_flags(pki), "--timeout", "3", "--keep-alive", "1",
                       chdir=FEATURES)
    with socket.create_connection(("127.0.0.1", srv.port)) as s:
        took = _closed_within(s, 10)
        assert took is not None and took < 4, "a client that sends nothing is closed"
    hello = _client_hello()
    with socket.create_connection(("127.0.0.1", srv.port)) as s:
        # Half a ClientHello at once, then a byte every 0.5 s: the handshake
        # deadline (--timeout) ends it, however the bytes trickle.
        s.sendall(hello[:len(hello) // 2])
        took = _closed_within(s, 15, trickle=hello[len(hello) // 2:])
        assert took is not None and took < 6, took
    assert https_get(srv.port, pki, "/length") == (200, b"abcdef")


def test_200_concurrent_tls_keep_alive_connections(start_server, pki):
    srv = start_server("app:app", *tls_flags(pki), "-w", "2", "--keep-alive", "30",
                       chdir=FEATURES)
    ctx = client_context(pki)
    barrier = threading.Barrier(200, timeout=60)

    def client(_):
        conn = http.client.HTTPSConnection("localhost", srv.port, context=ctx, timeout=60)
        try:
            conn.connect()
            barrier.wait()  # all 200 are connected at once
            bodies = []
            for _ in range(3):
                conn.request("GET", "/length")
                bodies.append(conn.getresponse().read())
            return bodies
        finally:
            conn.close()

    with ThreadPoolExecutor(max_workers=200) as pool:
        results = list(pool.map(client, range(200)))
    assert all(r == [b"abcdef"] * 3 for r in results)


def test_kill_9_of_a_worker_leaves_the_other_tls_clients_working(start_server, pki):
    srv = start_server("app:app", *tls_flags(pki), "-w", "2", "--keep-alive", "60",
                       chdir=APP_DIR)
    ctx = client_context(pki)
    conns = {}
    deadline = time.monotonic() + 30
    while len(conns) < 2 and time.monotonic() < deadline:
        c = http.client.HTTPSConnection("localhost", srv.port, context=ctx, timeout=10)
        c.request("GET", "/pid")
        pid = int(c.getresponse().read().decode().split("=")[1])
        if pid in conns:
            c.close()
        else:
            conns[pid] = c
    assert len(conns) == 2, "connections on both workers"
    victim, survivor = list(conns)
    os.kill(victim, signal.SIGKILL)
    conns.pop(victim).close()
    for _ in range(3):
        conns[survivor].request("GET", "/pid")
        assert conns[survivor].getresponse().read() == f"pid={survivor}".encode()
    conns[survivor].close()
    wait_for_workers(srv.proc.pid, 2)
    assert https_get(srv.port, pki, "/pid")[0] == 200


# --------------------------------------------------------------------------
# Start-up checks: nothing is served, in the clear or not, with bad TLS.

def _fails_to_start(*args, cwd=None):
    port = free_port()
    proc = subprocess.run([server_binary(), "--bind", f"127.0.0.1:{port}", *map(str, args)],
                          capture_output=True, text=True, timeout=30, cwd=cwd)
    return proc.returncode, proc.stderr, port


@pytest.mark.parametrize("case", [
    "missing certfile", "missing keyfile", "mismatched key", "encrypted key", "bad ca_certs",
    "old ssl_version", "cert_reqs without ca_certs", "bad ciphers", "garbage certificate",
])
@pytest.mark.parametrize("check_config", [False, True])
def test_bad_tls_settings_stop_the_start_naming_setting_and_file(pki, case, check_config):
    flags, setting, named = {
        "missing certfile": (["--certfile", pki / "nope.pem", "--keyfile", pki / "server.key"],
                             "certfile", "nope.pem"),
        "missing keyfile": (["--certfile", pki / "server.pem", "--keyfile", pki / "nope.key"],
                            "keyfile", "nope.key"),
        "mismatched key": (["--certfile", pki / "server.pem", "--keyfile", pki / "server2.key"],
                           "keyfile", "does not match"),
        "encrypted key": (["--certfile", pki / "server.pem", "--keyfile", pki / "encrypted.key"],
                          "keyfile", "encrypted with a password"),
        "bad ca_certs": ([*tls_flags(pki), "--ca-certs", pki / "garbage.pem", "--cert-reqs", "2"],
                         "ca_certs", "garbage.pem"),
        "old ssl_version": ([*tls_flags(pki), "--ssl-version", "TLSv1"], "ssl_version",
                            "TLSv1"),
        "cert_reqs without ca_certs": ([*tls_flags(pki), "--cert-reqs", "2"], "cert_reqs",
                                       "ca_certs"),
        "bad ciphers": ([*tls_flags(pki), "--ciphers", "NO-SUCH-CIPHER"], "ciphers",
                        "NO-SUCH-CIPHER"),
        "garbage certificate": (["--certfile", pki / "garbage.pem", "--keyfile",
                                 pki / "server.key"], "certfile", "garbage.pem"),
    }[case]
    extra = ["--check-config"] if check_config else []
    rc, err, port = _fails_to_start(*flags, *extra, "--chdir", FEATURES, "app:app")
    assert rc == 1, err
    assert f"Invalid value for {setting}" in err and named in err, err
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_an_ssl_context_hook_is_refused(pki, tmp_path):
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text(f"certfile = {str(pki / 'server.pem')!r}\nkeyfile = {str(pki / 'server.key')!r}\n"
                    "def ssl_context(conf, default_ssl_context_factory):\n"
                    "    return default_ssl_context_factory()\n")
    rc, err, _ = _fails_to_start("-c", conf, "--chdir", FEATURES, "app:app")
    assert rc == 1 and "ssl_context" in err and "certfile" in err, err


@pytest.mark.parametrize("kind", ["py", "toml"])
def test_tls_keys_in_config_files(start_server, pki, tmp_path, kind):
    if kind == "py":
        conf = tmp_path / "gunicorn.conf.py"
        conf.write_text(f"certfile = {str(pki / 'server.pem')!r}\n"
                        f"keyfile = {str(pki / 'server.key')!r}\n"
                        "do_handshake_on_connect = True\nsuppress_ragged_eofs = True\n")
    else:
        conf = tmp_path / "cppgunicorn.toml"
        conf.write_text(f"certfile = {json.dumps(str(pki / 'server.pem'))}\n"
                        f"keyfile = {json.dumps(str(pki / 'server.key'))}\n"
                        "do_handshake_on_connect = true\n")
    srv = start_server("app:app", "-c", conf, chdir=FEATURES)
    assert https_get(srv.port, pki, "/length") == (200, b"abcdef")
    assert "not acted upon" not in srv.stderr()


# --------------------------------------------------------------------------
# HUP: new workers use the renewed certificate, with no failed request.

def test_hup_reloads_the_certificate_with_no_failed_request(start_server, pki, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    shutil.copy(pki / "server.pem", cert)
    shutil.copy(pki / "server.key", key)
    srv = start_server("app:app", "--certfile", cert, "--keyfile", key, "-w", "2",
                       chdir=FEATURES)
    ctx = client_context(pki)

    def served_cert():
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                s.sendall(b"GET /length HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                assert s.makefile("rb").readline().startswith(b"HTTP/1.1 200")
                return s.getpeercert(binary_form=True)

    assert served_cert() == der_of(pki / "server.pem")
    failures, done = [], threading.Event()

    def load():
        while not done.is_set():
            try:
                served_cert()
            except Exception as e:  # noqa: BLE001 - every failure counts
                failures.append(repr(e))

    t = threading.Thread(target=load)
    t.start()
    try:
        shutil.copy(pki / "server2.pem", cert)
        shutil.copy(pki / "server2.key", key)
        os.kill(srv.proc.pid, signal.SIGHUP)
        wait_until(lambda: served_cert() == der_of(pki / "server2.pem"), 30,
                   what="the renewed certificate")
    finally:
        done.set()
        t.join()
    assert failures == []
