"""Group commit: writes waiting at the same time are stored together, each
keeps its own outcome, and a failure never leaves a writer waiting."""
import json
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from timpe.errors import StoreUnavailable
from timpe.store.batching import Batcher, Job
from timpe.store.sqlite import SQLiteStore, insert_sql


def _together(count, write):
    """Call ``write(i)`` for i < count on as many threads released at once;
    return {i: what it returned or raised}."""
    barrier, results = threading.Barrier(count), {}

    def one(i):
        barrier.wait()
        try:
            results[i] = write(i)
        except Exception as exc:  # noqa: BLE001 - the outcome under test
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
        assert not t.is_alive()
    return results


def test_writes_that_wait_together_are_stored_together():
    batches = []

    def run(batch):
        batches.append([w.sql for w in batch])
        time.sleep(0.05)  # the others arrive meanwhile
        for w in batch:
            w.outcome = [(w.sql, w.params)]

    queue = Batcher(run)
    results = _together(8, lambda i: queue.submit(f"w{i}", (i,)))
    assert results == {i: [(f"w{i}", (i,))] for i in range(8)}
    assert sorted(sum(batches, [])) == sorted(f"w{i}" for i in range(8))  # each once
    assert len(batches) < 8


def test_a_failed_batch_fails_each_of_its_writes_and_the_queue_goes_on():
    calls = []

    def run(batch):
        calls.append(len(batch))
        if len(calls) == 1:
            time.sleep(0.05)  # the others queue behind the first
            batch[0].outcome = [("stored",)]
            raise RuntimeError("cut short")
        for w in batch:
            w.outcome = [("stored",)]

    queue = Batcher(run)
    results = _together(4, lambda i: queue.submit("w", ()))
    kinds = sorted(type(r).__name__ for r in results.values())
    assert kinds.count("RuntimeError") == 1  # the leader hears what stopped it
    assert set(kinds) <= {"RuntimeError", "StoreUnavailable", "list"}
    assert queue.submit("again", ()) == [("stored",)]


def _users_row(i, nickname="n"):
    return {"id": f"u{i}", "nickname": nickname, "initial_balance": 1,
            "head_seq": 0, "timestamp": 0}


def _writes(rows):
    return [Job(insert_sql("users", tuple(row)), list(row.values())) for row in rows]


def _ids(store):
    return [r[0] for r in store.sql("SELECT id FROM users ORDER BY id")[1]]


def test_a_batch_keeps_each_writes_outcome(tmp_path):
    store = SQLiteStore(tmp_path / "s.sqlite")
    store.setup()
    batch = _writes([_users_row(1), _users_row(1, "again"), _users_row(2, None), _users_row(3)])
    store._store_batch(batch)
    assert batch[0].outcome == [(1,)]        # inserted: its version
    assert batch[1].outcome == []            # the same key: not inserted
    assert isinstance(batch[2].outcome, sqlite3.IntegrityError)  # NOT NULL, alone undone
    assert batch[3].outcome == [(1,)]
    assert _ids(store) == ["u1", "u3"]
    assert store.get("users", ("u1",))["nickname"] == "n"


def test_a_batch_the_store_rolls_back_stores_nothing(tmp_path):
    store = SQLiteStore(tmp_path / "s.sqlite")
    store.setup()
    store.sql("CREATE TRIGGER refuse BEFORE INSERT ON users WHEN NEW.nickname = 'boom' "
              "BEGIN SELECT RAISE(ROLLBACK, 'refused'); END")
    batch = _writes([_users_row(1), _users_row(2, "boom"), _users_row(3)])
    store._store_batch(batch)
    assert all(isinstance(w.outcome, StoreUnavailable) for w in batch)
    assert _ids(store) == []
    store.insert("users", _users_row(4))  # the connection is usable again
    assert _ids(store) == ["u4"]


def test_a_batch_waits_while_another_connection_holds_the_write_lock(tmp_path):
    path = tmp_path / "s.sqlite"
    store = SQLiteStore(path, busy_timeout_ms=10000)
    store.setup()
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.3, other.execute, ("COMMIT",))
    release.start()
    started = time.monotonic()
    batch = _writes([_users_row(1), _users_row(2)])
    store._store_batch(batch)
    assert time.monotonic() - started >= 0.25
    assert [w.outcome for w in batch] == [[(1,)], [(1,)]]
    release.join()
    other.close()


_GREENLETS = r"""
from gevent import monkey; monkey.patch_all()
import json, sys, gevent
from timpe.store.sqlite import SQLiteStore
store = SQLiteStore(sys.argv[1])
sizes, store_batch = [], store._store_batch
def observed(batch):
    sizes.append(len(batch))
    store_batch(batch)
store._store_batch = observed
def writer(g):
    won = []
    for seq in range(30):
        row = {"user_id": "u%d" % (g % 8), "seq": seq, "transaction_id": "g%d" % g,
               "kind": "deposit", "amount": 1, "balance": seq, "timestamp": 0}
        if store.insert("user_transactions", row):
            won.append(seq)
        store.get("user_transactions", ("u0", 0))
    return won
jobs = [gevent.spawn(writer, g) for g in range(16)]
gevent.joinall(jobs, raise_error=True)
print(json.dumps({"sizes": sizes, "won": [j.value for j in jobs]}))
"""


@pytest.mark.timeout(120)
def test_greenlets_of_one_process_share_transactions_and_every_key_has_one_winner(tmp_path):
    path = tmp_path / "s.sqlite"
    store = SQLiteStore(path)
    store.setup()
    out = subprocess.run([sys.executable, "-c", _GREENLETS, str(path)], capture_output=True,
                         text=True, timeout=100, check=True)
    seen = json.loads(out.stdout)
    assert sum(seen["sizes"]) == 16 * 30  # every write went through a batch
    assert max(seen["sizes"]) > 1         # and greenlets waiting together shared one
    # Greenlets g and g + 8 raced for the same 30 keys: one winner for each.
    for g in range(8):
        assert sorted(seen["won"][g] + seen["won"][g + 8]) == list(range(30))
    stored = store.sql("SELECT user_id, seq, transaction_id FROM user_transactions")[1]
    assert len(stored) == 8 * 30
    for user_id, seq, txn in stored:
        assert seq in seen["won"][int(txn[1:])]
        assert int(txn[1:]) % 8 == int(user_id[1:])


def test_a_turn_wakes_its_waiters_as_it_ends():
    from timpe.store.batching import Turn

    turn = Turn()
    assert turn.wait(0) and not turn.taken()
    assert turn.take() and not turn.take()
    assert turn.wait(0.05) is False  # still taken: timed out
    woken = []
    waiter = threading.Thread(target=lambda: woken.append(turn.wait(10)))
    waiter.start()
    time.sleep(0.05)
    assert not woken
    turn.end()
    waiter.join(5)
    assert woken == [True] and not turn.taken()
    # Taken blocking (held), it wakes them too as it is left.
    with turn.held():
        waiter = threading.Thread(target=lambda: woken.append(turn.wait(10)))
        waiter.start()
        time.sleep(0.05)
        assert len(woken) == 1
    waiter.join(5)
    assert woken == [True, True] and turn.take()


_TRICKLE = r"""
from gevent import monkey; monkey.patch_all()
import json, sys, time, gevent
from timpe.store.batching import Batcher
linger, every, count = json.loads(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
sizes = []
def run(batch):
    sizes.append(len(batch))
    gevent.sleep(0.002)  # a round trip
    for job in batch:
        job.outcome = job.params
queue = Batcher(run, linger and tuple(linger))
pauses = []
if linger:
    pause = queue._pause
    queue._pause = lambda seconds: pauses.append(seconds) or pause(seconds)
def writer(i):
    gevent.sleep(max(0, i - 1) * every)  # two at once, then one every ``every`` s
    return queue.submit("w", i)
jobs = [gevent.spawn(writer, i) for i in range(count)]
gevent.joinall(jobs, raise_error=True)
assert [j.value for j in jobs] == list(range(count))
paused = len(pauses)
queue.submit("alone", 0)
print(json.dumps({"sizes": sizes, "paused": paused, "alone": len(pauses) - paused}))
"""


def _trickle(linger, every, count):
    out = subprocess.run([sys.executable, "-c", _TRICKLE, json.dumps(linger), str(every),
                          str(count)], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout)


def test_a_leader_that_lingers_sends_what_keeps_arriving_in_one_batch():
    # 30 statements, two at once then one every 1 ms: without lingering the
    # first two go together and the rest in the batches that queue behind
    # each round trip.
    alone = _trickle(None, 0.001, 30)
    lingered = _trickle([0.003, 1.0], 0.001, 30)
    assert sum(alone["sizes"]) == sum(lingered["sizes"]) == 31
    assert alone["sizes"][0] == 2 and len(alone["sizes"]) >= 4
    assert lingered["sizes"][0] >= 25 and len(lingered["sizes"]) < len(alone["sizes"])
    # It paused while they came (a few times, not for the most), and a
    # statement alone in the queue is sent at once.
    assert 2 <= lingered["paused"] < 100 and lingered["alone"] == 0


def test_a_leader_lingers_no_longer_than_the_most_however_much_arrives():
    # One every 2 ms for 0.6 s, pauses of 5 ms, 30 ms at most: many batches.
    seen = _trickle([0.005, 0.03], 0.002, 300)
    assert sum(seen["sizes"]) == 301
    assert len(seen["sizes"]) >= 6 and max(seen["sizes"]) < 150
