"""Real OS processes on one SQLite file, as app nodes share one store."""
import os
import random

import pytest

from tests.conftest import assert_sound
from tests.processes import race
from timpe.errors import Conflict, InsufficientFunds
from timpe.store.sqlite import SQLiteStore
from timpe.transactions.services import TransactionService
from timpe.users.services import UserService

def _process_worker(barrier, results, path):
    store = SQLiteStore(path)
    barrier.wait()
    done, failed, more = TransactionService(store).process()
    results.put((len(done), len(failed)))


def _spend_worker(barrier, results, path, sender, recipients, amount, count):
    store = SQLiteStore(path)
    service = TransactionService(store)
    barrier.wait()
    outcome = {"finished": 0, "failed": 0, "refused": 0}
    for i in range(count):
        try:
            txn = service.complete(service.create(sender, recipients[i % len(recipients)], amount)[0])
            outcome[txn["state"]] += 1
        except InsufficientFunds:
            outcome["refused"] += 1
    results.put(outcome)


@pytest.mark.timeout(180)
def test_four_processes_run_phase_two_on_the_same_queue(store, db_path):
    users = UserService(store)
    ids = [users.register(f"user{i}", 100000)["id"] for i in range(5)]
    service, rnd = TransactionService(store), random.Random(7)
    queued = []
    for _ in range(300):
        sender, recipient = rnd.sample(ids, 2)
        queued.append(service.create(sender, recipient, rnd.randint(1, 300) * 100)[0]["id"])
    outcomes = race(_process_worker, [(db_path,)] * 4)
    states = [service.find(t)["state"] for t in queued]
    assert set(states) <= {"finished", "failed"}
    assert states.count("failed") > 0  # the queue overdraws: some must fail
    # They really overlapped: several found work pending at once.
    assert sum(done > 0 for done, _ in outcomes) >= 2, outcomes
    assert sum(done for done, _ in outcomes) >= 300
    assert_sound(store)


@pytest.mark.timeout(180)
def test_concurrent_debits_race_for_one_balance(store, db_path):
    users = UserService(store)
    sender = users.register("hot", 10000)["id"]  # 100.00
    recipients = [users.register(f"r{i}", 0)["id"] for i in range(3)]
    outcomes = race(_spend_worker, [(db_path, sender, recipients, 700, 25)] * 6)
    finished = sum(o["finished"] for o in outcomes)
    assert finished == 14  # 14 * 7.00 fits in 100.00, a 15th never does
    assert sum(sum(o.values()) for o in outcomes) == 150
    assert users.find(sender)["balance"] == 2
    assert sum(users.find(r)["balance"] for r in recipients) == 98
    assert_sound(store)


def _append_worker(barrier, results, path, user_id, count, checkpoint_every):
    store = SQLiteStore(path, checkpoint_every=checkpoint_every)
    barrier.wait()
    largest = 0
    for seq in range(count):
        store.insert("user_transactions", {
            "user_id": user_id, "seq": seq, "transaction_id": None, "kind": "deposit",
            "amount": 1, "balance": seq + 1, "timestamp": seq})
        store.get("user_transactions", (user_id, seq))  # a reader, too
        if seq % 100 == 0:
            largest = max(largest, os.path.getsize(path + "-wal"))
    results.put(largest)


@pytest.mark.timeout(180)
def test_the_wal_stays_small_while_processes_write_without_pause(tmp_path):
    # With two processes always reading and writing, the WAL only returns to
    # its start after a RESTART checkpoint. The same writes run twice: with
    # the adapter checkpointing every 100 writes of a process, and never.
    count, largest = 5000, {}
    for every in (100, 10 ** 9):
        path = str(tmp_path / f"every-{every}.sqlite")
        store = SQLiteStore(path)
        store.setup()
        largest[every] = max(race(_append_worker, [(path, f"u{i}", count, every)
                                                   for i in range(2)]))
        assert store.sql("SELECT COUNT(*) FROM user_transactions")[1] == [(2 * count,)]
        store.close()
    # Measured: 2-8 MB checkpointing (13 MB with the machine kept busy
    # meanwhile: the checkpoints run on their own thread), 50 MB never.
    assert largest[100] < largest[10 ** 9] / 3


def _decide_worker(barrier, results, path, action, txn_ids):
    store = SQLiteStore(path)
    service = TransactionService(store)
    barrier.wait()
    won = {}
    for txn_id in txn_ids:
        try:
            txn = service.void(txn_id) if action == "void" else service.post(txn_id)
            won[txn_id] = txn["state"]
        except Conflict:
            won[txn_id] = None
    results.put((action, won))


@pytest.mark.timeout(180)
def test_a_post_and_a_void_of_each_hold_from_two_processes_at_once(store, db_path):
    users = UserService(store)
    a, b = users.register("buyer", 100_000)["id"], users.register("shop", 0)["id"]
    service = TransactionService(store)
    holds = [service.hold(a, b, 100)[0]["id"] for _ in range(60)]
    rnd = random.Random(3)
    orders = [rnd.sample(holds, len(holds)) for _ in range(4)]  # each its own order
    outcomes = race(_decide_worker, [(db_path, action, order) for action, order in
                                     zip(("post", "void", "post", "void"), orders)])
    posted = voided = 0
    for txn_id in holds:
        final = service.find(txn_id)["state"]
        said = {action: won[txn_id] for action, won in outcomes}
        # The post and the void that lost heard 409; the winner's, the outcome.
        winners = {action for action, won in outcomes if won[txn_id] is not None}
        assert winners == {"post" if final == "finished" else "void"}, said
        assert all(won[txn_id] in (None, final) for _, won in outcomes)
        posted, voided = posted + (final == "finished"), voided + (final == "voided")
    assert posted and voided  # they really raced
    assert users.find(a)["balance"] == 1000 - posted and users.find(b)["balance"] == posted
    assert users.find(a)["held"] == 0
    assert_sound(store)
