"""The recovery pass, in-process on the real SQLite store: what a crashed
node left in phase 2 is finished, nothing else is touched, a pass is
bounded, and passes of several processes at once converge."""
import threading

import pytest

from tests.conftest import assert_sound
from tests.processes import race
from timpe.ledger import Ledger, now_ms
from timpe.store.schema import TRANSACTIONS
from timpe.store.sqlite import SQLiteStore
from timpe.transactions.recovery import Recovery
from timpe.transactions.services import TransactionService
from timpe.transactions.appender import Appender
from timpe.users.services import UserService


def service(store):
    return TransactionService(store, UserService(store), Appender(store))


def recovery(store, **kwargs):
    return Recovery(store, service, **{"grace": 0, **kwargs})


@pytest.fixture
def users(store):
    users = UserService(store)
    return [users.register(name, 1000)["id"] for name in ("ann", "bob", "cy")]


def stuck(store, sender, recipient, amount=100, debited=False, age_ms=60_000):
    """What a node killed in phase 2 leaves: a transfer recorded with both
    legs claimed (``in progress``), maybe its debit written, and nothing
    after that; last moved ``age_ms`` ago."""
    txn, _ = TransactionService(store).create(sender, recipient, amount, claimed=True)
    if debited:  # its debit, carried as the protocol carries it
        row, leg = Appender(store).append(sender, txn["id"], -amount, txn["debit_seq"])
        assert (row["seq"], leg.kind) == (txn["debit_seq"], "debit")
    moved = now_ms() - age_ms
    store.update(TRANSACTIONS.name, (txn["id"],), {"timestamp": moved, "updated": moved})
    return txn["id"]


def state(store, txn_id):
    return store.get(TRANSACTIONS.name, (txn_id,))["state"]


def balances(store, ids):
    return [Ledger(store).head(uid)["balance"] for uid in ids]


def test_a_pass_finishes_what_a_crashed_node_left_in_phase_2(store, users):
    a, b, c = users
    # The last two claim the same seq of cy's ledger: one of them must fail.
    left = [stuck(store, a, b), stuck(store, b, c, debited=True),
            stuck(store, c, a, 900), stuck(store, c, a, 900)]
    assert sum(balances(store, users)) == 2900  # the debited one's money is in flight
    done = recovery(store).run_pass()
    assert {t["id"] for t in done.resumed} == set(left)
    assert all(t["state"] == "in progress" for t in done.resumed)  # as found
    assert sorted(state(store, t) for t in left) == ["failed"] + ["finished"] * 3
    assert balances(store, users) == [1800, 1000, 200]
    assert done.tally["in progress"][0] == 4  # counted before it resumed them
    assert recovery(store).run_pass().tally["in progress"] == (0, None)
    assert_sound(store)


def test_transfers_that_moved_within_the_grace_period_are_left_alone(store, users):
    a, b, _ = users
    young = stuck(store, a, b, age_ms=1000)
    old = stuck(store, a, b, age_ms=60_000)
    done = recovery(store, grace=30).run_pass()
    assert [t["id"] for t in done.resumed] == [old]
    assert (state(store, young), state(store, old)) == ("in progress", "finished")
    assert done.tally["in progress"][0] == 2


def test_queued_transfers_wait_for_process_unless_asked(store, users):
    a, b, _ = users
    queued, _ = TransactionService(store).create(a, b, 10)
    store.update(TRANSACTIONS.name, (queued["id"],), {"updated": 1, "timestamp": 1})
    done = recovery(store).run_pass()
    assert done.resumed == [] and state(store, queued["id"]) == "initial"
    assert done.tally["initial"] == (1, 1)
    done = recovery(store, initial=True).run_pass()
    assert [t["state"] for t in done.resumed] == ["initial"]
    assert state(store, queued["id"]) == "finished"


def test_a_pass_resumes_at_most_its_batch_least_recently_moved_first(store, users):
    a, b, _ = users
    left = [stuck(store, a, b, 10, age_ms=age) for age in (50_000, 70_000, 60_000)]
    done = recovery(store, batch=2).run_pass()
    assert [t["id"] for t in done.resumed] == [left[1], left[2]]
    assert state(store, left[0]) == "in progress"
    assert [t["id"] for t in recovery(store, batch=2).run_pass().resumed] == [left[0]]


def test_a_stopping_pass_starts_nothing_and_a_disabled_one_only_counts(store, users):
    a, b, _ = users
    txn_id = stuck(store, a, b)
    assert recovery(store).run_pass(stopping=lambda: True).resumed == []
    off = recovery(store, enabled=False).run_pass()
    assert off.resumed == [] and off.tally["in progress"][0] == 1
    assert state(store, txn_id) == "in progress"


def test_settings_and_their_bounds(store):
    made = Recovery.from_settings({"recovery.grace": "7", "recovery.batch": "3",
                                   "recovery.initial": "true", "recovery.enabled": "false"},
                                  store, service)
    assert (made.grace, made.batch, made.enabled) == (7.0, 3, False)
    assert "initial" in made.states
    default = Recovery.from_settings({}, store, service)
    assert (default.grace, default.interval, default.enabled) == (5.0, 1.0, True)
    assert "initial" not in default.states
    for bad in ({"grace": -1}, {"interval": 0}, {"batch": 0}):
        with pytest.raises(ValueError):
            Recovery(store, service, **bad)


def _pass_in_a_process(barrier, results, path):
    store = SQLiteStore(path)
    barrier.wait()
    results.put(len(recovery(store).run_pass().resumed))
    store.close()


def test_passes_of_several_processes_at_once_converge(store, db_path, users):
    a, b, c = users
    left = [stuck(store, *pair, amount=50, debited=n % 2 == 0)
            for n, pair in enumerate([(a, b), (b, c), (c, a), (a, c), (b, a), (c, b)] * 4)]
    resumed = race(_pass_in_a_process, [(db_path,)] * 4)
    assert sum(resumed) >= len(left)  # each pass found them all, or most
    assert {state(store, t) for t in left} == {"finished"}
    assert sum(balances(store, users)) == 3000
    assert_sound(store)  # none applied twice


def test_the_background_loop_runs_passes_until_stopped(store, users):
    from timpe.background import Background

    a, b, _ = users
    txn_id = stuck(store, a, b)
    loop = Background(recovery(store, interval=0.05))
    ticked = threading.Event()
    tick = loop.tick
    loop.tick = lambda: (tick(), ticked.set())
    loop.start()
    assert ticked.wait(5)
    assert loop.stop(timeout=5)
    assert state(store, txn_id) == "finished"
    assert not loop._thread.is_alive()
