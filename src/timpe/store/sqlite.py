"""The embedded store: one SQLite file shared by every process (WAL).

Each primitive is one autocommit statement, so SQLite offers the protocol
nothing that CrateDB would not: no transaction ever spans two calls.
"""
import functools
import os
import random
import sqlite3
import threading
import time
from pathlib import Path

from zope.interface import implementer

from timpe.errors import StoreUnavailable
from timpe.store import mappings
from timpe.store.interfaces import IStore
from timpe.store.schema import check_columns, key_values, order_terms, prefix_values, table


# os.getpid() is a system call; this module asks before every statement
# whether it runs in a forked child (gunicorn workers), so keep the answer.
_pid = os.getpid()


def _forked():
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)

# Waiting for another process's write: SQLite's own busy handler sleeps in C
# (1 ms, 2 ms, 5 ms ...), blocking the whole gevent worker. Retrying here with
# short, jittered, growing pauses lets time.sleep yield to the worker's other
# greenlets and wakes up long before SQLite's schedule would.
BUSY_FIRST_PAUSE = 0.00005
BUSY_MAX_PAUSE = 0.002


# Checkpoints (copying the WAL back into the database file). SQLite's own
# runs after every commit once the WAL holds 1000 pages, and with two
# processes always writing the WAL never gets back to its start, so past
# that size every commit paid for a checkpoint and its syncs (about a fifth
# of a transfer's SQLite time, measured) while the file grew without end.
# Instead each process checkpoints after every CHECKPOINT_EVERY of its own
# writes (setting sqlite.checkpoint_every), in RESTART mode: it waits up to CHECKPOINT_WAIT_MS for readers of
# the old WAL to finish, so the next write starts the WAL over and it stays
# a few MB. A busy checkpoint is not an error: the next one catches up.
CHECKPOINT_EVERY = 1000
CHECKPOINT_WAIT_MS = 5
# After a restart the WAL file is cut back to this size (bytes).
WAL_SIZE_LIMIT = 64 * 1024 * 1024


def _busy(exc):
    return (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF == sqlite3.SQLITE_BUSY


@implementer(IStore)
class SQLiteStore:
    name = "sqlite"

    def __init__(self, path, synchronous="NORMAL", busy_timeout_ms=30000,
                 mappings_dir=None, checkpoint_every=CHECKPOINT_EVERY):
        self.path = str(path)
        self.synchronous = synchronous.upper()
        if self.synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"bad sqlite.synchronous: {synchronous!r}")
        self.busy_timeout_ms = int(busy_timeout_ms)
        self.mappings_dir = mappings_dir
        self.checkpoint_every = int(checkpoint_every)
        self._conn, self._pid, self._writes = None, None, 0
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings):
        return cls(
            settings.get("sqlite.path", "var/timpe.sqlite"),
            synchronous=settings.get("sqlite.synchronous", "NORMAL"),
            busy_timeout_ms=settings.get("sqlite.busy_timeout_ms", 30000),
            mappings_dir=settings.get("timpe.mappings"),
            checkpoint_every=settings.get("sqlite.checkpoint_every", CHECKPOINT_EVERY),
        )

    # -- connection: one per process, reopened after fork ---------------------
    # SQLite calls never yield to gevent, so one connection per process serves
    # every greenlet; the lock only matters for real threads.

    def _connection(self):
        if self._pid != _pid:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None,
                                   timeout=self.busy_timeout_ms / 1000,
                                   check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            conn.execute("PRAGMA wal_autocheckpoint=0")
            conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
            # From now on a busy database raises at once and _execute waits.
            conn.execute("PRAGMA busy_timeout=0")
            self._conn, self._pid, self._writes = conn, _pid, 0
        return self._conn

    def _wrote(self):
        """Count a write of this process; every ``checkpoint_every``, checkpoint."""
        self._writes += 1
        if self._writes % self.checkpoint_every == 0:
            self.checkpoint()

    def checkpoint(self):
        """Copy the WAL into the database and let the next write restart it.

        Return True when it was done, False when readers kept it busy.
        """
        with self._lock:
            conn = self._connection()
            # The only wait inside SQLite's C code: a few ms, CHECKPOINT_EVERY
            # writes apart, against a sync per commit without it.
            conn.execute(f"PRAGMA busy_timeout={CHECKPOINT_WAIT_MS}")
            try:
                busy = conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()[0]
            except sqlite3.OperationalError as exc:
                if not _busy(exc):
                    raise StoreUnavailable(f"store unavailable: {exc}") from exc
                busy = 1
            finally:
                conn.execute("PRAGMA busy_timeout=0")
            return not busy

    def _execute(self, sql, params=()):
        """Run one statement; return (rowcount, rows, column names).

        A statement that found the database busy changed nothing (each one
        is its own transaction), so it is simply run again.
        """
        pause, deadline = BUSY_FIRST_PAUSE, None
        while True:
            try:
                with self._lock:
                    cur = self._connection().execute(sql, params)
                    rows = cur.fetchall()
                    names = [d[0] for d in cur.description or ()]
                    return cur.rowcount, rows, names
            except sqlite3.OperationalError as exc:
                now = time.monotonic()
                deadline = deadline or now + self.busy_timeout_ms / 1000
                if not _busy(exc) or now >= deadline:
                    # disk I/O errors, or still locked after busy_timeout_ms
                    raise StoreUnavailable(f"store unavailable: {exc}") from exc
            time.sleep(pause * random.uniform(0.5, 1.5))
            pause = min(pause * 2, BUSY_MAX_PAUSE)

    # -- primitives ----------------------------------------------------------

    def insert(self, table_name, row, want_version=False):
        cols = tuple(row)
        rows = self._execute(insert_sql(table_name, cols), [row[c] for c in cols])[1]
        self._wrote()
        if want_version:
            return rows[0][0] if rows else None
        return bool(rows)

    def get(self, table_name, key):
        rows = self._execute(get_sql(table_name), key_values(table(table_name), key))[1]
        return _row(rows[0]) if rows else None

    def cas(self, table_name, key, version, changes):
        cols = tuple(changes)
        params = [changes[c] for c in cols] + key_values(table(table_name), key) + [version]
        rows = self._execute(cas_sql(table_name, cols), params)[1]
        self._wrote()
        return rows[0][0] if rows else None

    def newest(self, table_name, prefix, since=None):
        tbl = table(table_name)
        params = prefix_values(tbl, prefix) + ([] if since is None else [since])
        rows = self._execute(newest_sql(table_name, since is not None), params)[1]
        return _row(rows[0]) if rows else None

    def scan(self, table_name, where=None, order_by=None, limit=None):
        tbl = table(table_name)
        clauses, params = [], []
        for col, value in (where or {}).items():
            check_columns(tbl, [col])
            values = list(value) if isinstance(value, (list, tuple, set)) else [value]
            clauses.append(f"{col} IN ({', '.join('?' * len(values))})")
            params.extend(values)
        sql = f"SELECT {', '.join(tbl.columns)}, version FROM {tbl.name}"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        if order_by:
            sql += " ORDER BY " + ", ".join(f"{c} {d}" for c, d in order_terms(tbl, order_by))
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return [_row(r) for r in self._execute(sql, params)[1]]

    # -- operations ----------------------------------------------------------

    def setup(self):
        existing = {r[0] for r in self._execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")[1]}
        return mappings.create_tables(self.name, self.mappings_dir, self._execute, existing)

    def drop(self):
        for name in mappings.tables(self.name, self.mappings_dir):
            self._execute(f"DROP TABLE IF EXISTS {table(name).name}")

    def sql(self, statement, params=()):
        _, rows, columns = self._execute(statement, params)
        return columns, [tuple(r) for r in rows]

    def close(self):
        if self._conn is not None and self._pid == _pid:
            self._conn.close()
        self._conn, self._pid = None, None


# The statements of the primitives, built once per table and column set.

@functools.lru_cache(maxsize=None)
def insert_sql(table_name, cols):
    tbl = table(table_name)
    check_columns(tbl, cols)
    return (f"INSERT INTO {tbl.name} ({', '.join(cols)}) "
            f"VALUES ({', '.join('?' * len(cols))}) ON CONFLICT DO NOTHING RETURNING version")


@functools.lru_cache(maxsize=None)
def get_sql(table_name):
    tbl = table(table_name)
    return (f"SELECT {', '.join(tbl.columns)}, version FROM {tbl.name} "
            f"WHERE {_match(tbl.pk)}")


@functools.lru_cache(maxsize=None)
def cas_sql(table_name, cols):
    tbl = table(table_name)
    check_columns(tbl, cols)
    if set(cols) & set(tbl.pk):
        raise ValueError("a primary key never changes")
    assignments = ", ".join(f"{c} = ?" for c in cols)
    return (f"UPDATE {tbl.name} SET {assignments}, version = version + 1 "
            f"WHERE {_match(tbl.pk)} AND version = ? RETURNING version")


@functools.lru_cache(maxsize=None)
def newest_sql(table_name, bounded):
    tbl = table(table_name)
    *lead, last = tbl.pk
    where = [_match(lead)] if lead else []
    if bounded:
        where.append(f"{last} >= ?")
    return (f"SELECT {', '.join(tbl.columns)}, version FROM {tbl.name} "
            + (f"WHERE {' AND '.join(where)} " if where else "")
            + f"ORDER BY {last} DESC LIMIT 1")


def _match(columns):
    return " AND ".join(f"{c} = ?" for c in columns)


def _row(found):
    row = dict(found)
    row["_version"] = row.pop("version")
    return row
