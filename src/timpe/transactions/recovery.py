"""Recovery without an operator: each node resumes, in the background, the
phase-2 transfers that have not moved for a grace period.

A transfer in phase 2 (``in progress``, ``committed``) whose node died stays
there, its sender debited and its recipient not yet credited. Any node may
resume any transfer at any step, also while another one works on it
(timpe.transactions.protocol), so each node looks for such transfers on its
own and completes them as POST /process does, through
TransactionService.complete_all: two nodes doing it at once converge like
two /process calls.

A pass does bounded work, the same on every store:

1. one aggregate: the pending transfers counted by state, with the oldest
   creation time of each (the metrics' pending gauges). When no transfer
   of a state resumed was created before the cutoff, none can have stood
   still since before it, and the pass ends here: under load that is one
   statement a pass;
2. else a search for at most ``batch`` transfers of those states, least
   recently moved first, and a look-up of those it found by primary key:
   a search may show an old version of a row (CrateDB's shows what its
   last refresh made visible, so a transfer shows there a refresh after it
   stopped at the latest: the pass is repeated, so that is fine), the row
   as stored decides;
3. phase 2 for those that have not moved for ``grace`` seconds, none
   started after ``budget`` seconds or once the worker is stopping.

The grace period is measured on the node's clock against the ``updated``
another node's clock wrote: it must exceed the nodes' clock skew, and the
longest a live step stands still (a store call's timeout).

``initial`` transfers wait for POST /process, as the seed has it, unless
``recovery.initial = true``.

Holds past their expiry (timpe.transactions.holds) are voided by the same
passes: when the aggregate of step 1 counts a ``held`` transfer, a search
for the ones that expire first (at most ``batch``), a look-up of those
past their expiry by key, and a void of each still ``held``: the
compare-and-set from ``held`` decides between it and a client's post.
"""
import time
from collections import namedtuple

from pyramid.settings import asbool

from timpe.ledger import now_ms
from timpe.store.schema import TRANSACTIONS
from timpe.transactions.protocol import HELD, INITIAL, PENDING, PHASE2

#: The states a pass counts: the pending ones, and the holds it may void.
COUNTED = (*PENDING, HELD)

#: Defaults of the settings ``recovery.*`` (etc/app.ini says why).
GRACE = 5.0
INTERVAL = 1.0
BATCH = 100
#: Seconds after which a pass starts no more transfers.
BUDGET = 5.0


#: What a pass saw and did: the pending transfers (and holds) by state
#: ({state: (count, oldest timestamp in ms or None)}), the stale ones it
#: resumed as it found them, the same as they ended, and the holds it
#: voided for their expiry, as they ended.
Pass = namedtuple("Pass", "tally resumed ended expired", defaults=((),))


class Recovery:
    def __init__(self, store, service, grace=GRACE, interval=INTERVAL, batch=BATCH,
                 initial=False, enabled=True, budget=BUDGET):
        """``service(store)``: a TransactionService, as a request has one."""
        self.store, self.service = store, service
        self.grace, self.interval, self.batch = float(grace), float(interval), int(batch)
        self.enabled, self.budget = enabled, float(budget)
        self.states = (INITIAL, *PHASE2) if initial else PHASE2
        if self.grace < 0 or self.interval <= 0 or self.batch < 1:
            raise ValueError("recovery.grace must be >= 0, recovery.interval > 0 "
                             "and recovery.batch >= 1")

    @classmethod
    def from_settings(cls, settings, store, service):
        return cls(store, service,
                   grace=settings.get("recovery.grace", GRACE),
                   interval=settings.get("recovery.interval", INTERVAL),
                   batch=settings.get("recovery.batch", BATCH),
                   initial=asbool(settings.get("recovery.initial", False)),
                   enabled=asbool(settings.get("recovery.enabled", True)))

    def run_pass(self, stopping=None):
        """One pass (with recovery turned off, only its count); return a Pass.
        ``stopping()``: True once no more transfers should be started."""
        found = self.store.count_by(TRANSACTIONS.name, "state", where={"state": list(COUNTED)},
                                    least="timestamp", fresh=False)
        tally = {state: found.get(state, (0, None)) for state in COUNTED}
        if not self.enabled:
            return Pass(tally, [], [])
        deadline = time.monotonic() + self.budget

        def due():
            return time.monotonic() >= deadline or (stopping is not None and stopping())

        expired = self._expired() if tally[HELD][0] else []
        if expired:
            expired = self.service(self.store).expire_all(expired, due)
        cutoff = now_ms() - int(self.grace * 1000)
        states = [s for s in self.states if tally[s][0] and tally[s][1] <= cutoff]
        stale = self._stale(states, cutoff) if states else []
        if not stale:
            return Pass(tally, [], [], expired)
        ended = self.service(self.store).complete_all(stale, due)
        started = {t["id"] for t in ended}
        return Pass(tally, [t for t in stale if t["id"] in started], ended, expired)

    def _expired(self):
        """The held transfers past their expiry, as stored now, the ones
        that expired first first."""
        now = now_ms()
        return self._found([HELD], "expires", lambda t: t["expires"] <= now)

    def _stale(self, states, cutoff):
        """The transfers of ``states`` that have not moved since ``cutoff``
        (ms), as stored now, least recently moved first."""
        return self._found(states, "updated", lambda t: t["updated"] <= cutoff)

    def _found(self, states, column, due):
        """At most ``batch`` transfers of ``states`` first in the order of
        ``column``, found by a search, that are ``due`` as stored now (read
        by key: a search may show an old version of a row)."""
        rows = self.store.scan(TRANSACTIONS.name, where={"state": states},
                               order_by=(column, "id"), limit=self.batch)
        keys = [(t["id"],) for t in rows if due(t)]
        if not keys:
            return []
        current = self.store.get_many(TRANSACTIONS.name, keys)
        return sorted((t for t in current if t["state"] in states and due(t)),
                      key=lambda t: (t[column], t["id"]))
