"""One app node as `bin/app` and supervisor run it (gunicorn, timpe's gevent
worker), on a port of its own: keep-alive, the idle timeout, the access log
only when asked, each answer in one write."""
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from timpe.bench import load
from timpe.bench.rss import children
from timpe.cli.node import gunicorn_argv
from timpe.store import store_from_settings
from timpe.topology import private

from tests import tracing

PROBE = load.request_bytes("GET", "/probe_status", "127.0.0.1")


@pytest.fixture(scope="module")
def ini(tmp_path_factory):
    from pyramid.paster import get_appsettings

    prepared = private.prepare(tmp_path_factory.mktemp("node"), identifier="timpe-e2e-node")
    store = store_from_settings(get_appsettings(str(prepared.ini)))
    store.setup()
    store.close()
    return prepared.ini


def started(ini, access_log):
    port = private.free_ports(1)[0]
    argv = gunicorn_argv(ini, port, 1, access_log=access_log)
    node = subprocess.Popen([str(Path(sys.executable).parent / argv[0]), *argv[1:]],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return node, port
        except OSError:
            time.sleep(0.1)
    node.kill()
    raise AssertionError(f"the node did not listen on {port}: {node.communicate()[0]!r}")


def stopped(node):
    node.terminate()
    return node.communicate(timeout=30)[0].decode()


@pytest.mark.parametrize("asked", [True, False])
def test_an_access_record_only_when_asked(ini, asked):
    node, port = started(ini, asked)
    try:
        result = load.run("127.0.0.1", port, [PROBE] * 3, 1)
    finally:
        output = stopped(node)
    assert result.kinds == {"http 200": 3}
    records = [line for line in output.splitlines() if '"GET /probe_status HTTP/1.1" 200' in line]
    assert len(records) == (3 if asked else 0), output


def test_a_connection_is_kept_alive_and_closed_once_idle(ini):
    node, port = started(ini, False)
    try:
        conn = load.Connection("127.0.0.1", port, timeout=10)
        assert conn.exchange(PROBE)[0] == 200
        first = conn.sock
        time.sleep(0.5)  # within gunicorn's keepalive (2 s): the same connection
        assert conn.exchange(PROBE)[0] == 200
        assert conn.sock is first
        time.sleep(3.5)  # past it: the node has closed it
        first.settimeout(5)
        assert first.recv(1) == b""
        conn.close()
        # ... and it serves the next connection.
        assert load.run("127.0.0.1", port, [PROBE] * 5, 5).kinds == {"http 200": 5}
    finally:
        stopped(node)


def test_each_answer_goes_out_in_one_write(ini, tmp_path):
    """Head and body in one system call: one TCP segment, one wake-up of
    HAProxy. An error's too."""
    node, port = started(ini, False)
    asked = [PROBE, load.request_bytes("GET", "/no/such/path", "127.0.0.1")]
    try:
        assert load.run("127.0.0.1", port, [PROBE], 1).kinds == {"http 200": 1}  # worker up
        worker, = children(node.pid)
        with tracing.attached(worker, tmp_path / "strace.log",
                              ("sendto", "sendmsg", "write", "writev"),
                              lambda: load.run("127.0.0.1", port, [PROBE], 1), size=4096) as lines:
            result = load.run("127.0.0.1", port, asked, 1)
            sent = [line for line in lines() if "<socket:" in line or "<TCP" in line]
    finally:
        stopped(node)
    assert result.kinds == {"http 200": 1, "http 404": 1}
    assert len(sent) == 2, sent
    probe, missing = sent
    assert '"HTTP/1.1 200 ' in probe and r'\r\n\r\nOK", ' in probe, probe
    assert '"HTTP/1.1 404 ' in missing and '\\"status\\": \\"failed\\"' in missing, missing


def test_heads_out_of_bounds_are_refused_and_odd_ones_served(ini):
    """The node's head parser (timpe.heads): too many lines or one too long
    is a 400, and a head the email parser reads (a folded line, a line
    naming no field) is served as before."""
    node, port = started(ini, False)

    def first_line(head):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(b"GET /probe_status HTTP/1.1\r\nHost: 127.0.0.1\r\n" + head + b"\r\n")
            return conn.recv(4096).split(b"\r\n")[0]
    try:
        assert load.run("127.0.0.1", port, [PROBE], 1).kinds == {"http 200": 1}  # worker up
        many = b"".join(b"X-%d: 1\r\n" % i for i in range(120))
        assert first_line(many) == b"HTTP/1.1 400 Bad Request"
        assert first_line(b"X-Long: " + b"a" * 70_000 + b"\r\n") == b"HTTP/1.1 400 Bad Request"
        assert first_line(b"X-Folded: a\r\n b\r\n") == b"HTTP/1.1 200 OK"
        assert first_line(b"no field named here\r\n") == b"HTTP/1.1 200 OK"
    finally:
        stopped(node)
