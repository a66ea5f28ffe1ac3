"""Reading what beat us in a race, by primary key.

A store decides insert-if-absent and compare-and-set on a row's primary
copy, but may serve a get from any copy (CrateDB picks the primary or a
replica at random). So the write that made ours lose may still be in
flight: applied on the primary, not yet on the copy a get reads, where it
shows as no row at all, or as the version we lost with. It may even fail
there (its primary dies before any replica has it) and leave the key free.
Either way it is settled soon, so read again after a short pause, and try
the insert again, until the winner is seen or the row we meant is written.

The other side of it: a get served by the primary may show a write that no
replica has yet, which vanishes if that primary dies first (a dirty read).
A caller about to act on a row it did not write itself makes it durable
first (:func:`confirmed`).
"""
import time

from timpe.errors import StoreUnavailable
from timpe.store.schema import table

# Growing pauses, about 5 s in all: a write in flight is seen after 1 ms
# (measured on a loaded two-node cluster); a primary that died mid-write
# takes the cluster a few seconds to replace.
PAUSES = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 1.5, 1.5)


def insert_or_read(store, table_name, row):
    """Insert ``row`` unless its key is taken; return (inserted, stored):
    whether the row is ours, and the row now under that key (``row``, or
    the winner's)."""
    key = tuple(row[c] for c in table(table_name).pk)
    for pause in (*PAUSES, None):
        if store.insert(table_name, row):
            return True, row
        found = store.get(table_name, key)
        if found is not None:
            return False, found
        if pause is not None:
            time.sleep(pause)
    raise StoreUnavailable(f"store unavailable: {table_name} {key} is taken by a write "
                           "that never became readable")


#: Compare-and-sets a confirmation tries, each lost to another confirmer,
#: before it gives up.
CONFIRMS = 20


def confirmed(store, table_name, row, same):
    """``row``, read from the store, once it is sure to be kept; None when
    it is gone (it was a write in flight that its primary lost, or the
    store was destroyed), or when what the key holds by then is another
    write (``same(stored)`` is false): the one read vanished, and the
    cluster's new primary took a different row under its key.

    A compare-and-set of the row at the version read, setting its
    timestamp to what it is, changes nothing but is a write like any other
    (CrateDB replicates it: no update is skipped as a no-op; SQLite bumps
    the version): decided on the primary, which still holds the row, and
    acknowledged once every in-sync copy has it, the row with it. Lost, it
    was to another process confirming the same row, or the row is gone or
    replaced: read it again, and try again while it is the same write.
    """
    key = tuple(row[c] for c in table(table_name).pk)
    for _ in range(CONFIRMS):
        if store.cas(table_name, key, row["_version"], {"timestamp": row["timestamp"]}):
            return {**row, "_version": None}
        row = read_newer(store, table_name, key, row["_version"])
        if row is None or not same(row):
            return None
    raise StoreUnavailable(f"store unavailable: {table_name} {key} could not be confirmed")


def read_newer(store, table_name, key, version):
    """The row at ``key`` after a compare-and-set from ``version`` lost:
    at another version, or None when the row is gone."""
    for pause in (*PAUSES, None):
        found = store.get(table_name, key)
        if found is None or found["_version"] != version:
            return found
        if pause is not None:
            time.sleep(pause)
    raise StoreUnavailable(f"store unavailable: {table_name} {key} changed, "
                           "but no copy shows how")
