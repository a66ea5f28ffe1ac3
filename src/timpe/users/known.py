"""The users rows one process has read, and the newest ledger row it has
seen of each, kept across requests.

A users row may be kept because of what it is: a registered user is never
removed (no request deletes one), and the one field that changes is
``head_seq``, a hint that may lag (timpe.ledger). A kept row whose hint
lags costs nothing on SQLite (the search is one index seek either way) and
a longer search range on CrateDB; its stale version token makes the hint's
compare-and-set fail once, after which the ledger reads the row again and
keeps that. A store destroyed under running nodes (bin/crate_cleanup) is
caught by the ledger too: a hint whose ledger row is gone makes it read the
users row again.

Saves an immediate transfer's phase 1 its read of both users rows (its
reads of both ledgers prove both users still stored; a queued transfer
reads the rows): about 5 % more transfers per probe through HAProxy,
measured (docs/benchmarks.rst).

A ledger row may be kept for the same reason: it never changes. The newest
one seen of a user is where the next head is looked for (timpe.ledger);
it is marked ``_kept``, so that the ledger asks the store whether it is
still there before it counts on it.
"""

#: At most this many rows are kept (the oldest kept goes first): about
#: 6 MB at this size.
SIZE = 10_000


class KnownUsers:
    def __init__(self, size=SIZE):
        self.size = size
        self._rows = {}
        self._heads = {}

    def __len__(self):
        return len(self._rows)

    def get(self, uid):
        """The kept row of ``uid``, or None."""
        return self._rows.get(uid) if isinstance(uid, str) else None

    def rows(self, uids):
        """The kept rows of ``uids`` as {id: row}, or None unless all are kept."""
        rows = self._rows
        try:
            return {uid: rows[uid] for uid in uids}
        except (KeyError, TypeError):  # TypeError: an id that is no string
            return None

    def keep(self, row):
        rows = self._rows
        if row["id"] not in rows and len(rows) >= self.size:
            del rows[next(iter(rows))]
        rows[row["id"]] = row

    def head(self, uid):
        """The newest ledger row of ``uid`` kept, marked ``_kept``; or None."""
        return self._heads.get(uid)

    def keep_head(self, row):
        heads, uid = self._heads, row["user_id"]
        kept = heads.get(uid)
        if kept is not None and kept["seq"] >= row["seq"]:
            return
        if kept is None and len(heads) >= self.size:
            del heads[next(iter(heads))]
        heads[uid] = {**row, "_kept": True}

    def forget(self, uid):
        """Drop what is kept of ``uid``: the store no longer has it."""
        self._rows.pop(uid, None)
        self._heads.pop(uid, None)
