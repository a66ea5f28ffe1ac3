"""Starting a topology where a port it needs is taken: said at once and
by name, or, where a server fails anyway, with the end of its log."""
import socket

import pytest

from timpe.topology import private
from timpe.topology.instance import Topology, TopologyError


@pytest.fixture
def prepared(tmp_path):
    return private.prepare(tmp_path / "home", identifier="timpe-e2e-start-up",
                           startsecs=1)


@pytest.fixture
def listening():
    """Listen on a port, as a process other than the topology would."""
    sockets = []

    def listen(port):
        sock = socket.socket()
        sock.bind(("127.0.0.1", port))
        sock.listen()
        sockets.append(sock)
    yield listen
    for sock in sockets:
        sock.close()


def test_a_port_in_use_is_named_and_nothing_starts(prepared, listening):
    listening(prepared.ports.haproxy)
    listening(prepared.supervisor_port)
    with pytest.raises(TopologyError) as raised:
        with private.running(prepared):
            pass
    assert (f"port {prepared.ports.haproxy} (HAProxy), "
            f"port {prepared.supervisor_port} (supervisord)") in str(raised.value)
    assert prepared.topology.supervisord_pid() is None
    assert private.processes_under(prepared.home) == []


def test_a_server_that_cannot_start_says_why(prepared, listening):
    # No look at the ports first: HAProxy finds its own taken, and fails.
    unchecked = Topology(prepared.topology.conf, prepared.topology.var,
                         app_config=prepared.ini)
    listening(prepared.ports.haproxy)
    try:
        with pytest.raises(TopologyError) as raised:
            unchecked.start(timeout=120)
        said = str(raised.value)
        assert "'haproxy': 'FATAL'" in said
        assert "haproxy: [ALERT]" in said and "Address already in use" in said, said
    finally:
        unchecked.stop()
    assert private.processes_under(prepared.home) == []
