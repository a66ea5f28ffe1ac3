"""gunicorn's gevent worker for the app nodes, serving HTTP with gevent's
own server (pywsgi) rather than gunicorn's parser.

gunicorn's default gevent worker parses each request in Python of its own.
Measured through HAProxy on SQLite, both nodes, in alternating runs: a
probe cost every process 420 µs of CPU against 290, an immediate transfer
1,470 against 1,325 (docs/benchmarks.rst).

What this adds to gunicorn's pywsgi worker:

* a response's head and body go out in one write: pywsgi, like gunicorn's
  default worker, writes them apart, two TCP segments, each a system call
  here and a wake-up of HAProxy;
* a connection idle between two requests for gunicorn's ``keepalive``
  seconds is closed, as gunicorn's default worker does; pywsgi would keep
  it open for ever, holding one of the worker's ``--worker-connections``;
* no access record is built unless an access log was asked for
  (timpe.node_logging), as with the default worker;
* the heads of requests, and of CrateDB's answers to the worker, are
  parsed by timpe.heads, not by the email package: 10 µs a head against
  35, the same result;
* a worker whose store was made again under it (timpe.store.identity)
  stops taking requests, ends the ones under way and exits; gunicorn starts
  a new one, which keeps nothing of the old store.
"""
import http.client

from gevent.pywsgi import OldMessage
from gunicorn.workers.ggevent import GeventPyWSGIWorker, PyWSGIHandler

from timpe import heads
from timpe.store import identity


class Handler(PyWSGIHandler):
    #: Seconds a connection may wait for its next request (the worker sets
    #: it from gunicorn's keepalive setting).
    idle = 2.0
    #: The head of a response while its first part of the body is added.
    _head = None

    def _write_with_headers(self, data):
        self._head = bytearray()
        try:
            super()._write_with_headers(data)
            whole = self._head
        finally:
            self._head = None
        self._sendall(whole)

    def _sendall(self, data):
        if self._head is not None:
            self._head += data
        else:
            super()._sendall(data)

    def read_requestline(self):
        # Only the wait for a request is bounded: a request under way reads
        # its body at the pace HAProxy forwards it.
        self.socket.settimeout(self.idle)
        try:
            return super().read_requestline()
        finally:
            self.socket.settimeout(None)

    def MessageClass(self, fp, *args):
        # As pywsgi's own: a line too long is a status its caller answers.
        try:
            return heads.parse(fp, OldMessage)
        except http.client.LineTooLong:
            message = OldMessage()
            message.status = "Line too long"
            return message

    def log_request(self):
        if self.server.log.access_log_enabled:
            super().log_request()


class Worker(GeventPyWSGIWorker):
    wsgi_handler = Handler

    def init_process(self):
        Handler.idle = float(self.cfg.keepalive)
        # http.client's responses look the parser up here at each head.
        http.client.parse_headers = heads.parse
        identity.when_replaced(self._start_over)
        super().init_process()

    def _start_over(self):
        if self.alive:
            self.log.warning("the store was made again under this worker: it starts over")
            self.alive = False
