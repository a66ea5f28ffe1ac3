"""The ports a throw-away topology takes, and why they are where they are."""
import socket

from timpe.topology import private


def test_free_ports_are_distinct_bindable_and_outside_the_ephemeral_range():
    first, last = private.ephemeral_range()
    for _ in range(20):
        ports = private.free_ports(6)
        assert len(set(ports)) == 6
        for port in ports:
            assert port >= private.LOWEST_PORT
            assert not first <= port <= last, (port, first, last)
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", port))


def test_a_port_in_use_is_not_handed_out(monkeypatch):
    first, last = private.ephemeral_range()
    port = private.free_ports(1)[0]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        # The port in use is the only candidate left.
        monkeypatch.setattr(private, "LOWEST_PORT", port)
        monkeypatch.setattr(private, "ephemeral_range", lambda: (port + 1, 65535))
        # None left outside the kernel's range: the kernel picks one.
        [picked] = private.free_ports(1)
        assert picked != port and first <= picked <= last
    assert private.free_ports(1) == [port]  # once let go
