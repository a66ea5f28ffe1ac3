"""What the protocol may ask of a store: exactly the guarantees CrateDB gives.

No method spans more than one row and no adapter may offer a transaction
across calls, so that tests on the embedded store exercise exactly the
protocol a cluster runs.
"""
from zope.interface import Attribute, Interface

#: The calls of IStore that reach the data (the protocol's round trips).
PRIMITIVES = ("insert", "get", "get_many", "cas", "update", "newest", "scan", "count_by")


class IStore(Interface):
    """A shared-nothing, eventually consistent row store.

    Rows are plain dicts keyed by column name (see ``timpe.store.schema``).
    Rows it returns also carry ``"_version"``, an opaque token for
    :meth:`cas`. Keys are tuples of primary-key values in schema order.
    Writes tell only whether they applied, never a new version: a caller
    that needs one reads the row (so that a cluster can send the writes of
    many callers as one bulk request).
    """

    name = Attribute("Short adapter name, e.g. 'sqlite' or 'crate'.")
    parallel = Attribute(
        "How many calls of one process are worth having under way at once: "
        "1 where a call never waits on the network (SQLite), more where "
        "round trips overlap and share batches (CrateDB).")
    affinity = Attribute(
        "How HAProxy routes the writes of ledger legs (timpe.topology."
        "routing): 'one' sends every one to one node at a time, where a "
        "request costs the store more than a row (no two nodes race for a "
        "row, and a node's batches are whole); 'sender' each sender's "
        "transfers to one node; 'none' round robin, where each node's own CPU "
        "is the limit.")
    timeout = Attribute(
        "Seconds a call on the path of a request may take before it raises "
        "StoreUnavailable, or None where no network bounds it (SQLite).")
    sent = Attribute(
        "What this process sent the store (timpe.store.sent.Sent): requests "
        "and the rows or keys they carried, by kind.")
    unavailable_at = Attribute(
        "When a call last raised StoreUnavailable (time.monotonic()), or None.")

    def insert(table, row):
        """Insert ``row`` unless its primary key exists (atomic, decided on
        the row's primary copy).

        Return True when this call inserted it, False when the key was
        already taken (the caller lost the race; nothing is changed).
        The winner may still be in flight: see :meth:`get`.
        """

    def get(table, key):
        """Return the row with primary key ``key`` or None.

        Sees every write acknowledged before the call (read-your-writes).
        It may be served by any copy of the row, so a write still in flight
        (not yet acknowledged to its caller) may not show yet, even one that
        has just made this caller's insert or compare-and-set lose; such a
        write may also still fail. ``timpe.store.races`` reads what a lost
        race left.

        Served by the primary, it may also show a write in flight that no
        replica has yet, which vanishes if that primary dies first (a dirty
        read): a caller acts on a row it did not write only once it has
        confirmed it with :meth:`cas` (``timpe.store.races.confirmed``).
        """

    def get_many(table, keys):
        """Return the rows of those primary ``keys`` that exist, in any order,
        in one round trip; each as :meth:`get` would (read-your-writes).
        """

    def cas(table, key, version, changes):
        """Apply ``changes`` to one row only if it is still at ``version``.

        Decided on the row's primary copy. Return True when applied, False
        when the row changed (or vanished) since ``version`` was read, which
        a version read from a lagging copy may already have been.

        Acknowledged only once every in-sync copy has the row as changed,
        even by changes that set every column to what it was (no update is
        skipped as a no-op): so a row this applies to is kept.
        """

    def update(table, key, changes):
        """Apply ``changes`` to one existing row, whatever its version
        (atomic for that row). Return False when there is no such row.

        For a change every process would make from any state the row can
        be in by then: the protocol's last step, ``finished``.
        """

    def scan(table, where=None, order_by=None, limit=None, after=None):
        """Return rows matching ``where`` ({column: value or list of values}).

        ``after`` (a row, or a dict of the order's columns) keeps only the
        rows that come strictly after it in ``order_by``, which it needs:
        keyset paging, each page starting where the last one ended.

        Eventually consistent: may miss recent writes. Never rely on it
        being complete for correctness.
        """

    def count_by(table, column, where=None, least=None, fresh=None):
        """Count the rows matching ``where`` (as :meth:`scan`) by their value
        of ``column``, in one statement: {value: (rows, the least value of
        the column ``least`` among them, or None without ``least``)}. Values
        no row has are left out.

        Eventually consistent like :meth:`scan`. ``fresh``: False asks a
        store that can make recent writes visible first (a cluster's
        refresh) not to; None leaves it to the store's setting.
        """

    def newest(table, prefix, since=None):
        """Return the row with the highest key among those whose leading key
        columns equal ``prefix`` (every key column but the last), and whose
        last key column is at least ``since``; None when there is none.

        Eventually consistent like :meth:`scan`: it may return an older row,
        or None, while a newer one exists; never a row that was not written.
        """

    def durable():
        """Return once every write this process has made or read survives a
        power loss (an answer that reports one is sent only after this).
        A store whose acknowledged writes are already on disk returns at
        once; one that syncs later syncs now.
        """

    def setup():
        """Create the tables. Safe to repeat; destroys nothing.

        Return the names of the tables it created.
        """

    def serving():
        """Return (ready, why): whether every table can serve reads and
        writes now (a cluster's primary shards all active), and in words
        what is missing still or how healthy it is."""

    def drop():
        """Drop every table and its data."""

    def sql(statement, params=()):
        """Run one SQL statement for an operator shell; return (columns, rows)."""

    def close():
        """Release connections."""
