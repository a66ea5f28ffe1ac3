"""The load generator: keep-alive HTTP/1.1 over gevent sockets.

One greenlet per simulated client, each on its own persistent connection,
sending a pre-encoded request and reading the answer by Content-Length.
It parses nothing it does not need, so on a 2-core machine shared with the
server it costs far less CPU per request than requests/urllib would, and it
is the same client for every figure (probe and transfers alike).
No monkey-patching: only this module's sockets are cooperative.
"""
import time
from collections import Counter
from dataclasses import dataclass, field

import gevent
from gevent import socket

from timpe.auth import client
from timpe.bench.percentiles import percentile


class HttpError(Exception):
    pass


def request_bytes(method, path, host, body=b"", content_type="application/json", key=None):
    """The request, sending the API key ``key`` if any (timpe.auth.client)."""
    head = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: keep-alive"]
    head += [f"{name}: {value}" for name, value in client.headers(key).items()]
    if body or method in ("POST", "PUT"):
        head += [f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode("ascii") + body


class Connection:
    """One persistent connection; reconnects when the server closed it."""

    def __init__(self, host, port, timeout=60):
        self.address, self.timeout = (host, port), timeout
        self.sock, self.buffer = None, b""

    def close(self):
        if self.sock is not None:
            self.sock.close()
        self.sock, self.buffer = None, b""

    def exchange(self, raw):
        """Send one request; return (status, body bytes)."""
        for attempt in (1, 2):
            fresh = self.sock is None
            if fresh:
                self.sock = socket.create_connection(self.address, timeout=self.timeout)
            try:
                self.sock.sendall(raw)
                return self._response()
            except (ConnectionError, HttpError):
                self.close()
                # Only a reused connection may have been closed by the peer
                # before it read our request (keep-alive timeout): retry once.
                if fresh or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _read_more(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise HttpError("connection closed mid-response")
        self.buffer += chunk

    def _response(self):
        while b"\r\n\r\n" not in self.buffer:
            self._read_more()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length, close = 0, False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and value.strip().lower() == "close":
                close = True
        while len(self.buffer) < length:
            self._read_more()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        if close:
            self.close()
        return status, body


@dataclass
class Result:
    """What one load run saw."""
    count: int = 0
    elapsed: float = 0.0
    latencies: list = field(default_factory=list)
    kinds: Counter = field(default_factory=Counter)  # "http 201", "ConnectionResetError" ...
    bodies: list = field(default_factory=list)        # kept only when asked

    @property
    def rate(self):
        return self.count / self.elapsed if self.elapsed else 0.0

    def ok(self):
        return sum(n for k, n in self.kinds.items() if k.startswith("http 2"))

    @classmethod
    def merged(cls, results):
        """One Result of several runs, one after the other."""
        total = cls()
        for r in results:
            total.count += r.count
            total.elapsed += r.elapsed
            total.latencies += r.latencies
            total.kinds.update(r.kinds)
            total.bodies += r.bodies
        return total

    def percentile(self, p):
        return percentile(self.latencies, p)


def run(host, port, requests, concurrency, keep=False, progress=None, timeout=60):
    """Send every request of ``requests`` (an iterable of raw bytes) over
    ``concurrency`` keep-alive connections; return a Result."""
    result, source = Result(), iter(requests)

    def client():
        conn = Connection(host, port, timeout)
        try:
            for raw in source:  # the greenlets share the iterator
                started = time.perf_counter()
                try:
                    status, body = conn.exchange(raw)
                except (OSError, HttpError) as exc:
                    result.kinds[type(exc).__name__] += 1
                    conn.close()
                    continue
                result.latencies.append(time.perf_counter() - started)
                result.kinds[f"http {status}"] += 1
                if keep:
                    result.bodies.append((status, body))
                if progress is not None:
                    progress(1)
        finally:
            conn.close()

    started = time.perf_counter()
    gevent.joinall([gevent.spawn(client) for _ in range(concurrency)], raise_error=True)
    result.elapsed = time.perf_counter() - started
    result.count = sum(result.kinds.values())
    return result
