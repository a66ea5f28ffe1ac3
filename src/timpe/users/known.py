"""The users rows one process has read, and the newest ledger row it has
seen of each, kept across requests.

A users row may be kept because of what it is: a registered user is never
removed (no request deletes one), and the one field that changes is
``head_seq``, a hint that may lag (timpe.ledger). A kept row whose hint
lags costs a wider look-ahead; its stale version token makes the hint's
compare-and-set fail once, after which the ledger reads the row again and
keeps that.

A ledger row may be kept for the same reason: it never changes. The newest
one seen of a user is where the next head is looked for (timpe.ledger),
and where the process's appender appends after (a head that has moved on
since costs a lost insert); it is marked ``_kept``, so that a balance read
asks the store whether it is still there before it counts on it.

What is kept is of the store the process writes to: a store destroyed
and made again under running nodes (bin/crate_cleanup) refuses the
process's first insert (timpe.store.identity), and the process starts
over. A user seen registered again (another registration time) makes the
process drop what it kept of the old one (``generation``), its
appender's rows included.
"""

#: At most this many rows are kept (the one kept or seen least lately
#: goes first): about 12 MB at this size. Above the benchmark's 10,000
#: zipf users and its others: each row dropped and needed again costs a
#: look-up of its own (docs/benchmarks.rst).
SIZE = 20_000


class KnownUsers:
    def __init__(self, size=SIZE):
        self.size = size
        self._rows = {}
        self._heads = {}
        self._generations = {}  # id -> how often what was kept of it was dropped

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
        """Keep ``row``, a users row as stored, read (or written) just now."""
        rows, uid = self._rows, row["id"]
        kept = rows.get(uid)
        if kept is not None and kept.get("timestamp") != row.get("timestamp"):
            # Registered again: the store was destroyed and filled under us.
            self.forget(uid)
            kept = None
        if kept is not None:
            del rows[uid]  # kept again: the newest kept
        elif len(rows) >= self.size:
            del rows[next(iter(rows))]
        rows[uid] = row

    def head(self, uid):
        """The newest ledger row of ``uid`` kept, marked ``_kept``; or None."""
        return self._heads.get(uid)

    def keep_head(self, row):
        heads, uid = self._heads, row["user_id"]
        kept = heads.get(uid)
        if kept is not None and kept["seq"] >= row["seq"]:
            return  # as kept: rows never change, and the kept one may be known durable
        if kept is not None:
            del heads[uid]  # a newer one: the newest kept
        elif len(heads) >= self.size:
            del heads[next(iter(heads))]
        heads[uid] = {**row, "_kept": True}

    def forget(self, uid):
        """Drop what is kept of ``uid``: the store no longer has it."""
        self._rows.pop(uid, None)
        self._heads.pop(uid, None)
        self._generations[uid] = self._generations.get(uid, 0) + 1

    def generation(self, uid):
        """How often what was kept of ``uid`` was dropped: what others keep
        of it (an appender's rows) is stale once this moved on."""
        return self._generations.get(uid, 0)
