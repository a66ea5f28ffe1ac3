"""Each worker's background loop: the recovery pass
(timpe.transactions.recovery) and the flush of the metrics the process
counted (timpe.metrics.local).

gunicorn's post_worker_init hook starts it in every worker (timpe.node_hooks),
after gevent's patching, so the loop is one greenlet whose waits and store
calls yield like a request's. With W workers a node, each worker waits W
intervals between passes, jittered by half either way so that the workers
and the nodes do not fall into step: a node makes about one pass an
interval whatever W, and passes of two workers or two nodes that meet on a
transfer converge as two /process calls do. (One worker alone making the
passes would need an election among them, for nothing the protocol needs.)

Stopping (SIGTERM): the loop asks between transfers whether the worker
still runs; a pass then starts no more, finishes the ones it started
(milliseconds each), and the worker_exit hook waits for that and flushes
the metrics a last time. A worker killed mid-pass leaves what any crash
leaves: a later pass, on this node or another, resumes it.
"""
import logging
import random
import threading
import time

from pyramid.settings import asbool

from timpe.errors import StoreUnavailable
from timpe.metrics import enabled as metrics_enabled

log = logging.getLogger(__name__)


class Background:
    def __init__(self, recovery, metrics=None):
        self.recovery, self.metrics = recovery, metrics
        self._stop = threading.Event()
        self._thread = None
        self._alive = lambda: True
        self._pause = recovery.interval
        self._failing = None  # what the store said when passes began to fail

    def start(self, alive=None, workers=1):
        """Run passes until stopped or ``alive()`` is False (a greenlet
        where gevent has patched threading, else a daemon thread)."""
        self._alive = alive or (lambda: True)
        self._pause = self.recovery.interval * max(1, int(workers))
        self._thread = threading.Thread(target=self._run, name="timpe-background", daemon=True)
        self._thread.start()

    def stop(self, timeout=10):
        """Ask the loop to stop; wait up to ``timeout`` s for its pass to end.
        Return True when it has."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self.metrics is not None:
            self.metrics.flush()
        return self._thread is None or not self._thread.is_alive()

    def stopping(self):
        return self._stop.is_set() or not self._alive()

    def _run(self):
        # The first pass within one pause: workers started together spread out.
        pause = random.uniform(0, self._pause)
        while not self._stop.wait(pause) and self._alive():
            self.tick()
            pause = self._pause * random.uniform(0.5, 1.5)

    def tick(self):
        """One pass, then the metrics' flush; never raises (a loop has no
        caller to tell: it logs and tries again next time)."""
        started = time.perf_counter()
        try:
            done = self.recovery.run_pass(self.stopping)
        except StoreUnavailable as exc:
            if str(exc) != self._failing:  # once, not every second
                self._failing = str(exc)
                log.warning("background passes fail until the store answers: %s", exc)
            self._record("unavailable", started)
        except Exception:
            log.exception("background pass failed")
            self._record("error", started)
        else:
            if self._failing is not None:
                self._failing = None
                log.info("background passes: the store answers again")
            if done.resumed:
                log.info("background pass resumed %d stale transfers: %d finished, %d failed",
                         len(done.resumed), sum(t["state"] == "finished" for t in done.ended),
                         sum(t["state"] == "failed" for t in done.ended))
            if done.expired:
                log.info("background pass voided %d expired holds", len(done.expired))
            self._record("ok", started, done)
        if self.metrics is not None:
            self.metrics.flush()

    def _record(self, outcome, started, done=None):
        if self.metrics is not None:
            self.metrics.recovery_pass(outcome, time.perf_counter() - started,
                                       done.tally if done else None, done.resumed if done else ())


def includeme(config):
    """``registry.background``: None when there is nothing to run."""
    settings = config.get_settings()
    recovery = config.registry.recovery
    wanted = asbool(settings.get("recovery.enabled", True)) or metrics_enabled(settings)
    metrics = getattr(config.registry, "metrics", None)
    config.registry.background = Background(recovery, metrics) if wanted else None
