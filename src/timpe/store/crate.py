"""The scale-out store: a CrateDB cluster, spoken to through the ``crate`` client.

Each primitive is one statement CrateDB answers atomically for one row:

- insert: a plain single-row INSERT; the primary key makes it insert-if-absent
  and CrateDB's DuplicateKeyException tells the caller it lost the race;
- get: a WHERE on the whole primary key is a real-time get, which sees every
  acknowledged write without a REFRESH;
- cas: UPDATE ... WHERE pk AND _seq_no AND _primary_term, CrateDB's optimistic
  concurrency control; RETURNING hands back the row's new token;
- scan: a search, which sees only what the last refresh made visible
  (eventually consistent); ``fresh`` adds a REFRESH TABLE for listings that
  should show what was just written, never for correctness.

The SQL is built by the pure ``*_sql`` functions below (identifiers come from
``timpe.store.schema`` only, values are always parameters), so the test suite
can check every statement against CrateDB's grammar.
"""
import os
import shutil
import sys
import threading
from pathlib import Path

from crate import client as crate_client
from crate.client import exceptions as crate_errors
from pyramid.settings import asbool
from zope.interface import implementer

from timpe.errors import StoreUnavailable
from timpe.store import mappings
from timpe.store.interfaces import IStore
from timpe.store.schema import (
    check_columns, key_values, order_terms, prefix_values, table, where_clauses,
)

# CrateDB has no version column: every row carries these two system columns,
# and together they name one version of the row.
VERSION_COLUMNS = ("_seq_no", "_primary_term")

TABLES_SQL = "SELECT table_name FROM information_schema.tables WHERE table_schema = ?"

# Errors CrateDB reports when a node, shard or the cluster cannot serve a
# request right now (or the tables are not set up yet): the request may be
# retried later, so the API answers 503, not a crash. Anything else is a bug.
UNAVAILABLE = (
    "UnavailableShardsException", "NoShardAvailableActionException",
    "ShardNotFoundException", "NodeNotConnectedException",
    "NodeDisconnectedException", "NodeClosedException",
    "ConnectTransportException", "ClusterBlockException",
    "CircuitBreakingException", "RelationUnknown", "SchemaUnknownException",
)


def quote(name):
    return '"' + name.replace('"', '""') + '"'


def _names(columns):
    return ", ".join(quote(c) for c in columns)


def _match(columns):
    return " AND ".join(f"{quote(c)} = ?" for c in columns)


# -- SQL builders: (statement, parameters) -----------------------------------

def insert_sql(tbl, row, want_version=False):
    check_columns(tbl, row)
    cols = list(row)
    marks = ", ".join("?" * len(cols))
    sql = f"INSERT INTO {quote(tbl.name)} ({_names(cols)}) VALUES ({marks})"
    if want_version:
        sql += f" RETURNING {_names(VERSION_COLUMNS)}"
    return sql, [row[c] for c in cols]


def get_sql(tbl, key):
    return (f"SELECT {_names(tbl.columns + VERSION_COLUMNS)} FROM {quote(tbl.name)} "
            f"WHERE {_match(tbl.pk)}", key_values(tbl, key))


def get_many_sql(tbl, keys):
    # "pk = ? OR pk = ?": CrateDB's documented form of a lookup of several
    # primary keys (a Get, which sees writes without a refresh).
    params = [v for key in keys for v in key_values(tbl, key)]
    match = " OR ".join([f"({_match(tbl.pk)})"] * len(keys)) or "FALSE"
    return (f"SELECT {_names(tbl.columns + VERSION_COLUMNS)} FROM {quote(tbl.name)} "
            f"WHERE {match}", params)


def cas_sql(tbl, key, version, changes):
    check_columns(tbl, changes)
    if not changes:
        raise ValueError("cas needs at least one change")
    if set(changes) & set(tbl.pk):
        raise ValueError("a primary key never changes")
    cols = list(changes)
    assignments = ", ".join(f"{quote(c)} = ?" for c in cols)
    return (f"UPDATE {quote(tbl.name)} SET {assignments} "
            f"WHERE {_match(tbl.pk + VERSION_COLUMNS)} "
            f"RETURNING {_names(VERSION_COLUMNS)}",
            [changes[c] for c in cols] + key_values(tbl, key) + list(_token(version)))


def scan_sql(tbl, where=None, order_by=None, limit=None):
    clauses, params = where_clauses(tbl, where, quote)
    sql = f"SELECT {_names(tbl.columns + VERSION_COLUMNS)} FROM {quote(tbl.name)}"
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    if order_by:
        sql += " ORDER BY " + ", ".join(f"{quote(c)} {d}" for c, d in order_terms(tbl, order_by))
    if limit is not None:
        sql += f" LIMIT {int(limit):d}"
    return sql, params


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


def _mentions(exc, name):
    return name in str(exc)


# -- the adapter ---------------------------------------------------------------

@implementer(IStore)
class CrateStore:
    name = "crate"

    def __init__(self, hosts, schema=None, timeout=30, fresh_scans=False,
                 mappings_dir=None):
        self.hosts = hosts.split() if isinstance(hosts, str) else list(hosts)
        if not self.hosts:
            raise ValueError("crate.hosts names no CrateDB node")
        self.schema = schema or None  # None: CrateDB's default schema, doc
        self.timeout = float(timeout)
        self.fresh_scans = bool(fresh_scans)
        self.mappings_dir = mappings_dir
        self._conn, self._pid = None, None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings):
        return cls(
            settings.get("crate.hosts", "localhost:4200"),
            schema=settings.get("crate.schema"),
            timeout=settings.get("crate.timeout", 30),
            fresh_scans=asbool(settings.get("crate.fresh_scans", False)),
            mappings_dir=settings.get("timpe.mappings"),
        )

    # -- connection: one client per process (its HTTP pools must not cross a
    # fork); the client is thread-safe and balances over every host.

    def _connection(self):
        with self._lock:
            if self._pid != os.getpid():
                self._conn = crate_client.connect(self.hosts, timeout=self.timeout,
                                                  schema=self.schema)
                self._pid = os.getpid()
            return self._conn

    def _execute(self, sql, params=()):
        """Run one statement; return (column names, rows, rowcount)."""
        try:
            cursor = self._connection().cursor()
            try:
                cursor.execute(sql, list(params))
                columns = [d[0] for d in cursor.description or ()]
                # DDL and plain DML answer without a result set.
                rows = cursor.fetchall() if columns else []
                return columns, rows, cursor.rowcount
            finally:
                cursor.close()
        except crate_errors.Error as exc:
            mapped = unavailable(exc)
            if mapped is not None:
                raise mapped from exc
            raise

    # -- primitives ------------------------------------------------------------

    def insert(self, table_name, row, want_version=False):
        lost = None if want_version else False
        try:
            columns, rows, rowcount = self._execute(*insert_sql(table(table_name), row, want_version))
        except crate_errors.IntegrityError:
            return lost  # DuplicateKeyException: the key was taken first
        except crate_errors.ProgrammingError as exc:
            if _mentions(exc, "DuplicateKeyException"):  # clients before the IntegrityError mapping
                return lost
            raise
        if want_version:
            return decode(columns, rows)[0]["_version"] if rows else None
        return rowcount != 0

    def get(self, table_name, key):
        found = decode(*self._execute(*get_sql(table(table_name), key))[:2])
        return found[0] if found else None

    def get_many(self, table_name, keys):
        return decode(*self._execute(*get_many_sql(table(table_name), keys))[:2])

    def cas(self, table_name, key, version, changes):
        try:
            columns, rows, _ = self._execute(*cas_sql(table(table_name), key, version, changes))
        except crate_errors.ProgrammingError as exc:
            if _mentions(exc, "VersionConflictEngineException"):
                return None  # the row moved on between the check and the write
            raise
        return decode(columns, rows)[0]["_version"] if rows else None

    def scan(self, table_name, where=None, order_by=None, limit=None, fresh=None):
        return self._search(table_name, scan_sql(table(table_name), where, order_by, limit), fresh)

    def newest(self, table_name, prefix, since=None, fresh=None):
        found = self._search(table_name, newest_sql(table(table_name), prefix, since), fresh)
        return found[0] if found else None

    def _search(self, table_name, statement, fresh):
        # A search, not a get: it sees what the last refresh made visible.
        if self.fresh_scans if fresh is None else fresh:
            self.refresh(table_name)
        return decode(*self._execute(*statement)[:2])

    def refresh(self, table_name):
        """Make every acknowledged write visible to the next scan."""
        self._execute(*refresh_sql(table(table_name)))

    # -- operations --------------------------------------------------------------

    def _tables(self):
        rows = self._execute(TABLES_SQL, [self.schema or "doc"])[1]
        return {r[0] for r in rows}

    def setup(self):
        return mappings.create_tables(self.name, self.mappings_dir, self._execute,
                                      self._tables())

    def drop(self):
        for name in mappings.tables(self.name, self.mappings_dir):
            self._execute(*drop_sql(table(name)))

    def sql(self, statement, params=()):
        columns, rows, _ = self._execute(statement, params)
        return columns, [tuple(r) for r in rows]

    def close(self):
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn, self._pid = None, None


def crash_command(settings):
    """argv that runs the ``crash`` shell on the configured cluster (for bin/crash)."""
    store = CrateStore.from_settings(settings)
    beside = Path(sys.executable).with_name("crash")  # the venv's own crash first
    executable = str(beside) if beside.exists() else shutil.which("crash")
    if executable is None:
        raise FileNotFoundError("the crash shell is not installed: pip install crash")
    argv = [executable, "--hosts", *store.hosts]
    if store.schema:
        argv += ["--schema", store.schema]
    return argv
