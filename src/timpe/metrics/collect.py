"""What a node counts, and where it is counted."""
import time

from timpe.metrics import instruments as m
from timpe.metrics.local import LocalCounter, LocalHistogram
from timpe.metrics.measured import MeasuredStore


class Metrics:
    """One per app (so one per worker process)."""

    def __init__(self):
        self.requests = LocalCounter(m.REQUESTS)
        self.request_seconds = LocalHistogram(m.REQUEST_SECONDS, m.REQUEST_BUCKETS)
        self.phase2_seconds = LocalHistogram(m.PHASE2_SECONDS, m.REQUEST_BUCKETS)
        self.ended = LocalCounter(m.TRANSFERS_ENDED)
        self.store_seconds = LocalHistogram(m.STORE_SECONDS, m.STORE_BUCKETS)
        self.lost = LocalCounter(m.STORE_LOST)
        self.store_errors = LocalCounter(m.STORE_ERRORS)
        self.gc_seconds = LocalHistogram(m.GC_SECONDS, m.STORE_BUCKETS)
        self._local = (self.requests, self.request_seconds, self.phase2_seconds, self.ended,
                       self.store_seconds, self.lost, self.store_errors, self.gc_seconds)
        self._store, self._sent = None, ({}, {})

    def flush(self):
        for local in self._local:
            local.flush()
        if self._store is not None:  # what the store was sent since the last flush
            sent = self._store.sent
            for metric, counts, seen in ((m.STORE_REQUESTS, sent.requests, self._sent[0]),
                                         (m.STORE_REQUEST_ROWS, sent.rows, self._sent[1])):
                for kind, n in list(counts.items()):
                    if n > seen.get(kind, 0):
                        metric.labels(kind).inc(n - seen.get(kind, 0))
                        seen[kind] = n

    def measured(self, store):
        self._store = store
        self._sent = (dict(store.sent.requests), dict(store.sent.rows))  # not this node's
        return MeasuredStore(store, self)

    def phase2(self, txn, seconds):
        self.phase2_seconds.observe((), seconds)

    def transfer_ended(self, txn):
        self.ended.add((txn["state"],))

    def recovery_pass(self, outcome, seconds, tally=None, found=()):
        """Once a pass, so prometheus_client directly. ``found``: the
        transfers it resumed, as it found them."""
        m.RECOVERY_PASSES.labels(outcome).inc()
        m.RECOVERY_SECONDS.observe(seconds)
        m.RECOVERY_LAST.set(time.time())
        for txn in found:
            m.RECOVERY_RESUMED.labels(txn["state"]).inc()
        if tally is not None:
            self.pending(tally)

    @staticmethod
    def pending(tally, now=None):
        """``tally``: {state: (count, oldest timestamp in ms)} of every pending state."""
        now = time.time() if now is None else now
        for state, (count, oldest) in tally.items():
            m.PENDING.labels(state).set(count)
            m.PENDING_OLDEST.labels(state).set(
                max(0.0, now - oldest / 1000) if count and oldest is not None else 0)
