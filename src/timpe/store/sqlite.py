"""The embedded store: one SQLite file shared by every process (WAL).

Each primitive is one statement, so SQLite offers the protocol nothing that
CrateDB would not: no caller's two calls ever share a transaction. (Group
commit puts the waiting writes of *different* callers into one transaction,
each as it would have run alone: timpe.store.batching.)
"""
import functools
import logging
import os
import random
import sqlite3
import time
from pathlib import Path

from zope.interface import implementer

from timpe.errors import StoreUnavailable
from timpe.store import identity, mappings
from timpe.store.batching import Batcher
from timpe.store.interfaces import IStore
from timpe.store.sent import Sent
from timpe.store.schema import (
    check_changes, check_columns, count_by_sql, key_values, prefix_values, scan_sql, table,
)


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
GET_MANY_CHUNK = 250
BUSY_FIRST_PAUSE = 0.00005
BUSY_MAX_PAUSE = 0.002


# Checkpoints (copying the WAL back into the database file). SQLite's own
# runs after every commit once the WAL holds 1000 pages, and with two
# processes always writing the WAL never gets back to its start, so past
# that size every commit paid for a checkpoint and its syncs (about a fifth
# of a transfer's SQLite time, measured) while the file grew without end.
# Instead each process checkpoints after every CHECKPOINT_EVERY of its own
# writes (setting sqlite.checkpoint_every), ending in RESTART mode: it waits
# up to CHECKPOINT_WAIT_MS for readers of the old WAL to finish, so that the
# next write starts the WAL over and the file stays a few MB. It runs on an
# OS thread of its own with its own connection: its syncs and its wait
# (about 10 ms, measured) would otherwise stall every greenlet of a gevent
# worker. A busy checkpoint is not an error: the next one catches up.
# 2000: 145-155 us of CPU per transfer on two processes, against 155-161 at
# 1000 and 164-175 at 500; 4000 no better, with a WAL twice the size.
CHECKPOINT_EVERY = 2000
CHECKPOINT_WAIT_MS = 5
# After a restart the WAL file is cut back to this size (bytes).
WAL_SIZE_LIMIT = 64 * 1024 * 1024
# Each write copies every page it changed into the WAL, and each statement
# after another process's commit reads its pages afresh: half SQLite's
# default 4096 made two processes' transfers about 7 % faster (measured;
# 1024 about the same, 8192 and 16384 slower).
PAGE_SIZE = 2048

# The real OS thread and lock even where gevent has patched the threading
# modules. The lock guards the connection against real threads only: SQLite
# calls never yield, so no greenlet can wait on it while another holds it,
# and gevent's lock cost about 1 us per statement, measured.
try:
    from gevent.monkey import get_original
    _start_thread, _allocate_lock = get_original("_thread", ["start_new_thread", "allocate_lock"])
    _thread_sleep = get_original("time", "sleep")
except ImportError:  # pragma: no cover - gevent is a dependency of the nodes
    from _thread import allocate_lock as _allocate_lock, start_new_thread as _start_thread
    _thread_sleep = time.sleep


def _off_the_loop(work, *args):
    """``work(*args)`` on an OS thread of gevent's pool where gevent has
    patched this process: the calling greenlet waits, the others run (SQLite
    lets go of the GIL while it writes and syncs). Elsewhere, here."""
    try:
        from gevent import get_hub, monkey
    except ImportError:  # pragma: no cover - gevent is a dependency of the nodes
        return work(*args)
    if not monkey.is_module_patched("time"):
        return work(*args)
    return get_hub().threadpool.apply(work, args)

log = logging.getLogger(__name__)


def checkpoint_wal(path, wait_ms=CHECKPOINT_WAIT_MS):
    """Copy the WAL of ``path`` into the database and let the next write
    start the WAL over. True when done; False when readers kept it busy."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=wait_ms / 1000)
    try:
        # PASSIVE copies (and syncs) while writers go on; RESTART, which
        # holds off writers, then has only the last few pages left to copy.
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return not conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()[0]
    except sqlite3.OperationalError as exc:
        if _busy(exc):
            return False
        raise StoreUnavailable(f"store unavailable: {exc}") from exc
    finally:
        conn.close()


def _busy(exc):
    return (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF == sqlite3.SQLITE_BUSY


@implementer(IStore)
class SQLiteStore:
    name = "sqlite"
    # sqlite.synchronous: SQLite's own levels, and ANSWER (the default): each
    # commit as at NORMAL, and no answer leaves the node before a sync of the
    # WAL has covered what it reports (see durable). Each level's PRAGMA:
    LEVELS = {"ANSWER": "NORMAL", "OFF": "OFF", "NORMAL": "NORMAL", "FULL": "FULL",
              "EXTRA": "EXTRA"}
    # Where a commit syncs, it runs off the loop (see _store_batch), and
    # /process overlaps transfers so that their writes share a sync; where
    # it does not, calls never yield and overlap only costs switches
    # (drains of 4,000 queued transfers, docs/benchmarks.rst).
    PARALLEL_WHERE_COMMITS_SYNC = 32
    # A node's calls never yield, so one node uses one core: the hot pair
    # on one node ran at 1,243 against 1,850/s (docs/benchmarks.rst).
    affinity = "none"
    # A call waits for SQLite's busy_timeout_ms, not for a network.
    timeout = None
    unavailable_at = None

    def __init__(self, path, synchronous="ANSWER", busy_timeout_ms=30000,
                 mappings_dir=None, checkpoint_every=CHECKPOINT_EVERY):
        self.path = str(path)
        self.sent = Sent()
        self.synchronous = synchronous.upper()
        if self.synchronous not in self.LEVELS:
            raise ValueError(f"bad sqlite.synchronous: {synchronous!r} "
                             f"(one of {', '.join(self.LEVELS)})")
        self._pragma = self.LEVELS[self.synchronous]
        self.syncs = self._pragma in ("FULL", "EXTRA")  # each commit
        self._syncs_answers = self.synchronous == "ANSWER"
        self.parallel = self.PARALLEL_WHERE_COMMITS_SYNC if self.syncs else 1
        self.busy_timeout_ms = int(busy_timeout_ms)
        self.mappings_dir = mappings_dir
        self.checkpoint_every = int(checkpoint_every)
        self._conn, self._pid = None, None
        self.tokens = identity.Tokens(self._ddl)
        self._writer, self._writer_pid = None, None
        self._writes, self._next_checkpoint = 0, self.checkpoint_every
        self._checkpointing = False
        self._lock = _allocate_lock()
        self._queue, self._queue_pid = None, None
        self._syncer, self._syncer_pid = None, None
        self._sync_failed = None

    @classmethod
    def from_settings(cls, settings):
        return cls(
            settings.get("sqlite.path", "var/timpe.sqlite"),
            synchronous=settings.get("sqlite.synchronous", "ANSWER"),
            busy_timeout_ms=settings.get("sqlite.busy_timeout_ms", 30000),
            mappings_dir=settings.get("timpe.mappings"),
            checkpoint_every=settings.get("sqlite.checkpoint_every", CHECKPOINT_EVERY),
        )

    # -- connections: per process, reopened after fork -------------------------
    # SQLite calls never yield to gevent, so one connection per process serves
    # every greenlet's reads; the lock only matters for real threads. Writes
    # go through a second one, which only the batch being stored uses, on a
    # thread of its own (see _store_batch).

    def _open(self):
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None,
                               timeout=self.busy_timeout_ms / 1000,
                               check_same_thread=False)
        # Only a new file takes it (before WAL mode fixes the page size).
        conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self._pragma}")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        # From now on a busy database raises at once and the caller waits.
        conn.execute("PRAGMA busy_timeout=0")
        return conn

    def _connection(self):
        if self._pid != _pid:
            self._conn, self._pid = self._open(), _pid
            self._writes, self._next_checkpoint = 0, self.checkpoint_every
        return self._conn

    def _writer_connection(self):
        if self._writer_pid != _pid:
            self._writer, self._writer_pid = self._open(), _pid
        return self._writer

    def _write(self, sql, params):
        """Run one writing statement (insert, compare-and-set); return its rows.

        The process's writes go through its group commit: waiting ones are
        stored together in one transaction (see timpe.store.batching).
        """
        if self._queue_pid != _pid:
            self._queue, self._queue_pid = Batcher(self._store_batch), _pid
        return self._queue.submit(sql, params)

    def _store_batch(self, batch):
        """Store a batch of writes (see Batcher): one alone as its own
        statement, several in one transaction, committed (and, at
        synchronous FULL, synced) before any of them is acknowledged.

        Where the commit syncs, on the writer connection off gevent's loop:
        the other greenlets parse, read and answer while SQLite writes and
        syncs, and queue their writes for the next batch. Where it does not,
        here: the hop to a thread costs more than the write.
        """
        try:
            outcomes = self._commit(batch)
        except StoreUnavailable as exc:  # none of them is stored
            outcomes = [StoreUnavailable(str(exc)) for _ in batch]
        except sqlite3.Error as exc:  # a lone statement's own error
            outcomes = [exc]
        for write, outcome in zip(batch, outcomes):
            write.outcome = outcome
        self.sent.add("write", len(batch))
        self._wrote(len(batch))

    def _commit(self, batch):
        if len(batch) == 1:
            work = lambda conn: [conn.execute(batch[0].sql, batch[0].params).fetchall()]  # noqa: E731
        else:
            work = functools.partial(_transaction, batch)
        if self.syncs:  # only this batch uses the writer: no lock
            return _off_the_loop(self._retrying, work, self._writer_connection, _thread_sleep, False)
        return self._retrying(work)

    def _wrote(self, count):
        """Count writes of this process; every ``checkpoint_every``, checkpoint
        in the background (unless the last one is still running)."""
        self._writes += count
        if self._writes >= self._next_checkpoint and not self._checkpointing:
            self._next_checkpoint = self._writes + self.checkpoint_every
            self._checkpointing = True
            _start_thread(self._checkpoint_in_background, ())

    def _checkpoint_in_background(self):
        try:
            checkpoint_wal(self.path)
        except Exception:  # a thread has no caller to tell: say it, go on
            log.exception("checkpoint of %s failed", self.path)
        finally:
            self._checkpointing = False

    def durable(self):
        """Return once every write this process has made or read is on disk.

        At ANSWER, before each answer (timpe.store.durability): a commit
        there leaves its pages in the OS's cache, and one fdatasync of the
        WAL then stores every commit before it, this process's or another's
        (the WAL is one log; power loss keeps a prefix of its commits, and a
        checkpoint syncs both files before the WAL starts over). Answers
        waiting at the same time share one sync, off gevent's loop; one
        that comes while a sync is under way waits for the next. At FULL
        every commit was synced before anyone could see it: nothing to do.
        """
        if not self._syncs_answers:
            return
        if self._syncer_pid != _pid:
            self._syncer, self._syncer_pid = Batcher(self._sync_wal), _pid
        self._syncer.submit(None, None)

    def _sync_wal(self, batch):
        if self._sync_failed is None:
            try:
                _off_the_loop(_fdatasync, self.path + "-wal")
            except OSError as exc:
                # After a failed fsync Linux may drop the unsynced pages and
                # let the next fsync succeed: from here on nothing this
                # process reports can be trusted to be on disk, so it
                # reports nothing (503) until it is restarted.
                log.error("sync of %s-wal failed, answering 503 until restarted: %s",
                          self.path, exc)
                self._sync_failed = f"store unavailable: sync failed: {exc}"
        for job in batch:
            job.outcome = None if self._sync_failed is None else StoreUnavailable(self._sync_failed)

    def _execute(self, sql, params=(), describe=False):
        """Run one statement; return its rows (tuples), and with ``describe``
        also its column names."""
        self.sent.add("read", 1)
        def statement(conn):
            cur = conn.execute(sql, params)
            if describe:
                return cur.fetchall(), [d[0] for d in cur.description or ()]
            return cur.fetchall()
        return self._retrying(statement)

    def _retrying(self, work, connection=None, sleep=None, locked=True):
        """Return ``work(connection())``, run again while the database is busy.

        Work that found the database busy changed nothing (it is one
        statement, or one transaction rolled back), so it is simply run
        again after ``sleep``: gevent's on the loop, so that the other
        greenlets run meanwhile; a real one on the writer's thread.
        """
        connection, sleep = connection or self._connection, sleep or time.sleep
        pause, deadline = BUSY_FIRST_PAUSE, None
        while True:
            try:
                if not locked:
                    return work(connection())
                with self._lock:
                    return work(connection())
            except sqlite3.OperationalError as exc:
                now = time.monotonic()
                deadline = deadline or now + self.busy_timeout_ms / 1000
                if not _busy(exc) or now >= deadline:
                    # disk I/O errors, or still locked after busy_timeout_ms
                    raise StoreUnavailable(f"store unavailable: {exc}") from exc
            sleep(pause * random.uniform(0.5, 1.5))
            pause = min(pause * 2, BUSY_MAX_PAUSE)

    # -- primitives ----------------------------------------------------------

    def insert(self, table_name, row):
        return self.tokens.insert(table_name, row, functools.partial(self._insert, table_name))

    def _insert(self, table_name, row):
        cols = tuple(row)
        return bool(self._write(insert_sql(table_name, cols), [row[c] for c in cols]))

    def get(self, table_name, key):
        rows = self._execute(get_sql(table_name), key_values(table(table_name), key))
        return _row(table_name, rows[0]) if rows else None

    def get_many(self, table_name, keys):
        tbl, keys, found = table(table_name), list(keys), []
        # A statement of OR-ed keys is an expression as deep as they are
        # many, and SQLite refuses one over 1,000 deep: so a chunk at a time.
        for start in range(0, len(keys), GET_MANY_CHUNK):
            chunk = keys[start:start + GET_MANY_CHUNK]
            params = [v for key in chunk for v in key_values(tbl, key)]
            found += self._execute(get_many_sql(table_name, len(chunk)), params)
        return [_row(table_name, r) for r in found]

    def cas(self, table_name, key, version, changes):
        cols = tuple(changes)
        params = [changes[c] for c in cols] + key_values(table(table_name), key) + [version]
        return bool(self._write(update_sql(table_name, cols, True), params))

    def update(self, table_name, key, changes):
        cols = tuple(changes)
        params = [changes[c] for c in cols] + key_values(table(table_name), key)
        return bool(self._write(update_sql(table_name, cols, False), params))

    def newest(self, table_name, prefix, since=None):
        tbl = table(table_name)
        params = prefix_values(tbl, prefix) + ([] if since is None else [since])
        rows = self._execute(newest_sql(table_name, since is not None), params)
        return _row(table_name, rows[0]) if rows else None

    def scan(self, table_name, where=None, order_by=None, limit=None, after=None):
        tbl = table(table_name)
        sql, params = scan_sql(tbl, f"{', '.join(tbl.columns)}, version",
                               where, order_by, limit, after)
        return [_row(table_name, r) for r in self._execute(sql, params)]

    def count_by(self, table_name, column, where=None, least=None, fresh=None):
        sql, params = count_by_sql(table(table_name), column, where, least)
        return {value: (count, low) for value, count, low in self._execute(sql, params)}

    # -- operations ----------------------------------------------------------

    def setup(self):
        existing = {r[0] for r in self._execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        created = mappings.create_tables(self.name, self.mappings_dir, self._execute, existing)
        mappings.add_columns(self.name, self._execute, lambda tbl: {
            r[1] for r in self._execute(f"PRAGMA table_info({table(tbl).name})")})
        self.tokens.forget()
        return created

    def _ddl(self):
        return dict(self._execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'"))

    def serving(self):
        """A file is there to serve as soon as its tables are."""
        return True, "a local file"

    def drop(self):
        for name in mappings.tables(self.name, self.mappings_dir):
            self._execute(f"DROP TABLE IF EXISTS {table(name).name}")
        self.tokens.forget()

    def sql(self, statement, params=()):
        rows, columns = self._execute(statement, params, describe=True)
        return columns, rows

    def close(self):
        try:
            if self._conn is not None and self._pid == _pid:
                self.durable()  # a command's last writes, before it says they are done
        finally:
            for conn, pid in ((self._conn, self._pid), (self._writer, self._writer_pid)):
                if conn is not None and pid == _pid:
                    conn.close()
            self._conn, self._pid = None, None
            self._writer, self._writer_pid = None, None


def _fdatasync(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:  # no WAL yet: nothing was written
        return
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)


def _transaction(batch, conn):
    """Run the writes of ``batch`` in one transaction; return their outcomes
    once it is committed. A statement that fails is undone alone (SQLite's
    default), and its error is its own outcome. If the transaction fails,
    it is rolled back and raises: busy (run it again), else StoreUnavailable.
    """
    conn.execute("BEGIN IMMEDIATE")  # busy here: nothing was begun
    try:
        outcomes = []
        for write in batch:
            try:
                outcomes.append(conn.execute(write.sql, write.params).fetchall())
            except sqlite3.Error as exc:
                if not conn.in_transaction:  # SQLite rolled back all of it
                    raise
                outcomes.append(_own_error(exc))
        conn.execute("COMMIT")
        return outcomes
    except BaseException as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if isinstance(exc, sqlite3.OperationalError) and _busy(exc):
            raise
        if isinstance(exc, sqlite3.Error):
            raise StoreUnavailable(f"store unavailable: {exc}") from exc
        raise


def _own_error(exc):
    """What the caller of one failed statement gets, as if it ran alone."""
    if isinstance(exc, sqlite3.OperationalError):
        return StoreUnavailable(f"store unavailable: {exc}")
    return exc


# The statements of the primitives, built once per table and column set.

@functools.lru_cache(maxsize=None)
def insert_sql(table_name, cols):
    tbl = table(table_name)
    check_columns(tbl, [c for c in cols if c != identity.COLUMN])
    return (f"INSERT INTO {tbl.name} ({', '.join(cols)}) "
            f"VALUES ({', '.join('?' * len(cols))}) ON CONFLICT DO NOTHING RETURNING 1")


@functools.lru_cache(maxsize=None)
def get_sql(table_name):
    tbl = table(table_name)
    return (f"SELECT {', '.join(tbl.columns)}, version FROM {tbl.name} "
            f"WHERE {_match(tbl.pk)}")


@functools.lru_cache(maxsize=None)
def update_sql(table_name, cols, compare):
    """UPDATE of one row by primary key; ``compare``: only at a version."""
    tbl = table(table_name)
    check_changes(tbl, cols)
    assignments = ", ".join(f"{c} = ?" for c in cols)
    return (f"UPDATE {tbl.name} SET {assignments}, version = version + 1 "
            f"WHERE {_match(tbl.pk)}{' AND version = ?' if compare else ''} RETURNING 1")


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


@functools.lru_cache(maxsize=None)
def get_many_sql(table_name, count):
    tbl = table(table_name)
    return (f"SELECT {', '.join(tbl.columns)}, version FROM {tbl.name} WHERE "
            + " OR ".join([f"({_match(tbl.pk)})"] * count))


@functools.lru_cache(maxsize=None)
def _names(table_name):
    # Every SELECT of a row lists the table's columns, then its version.
    return table(table_name).columns + ("_version",)


def _row(table_name, found):
    return dict(zip(_names(table_name), found))
