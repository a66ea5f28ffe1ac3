"""The scale-out store: a CrateDB cluster, spoken to through the ``crate`` client.

Each primitive is one statement CrateDB answers atomically for one row:

- insert: a single-row INSERT; the primary key makes it insert-if-absent,
  and CrateDB's DuplicateKeyException tells the caller it lost the race;
- get: a WHERE on the whole primary key is a real-time get, which sees every
  acknowledged write without a REFRESH (from any copy: see IStore.get);
- cas: UPDATE ... WHERE pk AND _seq_no AND _primary_term, CrateDB's
  optimistic concurrency control, decided on the primary;
- update: UPDATE ... WHERE pk, atomic for the one row;
- newest, scan and count_by: searches, which see only what the last refresh made
  visible (eventually consistent); ``fresh`` adds a REFRESH TABLE for
  listings that should show what was just written, never for correctness
  and never for a search on the path of a transfer.

What a process's greenlets send at the same time travels together
(timpe.store.batching): writes of one statement as one bulk request, in
which CrateDB answers each row on its own (DuplicateKeyException and
VersionConflictEngineException per row), and gets of one table as one
look-up of all their keys. A statement alone costs CrateDB about as much as
a bulk request of dozens (docs/benchmarks.rst, "CrateDB").

The SQL is built by the pure ``*_sql`` functions below (identifiers come from
``timpe.store.schema`` only, values are always parameters), so the test suite
can check every statement against CrateDB's grammar.
"""
import functools
import json
import os
import shutil
import sys
import threading
import time
from pathlib import Path

from crate import client as crate_client
from crate.client import exceptions as crate_errors
from pyramid.settings import asbool
from zope.interface import implementer

from timpe.errors import StoreUnavailable
from timpe.store import identity, mappings
from timpe.store.batching import Batcher
from timpe.store.interfaces import IStore
from timpe.store.sent import Sent
from timpe.store.schema import (
    check_changes, check_columns, count_by_sql, key_values, prefix_values, scan_sql, table,
)

# CrateDB has no version column: every row carries these two system columns,
# and together they name one version of the row.
VERSION_COLUMNS = ("_seq_no", "_primary_term")

TABLES_SQL = "SELECT table_name FROM information_schema.tables WHERE table_schema = ?"
HEALTH_SQL = ("SELECT table_name, health, missing_shards, underreplicated_shards "
              "FROM sys.health WHERE table_schema = ?")
COLUMNS_SQL = ("SELECT column_name FROM information_schema.columns "
               "WHERE table_schema = ? AND table_name = ?")

# Errors CrateDB reports when a node, shard or the cluster cannot serve a
# request right now (or the tables are not set up yet): the request may be
# retried later, so the API answers 503, not a crash. Anything else is a bug.
UNAVAILABLE = (
    "UnavailableShardsException", "NoShardAvailableActionException",
    "ShardNotFoundException", "NodeNotConnectedException",
    "NodeDisconnectedException", "NodeClosedException",
    "ConnectTransportException", "ClusterBlockException",
    "CircuitBreakingException", "RelationUnknown", "SchemaUnknownException",
    "IllegalIndexShardStateException", "ShardNotInPrimaryModeException",
    "PrimaryMissingActionException", "RetryOnPrimaryException",
    # A node that left while it worked on the statement:
    "JobKilledException", "SendRequestTransportException",
    "ReceiveTimeoutTransportException", "MasterNotDiscoveredException",
    # A read routed to a node that has just left (seen when one of three
    # died); the second comes as an SQLParseException, so only its text:
    "NoSuchNodeException", "Unknown node: ",
    # A get on a node cut off from the others (seen with one of three cut
    # off: "no such index [transactions/<uuid>]") while its cluster state
    # is not the cluster's:
    "IndexNotFoundException",
)

# Error codes of one row of a bulk answer that mean "lost", not "failed":
# a duplicate key (insert), a version conflict (cas), no such row (update).
LOST = {4091, 4092, 40411}

#: At most this many rows or keys go in one request.
BATCH_LIMIT = 200

# A table whose primary key has two columns (the ledger's user_id, seq) is
# keyed in CrateDB by one more column that joins them: CrateDB plans a
# look-up of many keys, "(a = ? AND b = ?) OR ...", in time that grows with
# the square of the keys for a two-column key (18 keys took 8 ms, 36 took
# 36, measured), and with their number for one column (50 keys, 6.5 ms).
# The adapter fills it in; nothing above the adapter ever sees it.
KEY_COLUMN = "row_key"


def joined(tbl):
    return len(tbl.pk) > 1


def row_key(values):
    """The one-column key of a two-column one: unambiguous for any values."""
    return json.dumps(list(values), separators=(",", ":"))


def key_match(tbl):
    """The columns a statement's WHERE names to find one row by its key."""
    return (KEY_COLUMN,) if joined(tbl) else tbl.pk


def key_params(tbl, key):
    values = key_values(tbl, key)
    return [row_key(values)] if joined(tbl) else values


#: Seconds a statement on the path of a request may take before the API
#: answers 503 (a cluster without a master holds writes for a minute).
TIMEOUT = 3
#: Seconds for setup, drop, refresh and the operator's own statements.
SLOW_TIMEOUT = 120
#: A batch's leader with others queued behind it waits LINGER_PAUSE (gevent's
#: timers tick by the millisecond) at a time while more statements of its kind
#: arrive, crate.linger_ms (LINGER_MS) at most (timpe.store.batching): the
#: cluster's CPU goes by requests more than rows. At 100 clients requests
#: carry 20-25 rows where they carried 14-16, and a transfer costs the JVMs
#: about a quarter less CPU (docs/benchmarks.rst, "Batches that wait for
#: more"). A statement alone is sent at once.
LINGER_PAUSE = 0.001
LINGER_MS = 4


def quote(name):
    return '"' + name.replace('"', '""') + '"'


def _names(columns):
    return ", ".join(quote(c) for c in columns)


def _match(columns):
    return " AND ".join(f"{quote(c)} = ?" for c in columns)


# -- SQL builders: statements, and their parameters -----------------------------

@functools.lru_cache(maxsize=None)
def insert_sql(tbl, cols):
    check_columns(tbl, [c for c in cols if c != identity.COLUMN])
    if joined(tbl):
        cols += (KEY_COLUMN,)
    return f"INSERT INTO {quote(tbl.name)} ({_names(cols)}) VALUES ({', '.join('?' * len(cols))})"


def insert_params(tbl, row):
    params = list(row.values())
    return params + [row_key(row[c] for c in tbl.pk)] if joined(tbl) else params


@functools.lru_cache(maxsize=None)
def update_sql(tbl, cols, compare):
    """UPDATE of one row by primary key; ``compare``: only at a version."""
    check_changes(tbl, cols)
    assignments = ", ".join(f"{quote(c)} = ?" for c in cols)
    match = key_match(tbl) + (VERSION_COLUMNS if compare else ())
    return f"UPDATE {quote(tbl.name)} SET {assignments} WHERE {_match(match)}"


def update_params(tbl, key, changes, version=None):
    params = list(changes.values()) + key_params(tbl, key)
    return params + list(_token(version)) if version is not None else params


@functools.lru_cache(maxsize=None)
def get_many_sql(tbl, count):
    # "pk = ? OR pk = ?": CrateDB's documented form of a lookup of several
    # primary keys (a Get, which sees writes without a refresh).
    match = " OR ".join([f"({_match(key_match(tbl))})"] * count) or "FALSE"
    return f"SELECT {_names(tbl.columns + VERSION_COLUMNS)} FROM {quote(tbl.name)} WHERE {match}"


def newest_sql(tbl, prefix, since=None):
    *lead, last = tbl.pk
    clauses, params = ([_match(lead)] if lead else []), prefix_values(tbl, prefix)
    if since is not None:
        clauses.append(f"{quote(last)} >= ?")
        params.append(since)
    sql = f"SELECT {_names(tbl.columns + VERSION_COLUMNS)} FROM {quote(tbl.name)}"
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    return sql + f" ORDER BY {quote(last)} DESC LIMIT 1", params


def refresh_sql(tbl):
    return f"REFRESH TABLE {quote(tbl.name)}", []


def drop_sql(tbl):
    return f"DROP TABLE IF EXISTS {quote(tbl.name)}", []


# -- decoding and errors -------------------------------------------------------

def _token(version):
    try:
        seq_no, term = version
        return int(seq_no), int(term)
    except (TypeError, ValueError):
        raise ValueError(f"not a CrateDB version token: {version!r}") from None


def decode(columns, rows):
    """Rows of a result as dicts; ``_seq_no``/``_primary_term`` become ``_version``.

    Values arrive as the client decoded them from JSON: TEXT as str, BIGINT
    as int (never float, so cents stay exact), NULL as None.
    """
    decoded = []
    for values in rows:
        row = dict(zip(columns, values, strict=True))
        if VERSION_COLUMNS[0] in row:
            row["_version"] = _token(tuple(row.pop(c) for c in VERSION_COLUMNS))
        decoded.append(row)
    return decoded


def unavailable(exc):
    """The StoreUnavailable for a crate client error, or None if it is a bug."""
    if isinstance(exc, crate_errors.ConnectionError):
        return StoreUnavailable(f"CrateDB unreachable: {exc}")
    if isinstance(exc, crate_errors.DatabaseError):
        message = str(exc)
        if any(name in message for name in UNAVAILABLE):
            return StoreUnavailable(f"CrateDB cannot serve the request: {message}")
    return None


def row_outcome(result, unsaid_lost=False):
    """What one row of a bulk answer means for its caller: True (applied),
    False (lost: the key was taken, the version moved on, no such row), or
    the exception to raise.

    ``unsaid_lost``: a row failed with no error named counts as lost. For an
    insert-if-absent and a compare-and-set, whose every caller reads the row
    after a loss and goes by what it finds there (timpe.store.races): under
    two nodes' compare-and-sets of one transfer, CrateDB answered a few rows
    so (seen live), where a conflict it names is a 4092."""
    count = result.get("rowcount", -2)
    if count >= 0:
        return count > 0
    error = result.get("error") or {}
    if error.get("code") in LOST or (unsaid_lost and not error):
        return False
    exc = crate_errors.ProgrammingError(error.get("message") or f"bulk row failed: {result}")
    return unavailable(exc) or exc


def racing(sql):
    """Whether ``sql`` is an insert-if-absent or a compare-and-set."""
    return sql.startswith("INSERT") or quote(VERSION_COLUMNS[0]) in sql


def key_of(tbl, row):
    return tuple(row[c] for c in tbl.pk)


# -- the adapter ---------------------------------------------------------------

@implementer(IStore)
class CrateStore:
    name = "crate"
    # /process and recovery passes: transfers worked on at once. Their
    # statements share bulk requests and their legs share rows, so more at
    # once costs the cluster fewer requests per transfer; a drain is bound
    # by the cluster's CPU (128: 285-322/s at 6.2-7.1 ms a transfer, 512:
    # 505-586/s at 3.5-4.0 ms, 1024 no better; docs/benchmarks.rst).
    parallel = 512
    # Every write of legs on one node: no two nodes race for a row, confirm
    # the other's rows or split a batch. Against round robin, in transfers/s
    # and CPU ms a transfer: uniform 283 and 7.4 against 137 and 14.8, the
    # hot pair 619 and 3.0 against 310 and 6.7 (by sender: 113-151 and
    # 13-17.5, 408-553 and 3.5-4.7; docs/benchmarks.rst).
    affinity = "one"

    def __init__(self, hosts, schema=None, timeout=TIMEOUT, fresh_scans=False,
                 pool_size=64, mappings_dir=None, linger_ms=LINGER_MS):
        self.hosts = hosts.split() if isinstance(hosts, str) else list(hosts)
        self.sent = Sent()
        if not self.hosts:
            raise ValueError("crate.hosts names no CrateDB node")
        self.schema = schema or None  # None: CrateDB's default schema, doc
        self.timeout = float(timeout)
        # When a call last raised StoreUnavailable (time.monotonic()), or
        # None: a transfer waiting for a turn gives up while it is recent.
        self.unavailable_at = None
        self.fresh_scans = bool(fresh_scans)
        self.pool_size = int(pool_size)
        self.mappings_dir = mappings_dir
        linger_ms = float(linger_ms)
        self.linger = (LINGER_PAUSE, linger_ms / 1000) if linger_ms > 0 else None
        self._clients, self._pid = None, None
        self.tokens = identity.Tokens(self._ddl)
        self._batchers, self._batch_pid = {}, None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings):
        return cls(
            settings.get("crate.hosts", "localhost:4200"),
            schema=settings.get("crate.schema"),
            timeout=settings.get("crate.timeout", TIMEOUT),
            fresh_scans=asbool(settings.get("crate.fresh_scans", False)),
            pool_size=settings.get("crate.pool_size", 64),
            mappings_dir=settings.get("timpe.mappings"),
            linger_ms=settings.get("crate.linger_ms", LINGER_MS),
        )

    # -- connections: per process (HTTP pools must not cross a fork). The
    # client is thread-safe, balances over every host and skips one that
    # fails. Two clients: one with a short timeout for the requests' own
    # statements, one with a long one for operations. Uncompressed: the
    # bodies are small, and loopback or a LAN is fast.

    def _client(self, slow=False):
        with self._lock:
            if self._pid != os.getpid():
                try:
                    self._clients = [crate_client.connect(
                        self.hosts, timeout=timeout, schema=self.schema,
                        pool_size=self.pool_size, compress=False)
                        for timeout in (self.timeout, max(self.timeout, SLOW_TIMEOUT))]
                except crate_errors.Error as exc:
                    # Connecting asks the nodes their version, which a node
                    # with no master yet refuses (as a 400, or a 503).
                    raise StoreUnavailable(f"CrateDB cannot serve yet: {exc}") from exc
                self._pid = os.getpid()
            return self._clients[slow]

    def _send(self, run, slow=False):
        """``run(cursor)`` on a cursor of the (slow) client; its errors as
        StoreUnavailable where the cluster may recover."""
        try:
            cursor = self._client(slow).cursor()
            try:
                return run(cursor)
            finally:
                cursor.close()
        except crate_errors.Error as exc:
            mapped = unavailable(exc)
            if mapped is None:
                raise
            self.unavailable_at = time.monotonic()
            raise mapped from exc
        except StoreUnavailable:  # could not connect
            self.unavailable_at = time.monotonic()
            raise

    def _execute(self, sql, params=(), slow=False, kind="search", rows=1):
        """Run one statement; return (column names, rows)."""
        self.sent.add(kind, rows)

        def run(cursor):
            cursor.execute(sql, list(params))
            columns = [d[0] for d in cursor.description or ()]
            # DDL and plain DML answer without a result set.
            return columns, cursor.fetchall() if columns else []
        return self._send(run, slow)

    def _execute_bulk(self, sql, bulk, unsaid_lost=False):
        """Run one statement for each parameter list of ``bulk``, in one
        request; return each one's outcome (see row_outcome)."""
        self.sent.add("write", len(bulk))
        return [row_outcome(r, unsaid_lost)
                for r in self._send(lambda c: c.executemany(sql, bulk) or ())]

    def _batched(self, kind, run, item):
        """Queue ``item`` with the others of ``kind``; its outcome."""
        if self._batch_pid != os.getpid():  # a fresh process: batchers of its own
            self._batchers, self._batch_pid = {}, os.getpid()
        batcher = self._batchers.get(kind)
        if batcher is None:
            batcher = self._batchers.setdefault(kind, Batcher(run, self.linger))
        return batcher.submit(kind, item)

    # -- writes: one bulk request for the waiting writes of one statement ------

    def _write(self, sql, params):
        return self._batched(sql, self._write_batch, params)

    def _write_batch(self, batch):
        for start in range(0, len(batch), BATCH_LIMIT):
            chunk = batch[start:start + BATCH_LIMIT]
            try:
                outcomes = self._execute_bulk(chunk[0].sql, [job.params for job in chunk],
                                              racing(chunk[0].sql))
                if len(outcomes) != len(chunk):
                    raise StoreUnavailable(f"CrateDB answered {len(outcomes)} of "
                                           f"{len(chunk)} rows of a bulk request")
            except Exception as exc:  # the whole request: every caller's outcome
                outcomes = [exc] * len(chunk)
            for job, outcome in zip(chunk, outcomes):
                job.outcome = outcome

    # -- reads: one look-up for the waiting gets of one table --------------------

    def _read(self, tbl, keys):
        if not keys:
            return []
        return self._batched(tbl.name, functools.partial(self._read_batch, tbl), keys)

    def _read_batch(self, tbl, batch):
        wanted = list(dict.fromkeys(k for job in batch for k in job.params))
        found = {}
        try:
            for start in range(0, len(wanted), BATCH_LIMIT):
                keys = wanted[start:start + BATCH_LIMIT]
                params = [v for key in keys for v in key_params(tbl, key)]
                for row in decode(*self._execute(get_many_sql(tbl, len(keys)), params,
                                                 kind="read", rows=len(keys))):
                    found[key_of(tbl, row)] = row
        except Exception as exc:
            for job in batch:
                job.outcome = exc
            return
        for job in batch:
            job.outcome = [found[k] for k in job.params if k in found]

    # -- primitives ------------------------------------------------------------

    def insert(self, table_name, row):
        return self.tokens.insert(table_name, row, functools.partial(self._insert, table(table_name)))

    def _insert(self, tbl, row):
        return self._write(insert_sql(tbl, tuple(row)), insert_params(tbl, row))

    def get(self, table_name, key):
        tbl = table(table_name)
        found = self._read(tbl, [tuple(key_values(tbl, key))])
        return found[0] if found else None

    def get_many(self, table_name, keys):
        tbl = table(table_name)
        return self._read(tbl, [tuple(key_values(tbl, key)) for key in keys])

    def cas(self, table_name, key, version, changes):
        tbl = table(table_name)
        return self._write(update_sql(tbl, tuple(changes), True),
                           update_params(tbl, key, changes, version))

    def update(self, table_name, key, changes):
        tbl = table(table_name)
        return self._write(update_sql(tbl, tuple(changes), False),
                           update_params(tbl, key, changes))

    def scan(self, table_name, where=None, order_by=None, limit=None, after=None, fresh=None):
        if self.fresh_scans if fresh is None else fresh:
            self.refresh(table_name)
        # A whole table (the audit's read, GET /users with no limit) takes a
        # grown cluster longer than a statement on one row's path may wait.
        whole = where is None and limit is None and after is None
        tbl = table(table_name)
        return decode(*self._execute(*scan_sql(tbl, _names(tbl.columns + VERSION_COLUMNS), where,
                                               order_by, limit, after, quote),
                                     slow=whole))

    def count_by(self, table_name, column, where=None, least=None, fresh=None):
        if self.fresh_scans if fresh is None else fresh:
            self.refresh(table_name)
        rows = self._execute(*count_by_sql(table(table_name), column, where, least, quote))[1]
        return {value: (count, low) for value, count, low in rows}

    def newest(self, table_name, prefix, since=None):
        # A search, never refreshed: it is on the path of a transfer.
        found = decode(*self._execute(*newest_sql(table(table_name), prefix, since)))
        return found[0] if found else None

    def durable(self):
        """Nothing to wait for: CrateDB syncs its translog before it
        acknowledges a write (``translog.durability = 'REQUEST'``)."""

    def refresh(self, table_name):
        """Make every acknowledged write visible to the next scan."""
        self._execute(*refresh_sql(table(table_name)), slow=True)

    # -- operations --------------------------------------------------------------

    def _tables(self):
        rows = self._execute(TABLES_SQL, [self.schema or "doc"], slow=True)[1]
        return {r[0] for r in rows}

    def setup(self):
        execute = functools.partial(self._execute, slow=True)
        created = mappings.create_tables(self.name, self.mappings_dir, execute, self._tables())
        mappings.add_columns(self.name, execute, lambda tbl: {
            r[0] for r in execute(COLUMNS_SQL, [self.schema or "doc", table(tbl).name])[1]})
        self.tokens.forget()
        return created

    def _ddl(self):
        found = self._tables()
        return {name: self._execute(f"SHOW CREATE TABLE {quote(self.schema or 'doc')}."
                                    f"{quote(name)}", slow=True)[1][0][0]
                for name in identity.TABLES if name in found}

    def serving(self):
        """(whether every table's primary shards are active, why not or what
        is missing still): green, or yellow with the replicas not yet
        allocated named."""
        wanted = set(mappings.tables(self.name, self.mappings_dir))
        rows = self._execute(HEALTH_SQL, [self.schema or "doc"], slow=True)[1]
        health = {name: (state, missing, under) for name, state, missing, under in rows
                  if name in wanted}
        absent = sorted(wanted - set(health))
        if absent:
            return False, f"no health yet for {', '.join(absent)}"
        red = {n: m for n, (state, m, _) in health.items() if state.upper() == "RED"}
        if red:
            return False, "primary shards not active: " + ", ".join(
                f"{n} ({m} missing)" for n, m in sorted(red.items()))
        yellow = {n: u for n, (state, _, u) in health.items() if state.upper() == "YELLOW"}
        if yellow:
            return True, "yellow: replicas not yet allocated or recovering: " + ", ".join(
                f"{n} ({u} underreplicated)" for n, u in sorted(yellow.items()))
        return True, "green"

    def drop(self):
        for name in mappings.tables(self.name, self.mappings_dir):
            self._execute(*drop_sql(table(name)), slow=True)
        self.tokens.forget()

    def sql(self, statement, params=()):
        columns, rows = self._execute(statement, params, slow=True)
        return columns, [tuple(r) for r in rows]

    def close(self):
        with self._lock:
            if self._clients is not None and self._pid == os.getpid():
                for client in self._clients:
                    client.close()
            self._clients, self._pid = None, None


def crash_command(settings):
    """argv that runs the ``crash`` shell on the configured cluster (for bin/crash)."""
    store = CrateStore.from_settings(settings)
    beside = Path(sys.executable).with_name("crash")  # the venv's own crash first
    executable = str(beside) if beside.exists() else shutil.which("crash")
    if executable is None:
        raise FileNotFoundError("the crash shell is not installed: it is the crate extra, "
                                "which make run STORE=crate installs (pip install -e '.[crate]')")
    argv = [executable, "--hosts", *store.hosts]
    if store.schema:
        argv += ["--schema", store.schema]
    return argv
