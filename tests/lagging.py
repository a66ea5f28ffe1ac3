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
