"""The store's own ceiling, measured from threads with the store's own
client: what a transfer's round trips are measured against.

In a scratch table of its own (dropped afterwards), from ``threads``
threads for ``seconds`` each:

* primary-key gets, one key per statement;
* primary-key gets of ``keys`` keys per statement;
* single-row inserts;
* inserts, updates by primary key, and compare-and-sets (an update by
  primary key at the version read: what a transfer's claims are), each in
  bulk requests of ``bulk`` rows (CrateDB only: SQLite has no bulk
  request, its group commit is measured by the transfers).

    python -m timpe.bench.ceiling --config etc/app-crate.ini
"""
import argparse
import contextlib
import itertools
import threading
import time
import uuid

from timpe.store.sqlite import SQLiteStore

THREADS = 16


def _rate(threads, seconds, work):
    """Run ``work(thread, n)`` (returns units done) in ``threads`` threads
    for ``seconds``; units per second."""
    done, stop = [0] * threads, time.monotonic() + seconds

    def run(t):
        for n in itertools.count():
            if time.monotonic() >= stop:
                return
            done[t] += work(t, n)

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    started = time.monotonic()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(done) / (time.monotonic() - started)


class Scratch:
    """A table ``timpe_ceiling_<random>`` in the store's own SQL dialect."""

    def __init__(self, store):
        self.store = store
        self.crate = not isinstance(store, SQLiteStore)
        self.name = f"timpe_ceiling_{uuid.uuid4().hex[:8]}"
        self.ids = itertools.count()
        shards = " CLUSTERED INTO 6 SHARDS WITH (number_of_replicas = '0-1')" if self.crate else ""
        kind = "BIGINT" if self.crate else "INTEGER"
        store.sql(f"CREATE TABLE {self.name} (id TEXT PRIMARY KEY, v {kind}){shards}")

    def insert_sql(self):
        return f"INSERT INTO {self.name} (id, v) VALUES (?, ?)"

    def update_sql(self):
        return f"UPDATE {self.name} SET v = ? WHERE id = ?"

    def cas_sql(self):
        return (f"UPDATE {self.name} SET v = ? WHERE id = ? AND _seq_no = ? "
                "AND _primary_term = ?")

    def version_sql(self, keys):
        return (f"SELECT id, _seq_no, _primary_term FROM {self.name} WHERE "
                + " OR ".join(["(id = ?)"] * keys))

    def get_sql(self, keys):
        return f"SELECT id, v FROM {self.name} WHERE " + " OR ".join(["(id = ?)"] * keys)

    def fill(self, count):
        rows = [(f"k{i}", i) for i in range(count)]
        if self.crate:
            for start in range(0, count, 500):
                self.store._execute_bulk(self.insert_sql(), [list(r) for r in rows[start:start + 500]])
            self.store.sql(f"REFRESH TABLE {self.name}")
        else:
            for row in rows:
                self.store.sql(self.insert_sql(), row)
        return count

    def drop(self):
        self.store.sql(f"DROP TABLE {self.name}")


def measure(store, seconds=5, threads=THREADS, keys=10, bulk=50, say=print):
    """Measure and ``say`` each figure; return {figure: rate}."""
    scratch = Scratch(store)
    figures = {}
    try:
        filled = scratch.fill(5000)

        def get(t, n):
            store.sql(scratch.get_sql(1), [f"k{(t * 7919 + n) % filled}"])
            return 1

        def get_many(t, n):
            store.sql(scratch.get_sql(keys), [f"k{(t * 7919 + n * keys + i) % filled}"
                                              for i in range(keys)])
            return keys

        def insert(t, n):
            store.sql(scratch.insert_sql(), [f"i{t}-{n}-{uuid.uuid4().hex[:6]}", n])
            return 1

        def update_bulk(t, n):
            rows = [[n, f"k{(t * 7919 + n * bulk + i) % filled}"] for i in range(bulk)]
            store._execute_bulk(scratch.update_sql(), rows)
            return bulk

        def cas_bulk(t, n):
            # Each thread its own keys (no race lost to another thread), read
            # for their versions, then compare-and-set in one bulk request:
            # what the protocol does; the look-up is part of the figure.
            share = filled // threads
            mine = [f"k{t * share + (n * bulk + i) % share}" for i in range(bulk)]
            found = store.sql(scratch.version_sql(bulk), mine)[1]
            outcomes = store._execute_bulk(scratch.cas_sql(), [[n, *row] for row in found])
            return sum(1 for o in outcomes if o is True)

        runs = [("primary-key gets/s, one key a statement", get),
                (f"primary-key gets/s, {keys} keys a statement (rows/s)", get_many),
                ("single-row inserts/s", insert)]
        if scratch.crate:
            runs.append((f"inserts in bulk requests of {bulk} rows (rows/s)",
                         _bulk_insert(store, scratch, bulk)))
            runs.append((f"updates by key in bulk requests of {bulk} rows (rows/s)",
                         update_bulk))
            runs.append((f"look-ups of {bulk} keys, then their compare-and-sets in one "
                         "bulk request (rows/s)", cas_bulk))
        for label, work in runs:
            figures[label] = _rate(threads, seconds, work)
            say(f"store ceiling, {threads} threads: {label}: {figures[label]:.0f}")
    finally:
        scratch.drop()
    return figures


def _bulk_insert(store, scratch, bulk):
    """Work for _rate: one bulk request of ``bulk`` new rows into ``scratch``."""
    def insert_bulk(t, n):
        rows = [[f"b{t}-{n}-{i}-{uuid.uuid4().hex[:6]}", i] for i in range(bulk)]
        store._execute_bulk(scratch.insert_sql(), rows)
        return bulk
    return insert_bulk


@contextlib.contextmanager
def bulk_inserts(store, threads=THREADS, bulk=50):
    """A scratch table while the block runs; yields ``rate(seconds)``, the
    rows/s of inserts in bulk requests of ``bulk`` rows from ``threads``
    threads, measured when called: beside another figure, the machine's
    drift hits both. Yields None for a store without bulk requests (SQLite)."""
    if isinstance(store, SQLiteStore):
        yield None
        return
    scratch = Scratch(store)
    try:
        scratch.fill(bulk)  # its shards serve before anything is timed
        yield lambda seconds: _rate(threads, seconds, _bulk_insert(store, scratch, bulk))
    finally:
        scratch.drop()


def main(argv=None):
    from timpe.cli import add_config_argument, open_store

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_config_argument(parser)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--threads", type=int, default=THREADS)
    args = parser.parse_args(argv)
    store = open_store(args.config)
    try:
        measure(store, args.seconds, args.threads)
    finally:
        store.close()


if __name__ == "__main__":
    main()
