"""A store whose searches lag, as an eventually consistent one's may.

``newest`` is a search (CrateDB answers it from an index refreshed about
once a second), so it may return an older row of the range, or none, while
a newer one exists. This wrapper makes the real store's answer lag at
random, with rows that really exist; every other primitive is untouched.
"""
import random

from timpe.store.schema import table


class LaggingStore:
    def __init__(self, store, seed=0, current=0.3, nothing=0.3):
        self.store, self.rnd = store, random.Random(seed)
        self.current, self.nothing = current, nothing
        self.lagged = 0

    def __getattr__(self, name):
        return getattr(self.store, name)

    def newest(self, table_name, prefix, since=None):
        row = self.store.newest(table_name, prefix, since)
        draw = self.rnd.random()
        if row is None or draw < self.current:
            return row
        self.lagged += 1
        if draw < self.current + self.nothing:
            return None
        last = table(table_name).pk[-1]
        older = self.rnd.randint(since or 0, row[last])
        return self.store.get(table_name, (*prefix, older))


class InFlightStore:
    """A store whose gets may not yet show the write that beat an insert.

    On CrateDB the winner of an insert-if-absent race may still be in
    flight when the loser reads the key: decided on the primary, not yet on
    the replica the get is served from. Here, after an insert loses, the
    next ``misses`` gets of that key (alone or among others) find no row, as
    such a get would; so do
    the first gets of the keys in ``hidden`` ({(table, key): count}).
    """

    def __init__(self, store, misses=2, hidden=None):
        self.store, self.misses = store, misses
        self._hidden = dict(hidden or {})
        self.hid = 0

    def __getattr__(self, name):
        return getattr(self.store, name)

    def insert(self, table_name, row):
        outcome = self.store.insert(table_name, row)
        if not outcome:
            key = tuple(row[c] for c in table(table_name).pk)
            self._hidden.setdefault((table_name, key), self.misses)
        return outcome

    def _hides(self, table_name, key):
        """Whether this read of ``key`` misses (and counts the miss)."""
        left = self._hidden.get((table_name, tuple(key)), 0)
        if left:
            self._hidden[(table_name, tuple(key))] = left - 1
            self.hid += 1
        return bool(left)

    def get(self, table_name, key):
        return None if self._hides(table_name, key) else self.store.get(table_name, key)

    def get_many(self, table_name, keys):
        """As many gets: a hidden key is left out, and counts as one miss."""
        shown = [tuple(key) for key in keys if not self._hides(table_name, key)]
        return self.store.get_many(table_name, shown) if shown else []
