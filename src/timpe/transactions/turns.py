"""Turns: within one process, one transfer at a time works on a user's ledger.

Two transfers of one user that a process runs at once would both claim the
seq after the head they both found, and one would have to claim again
(under the benchmark's load a claim was taken in about half the transfers
on CrateDB, each costing four more statements). Taking turns, the second
starts from the row the first wrote; a turn is given back as soon as the
user's row is written. It is an optimisation, never a rule
of the protocol: the two app nodes still race each other, and the store's
insert-if-absent still decides every seq.
"""
import contextlib
import threading

from timpe.errors import StoreUnavailable


class Turns:
    """Make it in the process that uses it, after gevent's patching: waiting
    for a turn then yields to the other greenlets."""

    def __init__(self):
        self._users = {}  # user id -> [its lock, callers holding or waiting]
        self._lock = threading.Lock()

    def __len__(self):
        return len(self._users)

    def free(self, *user_ids):
        """No caller holds or waits for the turn of any of ``user_ids``."""
        return not any(uid in self._users for uid in user_ids)

    @contextlib.contextmanager
    def taken(self, *user_ids, patience=None, give_up=None):
        """Hold the turn of every user of ``user_ids`` (in one order for
        every caller, so two callers never wait for each other); yield a
        function that gives one user's turn back early. Every ``patience``
        seconds (if given) a caller still waiting asks ``give_up()``; if it
        says so (or there is none), it raises StoreUnavailable: the one
        ahead is stuck on a store that cannot serve."""
        with self._lock:
            entries = {}
            for uid in sorted({u for u in user_ids if isinstance(u, str)}):
                entry = self._users.setdefault(uid, [threading.Lock(), 0])
                entry[1] += 1
                entries[uid] = entry
        held = {}

        def give_back(uid):
            lock = held.pop(uid, None)
            if lock is not None:
                lock.release()

        try:
            for uid, entry in entries.items():
                while not entry[0].acquire(timeout=-1 if patience is None else patience):
                    if give_up is None or give_up():
                        raise StoreUnavailable(f"store unavailable: the transfer ahead of this "
                                               f"one for user {uid} did not end within "
                                               f"{patience:g} s")
                held[uid] = entry[0]
            yield give_back
        finally:
            for uid in list(held):
                give_back(uid)
            with self._lock:
                for uid, entry in entries.items():
                    entry[1] -= 1
                    if not entry[1]:
                        del self._users[uid]
