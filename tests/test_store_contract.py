"""One contract for every store adapter: what the protocol may rely on.

Runs against SQLite (a temp file) always, and against a live CrateDB cluster:
the one TIMPE_CRATE_HOSTS names ("localhost:4200 localhost:4201"), else one
the session starts of its own whenever CrateDB is installed; each CrateDB run
works in a schema of its own and drops it afterwards.
Races use real OS processes, so the store, not the test, must serialise them.
"""
import json
import multiprocessing
import os
import subprocess
import sys
import time
import uuid
from types import SimpleNamespace

import pytest

from tests.processes import race

from timpe.errors import StoreReplaced
from timpe.store import identity, paging
from timpe.store.crate import CrateStore
from timpe.store.races import insert_or_read
from timpe.store.schema import TABLES, TRANSACTIONS, USER_TRANSACTIONS, USERS
from timpe.store.sqlite import SQLiteStore
from timpe.money import to_api
from timpe.transactions.services import TransactionService
from timpe.users.services import UserService

CRATE_HOSTS = os.environ.get("TIMPE_CRATE_HOSTS", "").strip()
PROCESSES = 6


class Spec:
    """How to open the store under test; picklable, so each racing process
    opens its own connection instead of inheriting one."""

    def __init__(self, factory, **kwargs):
        self.factory, self.kwargs = factory, kwargs

    def open(self):
        return self.factory(**self.kwargs)


def sqlite_spec(request, tmp_path):
    return Spec(SQLiteStore, path=tmp_path / "contract.sqlite")


def crate_spec(request, tmp_path):
    """The cluster TIMPE_CRATE_HOSTS names, else the session's own (which is
    skipped where CrateDB is not installed)."""
    hosts = CRATE_HOSTS or " ".join(
        node.host for node in request.getfixturevalue("crate_topology").cluster)
    # The contract checks what scans return, which CrateDB promises only
    # after a refresh: so these scans refresh first.
    return Spec(CrateStore, hosts=hosts, fresh_scans=True,
                schema=f"timpe_test_{uuid.uuid4().hex[:12]}")


@pytest.fixture(params=[sqlite_spec, crate_spec], ids=["sqlite", "crate"])
def spec(request, tmp_path):
    spec = request.param(request, tmp_path)
    yield spec
    store = spec.open()
    store.drop()
    store.close()


@pytest.fixture
def store(spec):
    store = spec.open()
    store.setup()
    yield store
    store.close()


def user(uid="u1", nickname="alice", **extra):
    return {"id": uid, "nickname": nickname, "initial_balance": 0,
            "head_seq": 0, "timestamp": 1, "key_hash": None, **extra}


def entry(user_id="u1", seq=0, amount=100):
    return {"user_id": user_id, "seq": seq, "transaction_id": None,
            "kind": "deposit", "amount": amount, "balance": amount, "timestamp": 1}


def without_version(row):
    return {k: v for k, v in row.items() if k != "_version"}


# -- racing processes -------------------------------------------------------------

def _race_insert(barrier, results, spec, row):
    store = spec.open()
    barrier.wait()
    results.put(store.insert(USERS.name, row))
    store.close()


def _race_cas(barrier, results, spec, version, nickname):
    store = spec.open()
    barrier.wait()
    results.put((nickname, store.cas(USERS.name, ("u1",), version, {"nickname": nickname})))
    store.close()


def _count_up(barrier, results, spec, times):
    """Increment head_seq ``times`` times by read + compare-and-set, retrying."""
    store = spec.open()
    barrier.wait()
    wins = 0
    while wins < times:
        row = store.get(USERS.name, ("u1",))
        if store.cas(USERS.name, ("u1",), row["_version"], {"head_seq": row["head_seq"] + 1}):
            wins += 1
    results.put(wins)
    store.close()


# -- insert-if-absent -------------------------------------------------------------

def test_insert_new_row_then_get_it(store):
    assert store.insert(USERS.name, user()) is True
    assert without_version(store.get(USERS.name, ("u1",))) == user()


def test_insert_taken_key_loses_and_changes_nothing(store):
    assert store.insert(USERS.name, user()) is True
    assert store.insert(USERS.name, user(nickname="mallory", head_seq=7)) is False
    assert without_version(store.get(USERS.name, ("u1",))) == user()


def test_a_written_row_is_read_for_its_version(store):
    assert store.insert(USERS.name, user()) is True
    version = store.get(USERS.name, ("u1",))["_version"]
    assert store.cas(USERS.name, ("u1",), version, {"head_seq": 1}) is True
    assert store.get(USERS.name, ("u1",))["_version"] != version


def test_insert_composite_key(store):
    assert store.insert(USER_TRANSACTIONS.name, entry(seq=0)) is True
    assert store.insert(USER_TRANSACTIONS.name, entry(seq=1)) is True
    assert store.insert(USER_TRANSACTIONS.name, entry(user_id="u2", seq=0)) is True
    assert store.insert(USER_TRANSACTIONS.name, entry(seq=1, amount=5)) is False
    assert store.get(USER_TRANSACTIONS.name, ("u1", 1))["amount"] == 100


def test_newest_of_a_key_prefix(store):
    for user_id, seq in (("u1", 0), ("u1", 1), ("u1", 2), ("u2", 0), ("u10", 5)):
        store.insert(USER_TRANSACTIONS.name, entry(user_id=user_id, seq=seq, amount=seq))
    if isinstance(store, CrateStore):  # a search sees what a refresh made visible
        store.refresh(USER_TRANSACTIONS.name)
    newest = store.newest(USER_TRANSACTIONS.name, ("u1",))
    assert (newest["user_id"], newest["seq"], newest["amount"]) == ("u1", 2, 2)
    assert store.newest(USER_TRANSACTIONS.name, ("u1",), since=2)["seq"] == 2
    assert store.newest(USER_TRANSACTIONS.name, ("u1",), since=3) is None
    assert store.newest(USER_TRANSACTIONS.name, ("u2",), since=0)["seq"] == 0
    assert store.newest(USER_TRANSACTIONS.name, ("nobody",)) is None
    with pytest.raises(ValueError):
        store.newest(USER_TRANSACTIONS.name, ("u1", 0))  # the prefix leaves out the last column


def test_insert_race_between_processes_has_one_winner(store, spec):
    rows = [(user(nickname=f"n{i}"),) for i in range(PROCESSES)]
    outcome = race(_race_insert, [(spec, *args) for args in rows], "fork")
    assert sorted(outcome) == [False] * (PROCESSES - 1) + [True]
    # The row is exactly one racer's, not a mix.
    assert store.get(USERS.name, ("u1",))["nickname"] in {f"n{i}" for i in range(PROCESSES)}


def test_unknown_table_or_column_is_refused(store):
    with pytest.raises(ValueError):
        store.insert("accounts", {"id": "x"})
    with pytest.raises(ValueError):
        store.insert(USERS.name, user(balance=5))


# -- get --------------------------------------------------------------------------

def test_get_absent_is_none(store):
    assert store.get(USERS.name, ("nobody",)) is None
    assert store.get(USER_TRANSACTIONS.name, ("u1", 0)) is None


def test_get_composite_key_and_every_column(store):
    store.insert(USER_TRANSACTIONS.name, entry(seq=3))
    row = store.get(USER_TRANSACTIONS.name, ("u1", 3))
    assert set(row) == set(USER_TRANSACTIONS.columns) | {"_version"}
    assert row["transaction_id"] is None
    assert store.get(USER_TRANSACTIONS.name, ("u1", 4)) is None
    assert store.get(USER_TRANSACTIONS.name, ("u2", 3)) is None


def test_get_many_returns_the_rows_that_exist(store):
    store.insert(USERS.name, user())
    store.insert(USERS.name, user(uid="u2", nickname="bob"))
    found = store.get_many(USERS.name, [("u2",), ("nobody",), ("u1",)])
    assert sorted(without_version(r)["nickname"] for r in found) == ["alice", "bob"]
    assert store.get_many(USERS.name, []) == []
    both = store.get_many(USER_TRANSACTIONS.name, [("u1", 0), ("u1", 1)])
    assert both == []
    store.insert(USER_TRANSACTIONS.name, entry(seq=1))
    [row] = store.get_many(USER_TRANSACTIONS.name, [("u1", 0), ("u1", 1)])
    assert (row["user_id"], row["seq"]) == ("u1", 1)


def test_get_many_of_thousands_of_keys(store):
    # Far more than one statement of OR-ed keys may hold (SQLite: 1,000 deep).
    for seq in range(0, 3000, 100):
        store.insert(USER_TRANSACTIONS.name, entry(seq=seq))
    found = store.get_many(USER_TRANSACTIONS.name, [("u1", seq) for seq in range(3000)])
    assert sorted(row["seq"] for row in found) == list(range(0, 3000, 100))


def test_get_many_rows_carry_versions_for_cas(store):
    store.insert(USERS.name, user())
    [row] = store.get_many(USERS.name, [("u1",)])
    assert row["_version"] == store.get(USERS.name, ("u1",))["_version"]
    assert store.cas(USERS.name, ("u1",), row["_version"], {"head_seq": 3}) is not None


def test_get_needs_the_whole_key(store):
    with pytest.raises(ValueError):
        store.get(USER_TRANSACTIONS.name, ("u1",))


def test_money_is_exact_integer_cents(store):
    big = 10**15 + 1  # more than a double holds exactly
    store.insert(USER_TRANSACTIONS.name, entry(amount=big))
    amount = store.get(USER_TRANSACTIONS.name, ("u1", 0))["amount"]
    assert amount == big and isinstance(amount, int)


# -- compare-and-set --------------------------------------------------------------

def test_cas_applies_and_moves_the_version(store):
    store.insert(USERS.name, user())
    old = store.get(USERS.name, ("u1",))["_version"]
    assert store.cas(USERS.name, ("u1",), old, {"head_seq": 8, "nickname": "alicia"}) is True
    row = store.get(USERS.name, ("u1",))
    assert (row["head_seq"], row["nickname"]) == (8, "alicia") and row["_version"] != old
    assert store.cas(USERS.name, ("u1",), row["_version"], {"head_seq": 16}) is True


def test_cas_with_a_stale_token_fails_and_changes_nothing(store):
    store.insert(USERS.name, user())
    old = store.get(USERS.name, ("u1",))["_version"]
    assert store.cas(USERS.name, ("u1",), old, {"head_seq": 8})
    assert store.cas(USERS.name, ("u1",), old, {"head_seq": 99}) is False
    assert store.get(USERS.name, ("u1",))["head_seq"] == 8


def test_cas_on_a_missing_row_fails(store):
    store.insert(USERS.name, user())
    version = store.get(USERS.name, ("u1",))["_version"]
    assert store.cas(USERS.name, ("u2",), version, {"head_seq": 1}) is False
    assert store.get(USERS.name, ("u2",)) is None


def test_update_applies_whatever_the_version(store):
    store.insert(USERS.name, user())
    old = store.get(USERS.name, ("u1",))["_version"]
    assert store.cas(USERS.name, ("u1",), old, {"head_seq": 8})
    assert store.update(USERS.name, ("u1",), {"nickname": "alicia"}) is True
    row = store.get(USERS.name, ("u1",))
    assert (row["head_seq"], row["nickname"]) == (8, "alicia")
    assert store.cas(USERS.name, ("u1",), old, {"head_seq": 9}) is False  # it moved the version
    assert store.update(USERS.name, ("u2",), {"nickname": "bob"}) is False
    assert store.get(USERS.name, ("u2",)) is None


def test_cas_and_update_change_something_and_never_a_primary_key(store):
    store.insert(USERS.name, user())
    version = store.get(USERS.name, ("u1",))["_version"]
    for change in (lambda changes: store.cas(USERS.name, ("u1",), version, changes),
                   lambda changes: store.update(USERS.name, ("u1",), changes)):
        with pytest.raises(ValueError, match="a primary key never changes"):
            change({"id": "u9", "nickname": "x"})
        with pytest.raises(ValueError, match="at least one change"):
            change({})
    assert store.get(USERS.name, ("u1",))["_version"] == version


def test_cas_accepts_the_token_a_scan_returned(store):
    store.insert(TRANSACTIONS.name, txn("t1", "initial"))
    [found] = store.scan(TRANSACTIONS.name, where={"state": "initial"})
    assert store.cas(TRANSACTIONS.name, ("t1",), found["_version"], {"state": "in progress"})


def test_concurrent_cas_on_one_version_has_one_winner(store, spec):
    store.insert(USERS.name, user())
    version = store.get(USERS.name, ("u1",))["_version"]
    outcome = race(_race_cas, [(spec, version, f"n{i}") for i in range(PROCESSES)], "fork")
    winners = [nick for nick, applied in outcome if applied]
    assert len(winners) == 1 and all(applied is False for _, applied in outcome
                                     if _ != winners[0])
    assert store.get(USERS.name, ("u1",))["nickname"] == winners[0]


def test_cas_loses_no_update_under_contention(store, spec):
    store.insert(USERS.name, user())
    times = 15
    assert race(_count_up, [(spec, times)] * PROCESSES, "fork") == [times] * PROCESSES
    assert store.get(USERS.name, ("u1",))["head_seq"] == times * PROCESSES


# -- what a lost race leaves (timpe.store.races) ------------------------------------

class WatchedGets:
    """The real store, counting the gets that found no row."""

    def __init__(self, store):
        self.store, self.missed = store, 0

    def __getattr__(self, name):
        return getattr(self.store, name)

    def get(self, table_name, key):
        found = self.store.get(table_name, key)
        self.missed += found is None
        return found


def _race_for_keys(barrier, results, spec, tag, index, rounds):
    """Race the others for a fresh ledger key each round through insert_or_read."""
    store = WatchedGets(spec.open())
    seen = []
    for r in range(rounds):
        row = entry(user_id=f"{tag}-{r}", seq=1) | {"transaction_id": f"racer-{index}"}
        barrier.wait()
        missed = store.missed
        won, stored = insert_or_read(store, USER_TRANSACTIONS.name, row)
        seen.append((f"racer-{index}", bool(won), stored["transaction_id"], store.missed > missed))
    results.put(seen)
    store.close()


def _burn(stop):
    while not stop.is_set():
        sum(range(10_000))


def test_a_lost_insert_reads_the_winner_even_while_it_is_in_flight(store, spec):
    """On CrateDB a get may be served by a replica the winner's write has
    not reached: the loser's get right after finds nothing. Racing on a
    busy machine until that happened, every loser still read the winner's
    row through insert_or_read, and each key had one winner."""
    crate = isinstance(store, CrateStore)
    ctx = multiprocessing.get_context("fork")
    stop = ctx.Event()
    burners = [ctx.Process(target=_burn, args=(stop,)) for _ in range(2 if crate else 0)]
    for burner in burners:
        burner.start()
    provoked, deadline = 0, time.monotonic() + 150
    try:
        while True:
            tag, rounds = uuid.uuid4().hex[:8], 300
            outcome = race(_race_for_keys, [(spec, tag, i, rounds) for i in range(PROCESSES)],
                           "fork")
            for r in range(rounds):
                answers = [seen[r] for seen in outcome]
                [winner] = [racer for racer, won, _, _ in answers if won]
                assert {stored for _, _, stored, _ in answers} == {winner}, answers
                provoked += sum(missed for _, _, _, missed in answers)
            if not crate or provoked >= 2 or time.monotonic() > deadline:
                break
    finally:
        stop.set()
        for burner in burners:
            burner.join()
    if crate:
        assert provoked, "no get missed a winner in flight: the case was not provoked"


# -- many callers of one process at once (timpe.store.batching) -------------------

_GREENLETS = r"""
from gevent import monkey; monkey.patch_all()
import json, sys, gevent
from timpe.store.crate import CrateStore
from timpe.store.sqlite import SQLiteStore
kind, args = json.loads(sys.argv[1])
store = (SQLiteStore if kind == "sqlite" else CrateStore)(**args)
sizes = []
if kind == "sqlite":
    run = store._store_batch
    store._store_batch = lambda batch: (sizes.append(len(batch)), run(batch))
else:
    run = store._execute_bulk
    store._execute_bulk = lambda sql, bulk, lost: (sizes.append(len(bulk)), run(sql, bulk, lost))[1]
def inserts(g):
    won = []
    for seq in range(20):
        row = {"user_id": "u%d" % (g % 8), "seq": seq, "transaction_id": "g%d" % g,
               "kind": "deposit", "amount": 1, "balance": seq, "timestamp": 0}
        if store.insert("user_transactions", row):
            won.append(seq)
    rows = store.get_many("user_transactions", [("u%d" % (g % 8), s) for s in range(20)])
    return won, sorted([r["seq"], r["transaction_id"]] for r in rows)
jobs = [gevent.spawn(inserts, g) for g in range(16)]
gevent.joinall(jobs, raise_error=True)
for i in range(8):
    store.insert("users", {"id": "u%d" % i, "nickname": "n", "initial_balance": 0,
                           "head_seq": 0, "timestamp": 0})
versions = {r["id"]: r["_version"] for r in store.get_many("users", [("u%d" % i,) for i in range(8)])}
def cas(g):
    return store.cas("users", ("u%d" % (g % 8),), versions["u%d" % (g % 8)], {"nickname": "g%d" % g})
racers = [gevent.spawn(cas, g) for g in range(16)]
gevent.joinall(racers, raise_error=True)
updates = [gevent.spawn(store.update, "users", ("u%d" % i,), {"head_seq": i}) for i in range(9)]
gevent.joinall(updates, raise_error=True)
users = {r["id"]: r for r in store.get_many("users", [("u%d" % i,) for i in range(9)])}
print(json.dumps({"sizes": sizes, "inserts": [j.value for j in jobs],
                  "cas": [j.value for j in racers], "updates": [j.value for j in updates],
                  "users": {u: [r["nickname"], r["head_seq"]] for u, r in users.items()}}))
"""


def test_greenlets_of_one_process_each_get_their_own_outcome(store, spec):
    """The writes and reads greenlets send at once travel together, and
    each caller still learns exactly what became of its own."""
    args = {k: str(v) if k == "path" else v for k, v in spec.kwargs.items()}
    kind = "crate" if spec.factory is CrateStore else "sqlite"
    out = subprocess.run([sys.executable, "-c", _GREENLETS, json.dumps([kind, args])],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    assert max(seen["sizes"]) > 1  # greenlets waiting together shared a batch
    for g in range(8):  # g and g + 8 raced for the same 20 keys: one winner each
        won, rival = seen["inserts"][g][0], seen["inserts"][g + 8][0]
        assert sorted(won + rival) == list(range(20))
        for won, rows in (seen["inserts"][g], seen["inserts"][g + 8]):
            assert rows == sorted([seq, f"g{g if seq in seen['inserts'][g][0] else g + 8}"]
                                  for seq in range(20))
    for i in range(8):  # one compare-and-set of each version won, and it is stored
        winners = [g for g in (i, i + 8) if seen["cas"][g]]
        assert len(winners) == 1 and seen["users"][f"u{i}"] == [f"g{winners[0]}", i]
    assert seen["updates"] == [True] * 8 + [False]  # u8 does not exist
    assert "u8" not in seen["users"]


# -- scan -------------------------------------------------------------------------

def txn(tid, state, timestamp=1):
    return {"id": tid, "sender": "a", "recipient": "b", "amount": 1, "state": state,
            "timestamp": timestamp, "updated": timestamp}


@pytest.fixture
def three(store):
    for tid, state, ts in (("t1", "initial", 30), ("t2", "committed", 10), ("t3", "initial", 20)):
        store.insert(TRANSACTIONS.name, txn(tid, state, ts))
    return store


def ids(rows):
    return [r["id"] for r in rows]


def test_scan_everything(three):
    rows = three.scan(TRANSACTIONS.name)
    assert sorted(ids(rows)) == ["t1", "t2", "t3"]
    assert all(set(r) == set(TRANSACTIONS.columns) | {"_version"} for r in rows)


def test_scan_where_one_value_and_a_list(three):
    assert sorted(ids(three.scan(TRANSACTIONS.name, where={"state": "initial"}))) == ["t1", "t3"]
    both = three.scan(TRANSACTIONS.name, where={"state": ["committed", "finished"]})
    assert ids(both) == ["t2"]
    assert three.scan(TRANSACTIONS.name, where={"state": []}) == []
    assert ids(three.scan(TRANSACTIONS.name, where={"state": "initial", "timestamp": 20})) == ["t3"]


def test_scan_order_and_limit(three):
    assert ids(three.scan(TRANSACTIONS.name, order_by="timestamp")) == ["t2", "t3", "t1"]
    assert ids(three.scan(TRANSACTIONS.name, order_by=("timestamp DESC", "id"))) == ["t1", "t3", "t2"]
    assert ids(three.scan(TRANSACTIONS.name, order_by="id desc", limit=2)) == ["t3", "t2"]
    assert ids(three.scan(TRANSACTIONS.name, where={"state": "initial"},
                          order_by="timestamp", limit=1)) == ["t3"]


def test_count_by_a_column(three):
    assert three.count_by(TRANSACTIONS.name, "state") == {"initial": (2, None),
                                                          "committed": (1, None)}
    assert three.count_by(TRANSACTIONS.name, "state", where={"state": ["initial", "failed"]},
                          least="timestamp") == {"initial": (2, 20)}
    assert three.count_by(TRANSACTIONS.name, "state", where={"state": []}) == {}
    with pytest.raises(ValueError):
        three.count_by(TRANSACTIONS.name, "balance")


def test_scan_after_a_row_pages_by_keyset(three):
    three.insert(TRANSACTIONS.name, txn("t0", "initial", 20))  # ties t3 on timestamp
    order = ("timestamp DESC", "id")
    everything = ids(three.scan(TRANSACTIONS.name, order_by=order))
    assert everything == ["t1", "t0", "t3", "t2"]
    pages, after = [], None
    while True:
        page = three.scan(TRANSACTIONS.name, order_by=order, limit=1, after=after)
        if not page:
            break
        pages += ids(page)
        after = page[-1]  # a whole row will do: the order's columns are read from it
    assert pages == everything
    assert ids(three.scan(TRANSACTIONS.name, order_by=order, after={"timestamp": 20, "id": "t0"})) \
        == ["t3", "t2"]
    assert ids(three.scan(TRANSACTIONS.name, where={"state": "initial"}, order_by=order,
                          after={"timestamp": 30, "id": "t1"}, limit=5)) == ["t0", "t3"]
    assert ids(three.scan(TRANSACTIONS.name, order_by="id", after={"id": "t3"})) == []
    with pytest.raises(ValueError):
        three.scan(TRANSACTIONS.name, after={"id": "t1"})  # no order to be after in
    with pytest.raises(ValueError):
        three.scan(TRANSACTIONS.name, order_by=order, after={"id": "t1"})


@pytest.mark.parametrize("page", [1, 2, 3, 4])
def test_every_row_comes_a_page_at_a_time_in_order(store, page):
    for user_id in ("u1", "u2"):
        for seq in range(3):
            store.insert(USER_TRANSACTIONS.name, entry(user_id, seq))
    scans = []
    counted = lambda *args, **kwargs: scans.append(kwargs) or store.scan(*args, **kwargs)  # noqa
    rows = list(paging.every(SimpleNamespace(scan=counted), USER_TRANSACTIONS.name,
                             ("user_id", "seq"), page))
    assert [(r["user_id"], r["seq"]) for r in rows] == [
        (u, s) for u in ("u1", "u2") for s in range(3)]
    assert len(scans) == 6 // page + 1 and all(k["limit"] == page for k in scans)


def test_scan_refuses_what_is_not_in_the_schema(three):
    with pytest.raises(ValueError):
        three.scan(TRANSACTIONS.name, where={"balance": 1})
    with pytest.raises(ValueError):
        three.scan(TRANSACTIONS.name, order_by="timestamp sideways")


# -- setup, drop, sql ---------------------------------------------------------------

def test_setup_is_idempotent_and_keeps_data(spec):
    store = spec.open()
    assert sorted(store.setup()) == sorted(TABLES)
    store.insert(USERS.name, user())
    assert store.setup() == []
    assert store.get(USERS.name, ("u1",))["nickname"] == "alice"
    store.close()


def test_drop_removes_tables_and_data(store):
    store.insert(USERS.name, user())
    store.drop()
    assert sorted(store.setup()) == sorted(TABLES)
    assert store.get(USERS.name, ("u1",)) is None


def transfer(tid="t1"):
    return {"id": tid, "sender": "u1", "recipient": "u2", "amount": 1, "state": "initial",
            "timestamp": 1, "updated": 1}


def stamps(store, name):
    """The tokens ``name``'s rows carry, as stored."""
    if store.name == "crate":
        store.sql(f"REFRESH TABLE {name}")
    return {row[0] for row in store.sql(f"SELECT store FROM {name}")[1]}


def test_each_table_made_carries_a_token_of_its_own_in_every_insert(spec):
    store = spec.open()
    store.setup()
    tokens = [store.tokens.get(name) for name in identity.TABLES]
    assert all(tokens) and len(set(tokens)) == len(tokens)
    assert store.insert(TRANSACTIONS.name, transfer())
    assert store.insert(USER_TRANSACTIONS.name, entry())
    assert [stamps(store, name) for name in identity.TABLES] == [{t} for t in tokens]
    # Another process destroys the store and makes it again: every insert
    # of this one into those tables is refused, and writes nothing.
    other = spec.open()
    other.drop()
    other.setup()
    assert not {other.tokens.get(name) for name in identity.TABLES} & set(tokens)
    for name, row in ((TRANSACTIONS.name, transfer()), (USER_TRANSACTIONS.name, entry())):
        with pytest.raises(StoreReplaced, match=f"table {name} was made again"):
            store.insert(name, row)
        assert other.get(name, (row["id"],) if name == TRANSACTIONS.name else ("u1", 0)) is None
    assert store.insert(USERS.name, user())  # no row of it is written after another
    # Opened again (a process started over), it reads the new tokens.
    again = spec.open()
    assert again.insert(USER_TRANSACTIONS.name, entry())
    assert stamps(again, USER_TRANSACTIONS.name) == {other.tokens.get(USER_TRANSACTIONS.name)}
    for opened in (store, other, again):
        opened.close()


def test_a_process_opened_before_the_setup_stamps_its_inserts_after_it(spec):
    early = spec.open()
    with pytest.raises(Exception):  # no table yet
        early.insert(USER_TRANSACTIONS.name, entry())
    other = spec.open()
    other.setup()
    assert early.insert(USER_TRANSACTIONS.name, entry())
    assert stamps(other, USER_TRANSACTIONS.name) == {other.tokens.get(USER_TRANSACTIONS.name)}
    for opened in (early, other):
        opened.close()


def test_a_token_a_process_holds_is_kept_while_it_looks_for_a_table_not_there(spec):
    setup = spec.open()
    setup.setup()
    setup.sql(f"DROP TABLE {USER_TRANSACTIONS.name}")  # a setup cut short
    early = spec.open()
    assert early.insert(TRANSACTIONS.name, transfer())
    # The store is made again; the ledger, missing when the process read,
    # is looked for again, but the token it held for transactions stays.
    other = spec.open()
    other.drop()
    other.setup()
    assert early.insert(USER_TRANSACTIONS.name, entry())
    with pytest.raises(StoreReplaced, match=f"table {TRANSACTIONS.name} was made again"):
        early.insert(TRANSACTIONS.name, transfer("t2"))
    assert other.get(TRANSACTIONS.name, ("t2",)) is None
    for opened in (setup, early, other):
        opened.close()


def test_sql_returns_columns_and_rows(store):
    store.insert(USERS.name, user())
    columns, rows = store.sql("SELECT id, nickname FROM users WHERE id = ?", ("u1",))
    assert (columns, rows) == (["id", "nickname"], [("u1", "alice")])


def test_a_row_of_many_legs_comes_back_as_written(store):
    legs = '[["t1","credit",500,600],["t2","debit",-200,400],["t3","declined",0,400]]'
    row = {**entry(seq=1, amount=300), "kind": "legs", "balance": 400, "legs": legs,
           "held": 0}
    assert store.insert(USER_TRANSACTIONS.name, row)
    assert without_version(store.get(USER_TRANSACTIONS.name, ("u1", 1))) == row
    assert store.get(USER_TRANSACTIONS.name, ("u1", 1))["legs"] == legs


# The ledger as an earlier version made it: no legs column.
EARLIER_LEDGER = {
    "sqlite": "CREATE TABLE user_transactions (user_id TEXT NOT NULL, seq INTEGER NOT NULL, "
              "transaction_id TEXT, kind TEXT NOT NULL, amount INTEGER NOT NULL, balance INTEGER "
              "NOT NULL, timestamp INTEGER NOT NULL, version INTEGER NOT NULL DEFAULT 1, "
              "PRIMARY KEY (user_id, seq)) WITHOUT ROWID",
    "crate": "CREATE TABLE user_transactions (row_key TEXT PRIMARY KEY, user_id TEXT NOT NULL, "
             "seq BIGINT NOT NULL, transaction_id TEXT, kind TEXT NOT NULL, amount BIGINT NOT "
             "NULL, balance BIGINT NOT NULL, \"timestamp\" BIGINT NOT NULL) "
             "WITH (column_policy = 'strict')",
}


def test_setup_gives_a_ledger_of_an_earlier_version_its_legs_column(store):
    store.sql("DROP TABLE user_transactions")
    store.sql(EARLIER_LEDGER[store.name])
    assert store.setup() == []  # every table is there: it only gains the column
    assert store.setup() == []
    assert store.insert(USER_TRANSACTIONS.name, {**entry(), "legs": '[["t","credit",1,1]]'})
    assert store.get(USER_TRANSACTIONS.name, ("u1", 0))["legs"] == '[["t","credit",1,1]]'
    # It gains a token too, which its rows from now on carry.
    token = store.tokens.get(USER_TRANSACTIONS.name)
    assert token is not None and stamps(store, USER_TRANSACTIONS.name) == {token}


# The transactions table before holds: no expires, posted, release_seq.
EARLIER_TRANSACTIONS = {
    "sqlite": "CREATE TABLE transactions (id TEXT PRIMARY KEY, sender TEXT NOT NULL, "
              "recipient TEXT NOT NULL, amount INTEGER NOT NULL, state TEXT NOT NULL, "
              "timestamp INTEGER NOT NULL, updated INTEGER NOT NULL, debit_seq INTEGER, "
              "credit_seq INTEGER, reason TEXT, fingerprint TEXT, "
              "version INTEGER NOT NULL DEFAULT 1) WITHOUT ROWID",
    "crate": "CREATE TABLE transactions (id TEXT PRIMARY KEY, sender TEXT NOT NULL, "
             "recipient TEXT NOT NULL, amount BIGINT NOT NULL, state TEXT NOT NULL, "
             "\"timestamp\" BIGINT NOT NULL, updated BIGINT NOT NULL, debit_seq BIGINT, "
             "credit_seq BIGINT, reason TEXT, fingerprint TEXT) "
             "WITH (column_policy = 'strict')",
}


def test_a_store_of_an_earlier_version_gains_the_columns_of_holds_and_serves_them(store):
    for name, ddl in ((USER_TRANSACTIONS.name, EARLIER_LEDGER), ("transactions", EARLIER_TRANSACTIONS)):
        store.sql(f"DROP TABLE {name}")
        store.sql(ddl[store.name])
    # A user whose row 0 an earlier version wrote: no legs, no held.
    store.insert(USERS.name, user(initial_balance=500))
    store.insert(USER_TRANSACTIONS.name, entry(amount=500))
    store.insert(USERS.name, user("u2", "bob"))
    assert store.setup() == []
    assert store.setup() == []  # again: nothing more to add
    assert store.get(USER_TRANSACTIONS.name, ("u1", 0))["held"] is None
    service = TransactionService(store)
    held, _ = service.hold("u1", "u2", 200)
    assert held["state"] == "held"
    stored = service.find(held["id"])
    assert stored["expires"] > stored["timestamp"] and stored["posted"] is None
    assert UserService(store).find("u1")["held"] == to_api(200)
    service.post(held["id"], 150)
    assert [UserService(store).find(u)["balance"] for u in ("u1", "u2")] == [to_api(350),
                                                                              to_api(150)]
    assert UserService(store).find("u1")["held"] == 0


# The users table as an earlier version made it: no key_hash column.
EARLIER_USERS = {
    "sqlite": "CREATE TABLE users (id TEXT PRIMARY KEY, nickname TEXT NOT NULL, initial_balance "
              "INTEGER NOT NULL, head_seq INTEGER NOT NULL, timestamp INTEGER NOT NULL, "
              "version INTEGER NOT NULL DEFAULT 1) WITHOUT ROWID",
    "crate": "CREATE TABLE users (id TEXT PRIMARY KEY, nickname TEXT NOT NULL, initial_balance "
             "BIGINT NOT NULL, head_seq BIGINT NOT NULL, \"timestamp\" BIGINT NOT NULL) "
             "WITH (column_policy = 'strict')",
}


def test_setup_gives_users_of_an_earlier_version_their_key_hash_column(store):
    store.sql("DROP TABLE users")
    store.sql(EARLIER_USERS[store.name])
    earlier = {k: v for k, v in user().items() if k != "key_hash"}
    store.sql("INSERT INTO users (id, nickname, initial_balance, head_seq, \"timestamp\") "
              "VALUES (?, ?, ?, ?, ?)", tuple(earlier[c] for c in
                                            ("id", "nickname", "initial_balance", "head_seq",
                                             "timestamp")))
    assert store.setup() == []  # every table is there: it only gains the column
    assert store.setup() == []
    assert store.get(USERS.name, ("u1",))["key_hash"] is None  # a user from before has no key
    assert store.update(USERS.name, ("u1",), {"key_hash": "ab" * 32})
    assert store.get(USERS.name, ("u1",))["key_hash"] == "ab" * 32


def test_after_setup_the_store_serves_and_says_how(store):
    deadline = time.monotonic() + 60  # a new table's shards start within seconds
    ready, why = store.serving()
    while not ready and time.monotonic() < deadline:
        time.sleep(0.5)
        ready, why = store.serving()
    assert ready, why
    assert why == "a local file" if store.name == "sqlite" else why.startswith(("green", "yellow"))


def _race_decisions(barrier, results, spec, action, txn_ids):
    from timpe.errors import Conflict
    store = spec.open()
    service = TransactionService(store)
    barrier.wait()
    said = []
    for txn_id in txn_ids:
        try:
            said.append((service.post(txn_id) if action == "post"
                         else service.void(txn_id))["state"])
        except Conflict:
            said.append(None)
    store.close()
    results.put((action, said))


def test_holds_posted_and_voided_by_racing_processes_have_one_outcome_each(store, spec):
    from timpe.audit import audit
    users = UserService(store)
    a, b = users.register("buyer", 10_000)["id"], users.register("shop", 0)["id"]
    service = TransactionService(store)
    holds = [service.hold(a, b, 100)[0]["id"] for _ in range(12)]
    actions = ["post", "void"] * (PROCESSES // 2)
    outcome = race(_race_decisions, [(spec, action, holds) for action in actions], "fork")
    posted = 0
    for i, txn_id in enumerate(holds):
        final = service.find(txn_id)["state"]
        winner = "post" if final == "finished" else "void"
        assert final in ("finished", "voided")
        # Every racer of the winning decision says the outcome; the others, 409.
        assert {(action, said[i]) for action, said in outcome} == {
            (winner, final), ("void" if winner == "post" else "post", None)}
        posted += final == "finished"
    assert (users.find(a)["balance"], users.find(a)["held"]) == (
        to_api(10_000 - 100 * posted), 0)
    assert users.find(b)["balance"] == to_api(100 * posted)
    assert audit(store)["problems"] == []


def test_crate_reads_a_whole_table_with_an_operators_patience(request, tmp_path):
    """The audit reads whole tables, which on a grown cluster take longer
    than a request's statement may wait: such a scan waits as long as an
    operator's statement, a request's scan no longer than its own timeout."""
    from timpe.errors import StoreUnavailable
    spec = crate_spec(request, tmp_path)
    store = spec.open()
    store.setup()
    try:
        name = f'"{spec.kwargs["schema"]}"."{USERS.name}"'
        store.sql(f"INSERT INTO {name} (id, nickname, initial_balance, head_seq, timestamp) "
                  "SELECT 'u' || CAST(n AS TEXT), 'n' || CAST(n AS TEXT), 0, 0, 1 "
                  "FROM generate_series(1, 50000) AS s(n)")
        store.refresh(USERS.name)
        # No request's statement reads 50,000 rows within 20 ms.
        hurried = CrateStore(**{**spec.kwargs, "timeout": 0.02, "fresh_scans": False})
        with pytest.raises(StoreUnavailable):
            hurried.scan(USERS.name, limit=50_000)
        assert len(hurried.scan(USERS.name)) == 50_000
        hurried.close()
    finally:
        store.drop()
        store.close()
