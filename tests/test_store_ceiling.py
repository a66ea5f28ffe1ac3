"""The store's own ceiling (timpe.bench.ceiling), measured on each store:
every figure the benchmark holds transfers against comes out, from real
requests, and the scratch table is gone afterwards."""
import pytest

from timpe.bench import ceiling


@pytest.fixture(params=["sqlite", "crate"])
def any_store(request, store):
    if request.param == "sqlite":
        yield store
        return
    crate = request.getfixturevalue("crate_topology").store()
    yield crate
    crate.close()


def tables(store):
    if isinstance(store, ceiling.SQLiteStore):
        return {r[0] for r in store.sql("SELECT name FROM sqlite_master WHERE type = 'table'")[1]}
    return {r[0] for r in store.sql("SELECT table_name FROM information_schema.tables")[1]}


def test_each_figure_is_measured_and_the_scratch_table_dropped(any_store):
    before = tables(any_store)
    said = []
    figures = ceiling.measure(any_store, seconds=0.3, threads=4, say=said.append)
    labels = ["primary-key gets/s, one key a statement",
              "primary-key gets/s, 10 keys a statement (rows/s)", "single-row inserts/s"]
    if not isinstance(any_store, ceiling.SQLiteStore):
        labels += ["inserts in bulk requests of 50 rows (rows/s)",
                   "updates by key in bulk requests of 50 rows (rows/s)",
                   "look-ups of 50 keys, then their compare-and-sets in one bulk request "
                   "(rows/s)"]
    assert list(figures) == labels
    assert all(rate > 0 for rate in figures.values()), figures
    assert len(said) == len(labels)
    assert tables(any_store) == before


def test_a_bulk_ceiling_beside_another_figure_leaves_no_table(any_store):
    """What --workloads measures right after each shape: bulk-insert rows/s,
    on demand, from one scratch table dropped at the end; SQLite has no bulk
    request, so nothing."""
    before = tables(any_store)
    with ceiling.bulk_inserts(any_store, threads=4) as rate:
        if isinstance(any_store, ceiling.SQLiteStore):
            assert rate is None
        else:
            assert len(tables(any_store)) == len(before) + 1
            assert rate(0.3) > 0 and rate(0.3) > 0  # as often as asked
    assert tables(any_store) == before
