"""Rows that carry many legs: a batch of one user's legs goes in one row,
once, whatever crashes, races or lost seqs meet it."""
import json
import subprocess
import sys
import threading
import time

import pytest

from tests.conftest import assert_sound
from tests.faults import Crash, FaultyStore
from timpe.errors import StoreUnavailable
from timpe.ledger import legs
from timpe.store.schema import TRANSACTIONS
from timpe.store.sqlite import SQLiteStore
from timpe.transactions.appender import Appender
from timpe.transactions.services import TransactionService
from timpe.users.services import UserService
from timpe.users.statements import Statements


def register(store, **balances):
    users = UserService(store)
    return {name: users.register(name, cents)["id"] for name, cents in balances.items()}


def claimed(store, sender, recipient, amounts):
    service = TransactionService(store)
    return [service.create(sender, recipient, amount, claimed=True)[0] for amount in amounts]


def debits(txns):
    return [(t["id"], -t["amount"], t["debit_seq"]) for t in txns]


def states(store, txns):
    return [store.get(TRANSACTIONS.name, (t["id"],))["state"] for t in txns]


def test_a_batch_is_one_row_and_the_debits_that_do_not_fit_are_declined(store):
    ids = register(store, a=1000, b=0)
    txns = claimed(store, ids["a"], ids["b"], [400, 500, 300, 100])
    outcomes = Appender(store).append_many(ids["a"], debits(txns))
    assert {row["seq"] for row, _ in outcomes} == {1}  # one row carries all four
    assert [leg.kind for _, leg in outcomes] == ["debit", "debit", "declined", "debit"]
    assert [leg.balance for _, leg in outcomes] == [600, 100, 100, 0]
    row = store.get("user_transactions", (ids["a"], 1))
    assert (row["kind"], row["amount"], row["balance"]) == ("legs", -1000, 0)
    TransactionService(store).process()
    assert states(store, txns) == ["finished", "finished", "failed", "finished"]
    assert UserService(store).find(ids["b"])["balance"] == 10
    # The statement shows one line per transfer that moved, each with its balance.
    entries, _ = Statements(UserService(store)).page(ids["a"])
    assert [(e["kind"], e["amount"], e["balance"]) for e in entries] == [
        ("debit", -1, 0), ("debit", -5, 1), ("debit", -4, 6), ("deposit", 10, 10)]
    assert_sound(store)


def test_credits_of_a_batch_go_first_so_its_debits_meet_them(store):
    ids = register(store, a=100, b=5000, c=0)
    paid = claimed(store, ids["b"], ids["a"], [300])[0]
    spend = claimed(store, ids["a"], ids["c"], [100, 100])  # each fits alone
    appender = Appender(store)
    appender.append(ids["b"], paid["id"], -300, paid["debit_seq"])
    out = appender.append_many(ids["a"], [*debits(spend), (paid["id"], 300, paid["credit_seq"])])
    assert [leg.kind for _, leg in out] == ["debit", "debit", "credit"]
    assert [leg.balance for leg in legs(out[0][0])] == [400, 300, 200]
    TransactionService(store).process()
    assert states(store, [paid, *spend]) == ["finished"] * 3
    assert_sound(store)


def test_a_batch_that_lost_its_seq_goes_to_the_next_as_a_whole(store):
    ids = register(store, a=1000, b=0)
    node_a, node_b = Appender(store), Appender(store)
    first = claimed(store, ids["a"], ids["b"], [100])
    node_a.append_many(ids["a"], debits(first))  # a keeps the head at seq 1
    rival = claimed(store, ids["a"], ids["b"], [200])
    node_b.append_many(ids["a"], debits(rival))   # b takes seq 2
    batch = claimed(store, ids["a"], ids["b"], [300, 400, 50])
    outcomes = node_a.append_many(ids["a"], debits(batch))  # tries 2, loses, goes to 3
    assert {row["seq"] for row, _ in outcomes} == {3}
    assert [leg.kind for _, leg in outcomes] == ["debit", "debit", "declined"]
    TransactionService(store).process()
    assert_sound(store)


def test_both_nodes_batching_the_same_legs_carry_each_once(store):
    ids = register(store, a=1000, b=0)
    txns = claimed(store, ids["a"], ids["b"], [100, 200, 300])
    node_a, node_b = Appender(store), Appender(store)
    node_a.append_many(ids["a"], debits(txns[:1]))  # a keeps seq 1
    node_b.append_many(ids["a"], debits(txns[1:]))  # b carries two at seq 2
    # a, with its head one row behind, carries all three: it loses seq 2,
    # finds two of them there and the first below: nothing is written twice.
    outcomes = node_a.append_many(ids["a"], debits(txns))
    assert [row["seq"] for row, _ in outcomes] == [1, 2, 2]
    assert store.get("user_transactions", (ids["a"], 3)) is None
    TransactionService(store).process()
    assert UserService(store).find(ids["a"])["balance"] == 4
    assert_sound(store)


def test_a_transfer_two_requests_carry_at_once_goes_in_once(store):
    """Two /process calls of one node (or one and a recovery pass) carry the
    same transfer: the leader takes both legs, and writes one."""
    ids = register(store, a=1000, b=0)
    txn, other = claimed(store, ids["a"], ids["b"], [300, 200])
    outcomes = Appender(store).append_many(ids["a"], debits([txn, other, txn]))
    assert outcomes[0] == outcomes[2] and outcomes[0][1].balance == 700
    assert [leg.transaction_id for leg in legs(outcomes[0][0])] == [txn["id"], other["id"]]
    TransactionService(store).process()
    assert UserService(store).find(ids["a"])["balance"] == 5
    assert_sound(store)


def _calls_of_a_batch(tmp_path):
    path = tmp_path / "count.sqlite"
    store = SQLiteStore(path)
    store.setup()
    ids = register(store, a=1000, b=0)
    txns = claimed(store, ids["a"], ids["b"], [300, 300, 300, 300])
    counted = FaultyStore(store)
    appender = Appender(counted)
    appender.append_many(ids["a"], debits(txns))
    service = TransactionService(counted, appender=appender)
    for txn in txns:
        service.complete(store.get(TRANSACTIONS.name, (txn["id"],)))
    store.close()
    return counted.calls


@pytest.mark.parametrize("mode", ["before", "after"])
def test_a_crash_between_any_two_steps_of_a_batch(store, tmp_path, mode):
    """Four transfers of one sender, three fit: their debits as one batch,
    then their credits and ends; the node dies at every call in turn."""
    total = _calls_of_a_batch(tmp_path)
    assert total >= 8
    for k in range(1, total + 1):
        ids = register(store, **{f"a{k}": 1000, f"b{k}": 0})
        txns = claimed(store, ids[f"a{k}"], ids[f"b{k}"], [300, 300, 300, 300])
        dying = FaultyStore(store, crash_at=k, mode=mode)
        appender = Appender(dying)
        try:
            appender.append_many(ids[f"a{k}"], debits(txns))
            service = TransactionService(dying, appender=appender)
            for txn in txns:
                service.complete(store.get(TRANSACTIONS.name, (txn["id"],)))
        except Crash:
            pass
        else:
            pytest.fail(f"the batch made fewer than {k} calls")
        TransactionService(store).process()
        assert sorted(states(store, txns)) == ["failed", "finished", "finished", "finished"]
        users = UserService(store)
        assert users.find(ids[f"a{k}"])["balance"] == 1
        assert users.find(ids[f"b{k}"])["balance"] == 9
    assert_sound(store)


def _hot_worker(path, ids, count):
    """One node: many greenlets sending between the same two users at once
    (run as ``python -m tests.test_appender``, a process patched by gevent
    from its start, as a gunicorn worker is); prints its outcome as JSON."""
    import gevent

    from timpe.errors import InsufficientFunds
    from timpe.users.known import KnownUsers
    store = SQLiteStore(path)
    known = KnownUsers()
    appender = Appender(store, known)  # one per process, as in a node
    outcome = {"finished": 0, "failed": 0, "refused": 0}

    def transfer(i):
        sender, recipient = (ids[0], ids[1]) if i % 3 else (ids[1], ids[0])
        service = TransactionService(store, UserService(store, known), appender)
        try:
            outcome[service.immediately(sender, recipient, 100 + i % 7)[0]["state"]] += 1
        except InsufficientFunds:
            outcome["refused"] += 1

    gevent.joinall([gevent.spawn(transfer, i) for i in range(count)], raise_error=True)
    store.close()
    print(json.dumps(outcome))


@pytest.mark.timeout(180)
def test_two_processes_batching_the_hot_pair_keep_every_invariant(store, db_path):
    """Two nodes, each with many greenlets sending between the same two
    users at once: their legs share rows, and their rows race."""
    ids = list(register(store, hot=20000, cold=1000).values())
    nodes = [subprocess.Popen([sys.executable, "-m", "tests.test_appender", db_path, *ids, "300"],
                              stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outcomes = [json.loads(node.communicate(timeout=150)[0]) for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0]
    assert sum(sum(o.values()) for o in outcomes) == 600
    assert sum(o["finished"] for o in outcomes) > 0
    assert_sound(store)
    rows = store.scan("user_transactions")
    carried = sum(len(legs(r)) for r in rows)
    assert len(rows) < carried / 2, "the legs did not share rows"
    finished = len(store.scan(TRANSACTIONS.name, where={"state": "finished"}))
    assert carried == 2 + 2 * finished + sum(
        1 for r in rows for leg in legs(r) if leg.kind == "declined")


if __name__ == "__main__":
    from gevent import monkey
    monkey.patch_all()
    _hot_worker(sys.argv[1], sys.argv[2:4], int(sys.argv[4]))


class Held:
    """A store whose ledger inserts wait until released: a leader stuck on a
    store that cannot serve."""

    def __init__(self, store):
        self.store, self.release = store, threading.Event()

    def __getattr__(self, name):
        return getattr(self.store, name)

    def insert(self, table_name, row):
        if table_name == "user_transactions":
            self.release.wait(10)
        return self.store.insert(table_name, row)


def test_a_leg_waiting_behind_a_stuck_leader_gives_up_only_when_asked(store):
    ids = register(store, a=1000, b=0)
    first, second = claimed(store, ids["a"], ids["b"], [100, 200])
    held = Held(store)
    appender = Appender(held)
    leader = threading.Thread(target=appender.append, args=(ids["a"], first["id"], -100,
                                                            first["debit_seq"]))
    leader.start()
    time.sleep(0.2)  # the leader waits in its insert
    asked = []
    with pytest.raises(StoreUnavailable, match="not written within 0.05 s"):
        appender.append(ids["a"], second["id"], -200, second["debit_seq"], patience=0.05,
                        give_up=lambda: asked.append(1) or len(asked) >= 3)
    assert len(asked) == 3  # it asked at each patience, and gave up when told
    held.release.set()
    leader.join(10)
    row = store.get("user_transactions", (ids["a"], 1))
    assert [leg.transaction_id for leg in legs(row)] == [first["id"]]  # not the one given up
    TransactionService(store).process()
    assert states(store, [first, second]) == ["finished", "finished"]
    assert_sound(store)


def test_a_batch_of_a_hold_s_void_and_holds_that_do_not_all_fit(store):
    """The legs of holds batch like any: the void (a credit) goes first,
    then each hold while it fits; the one that does not is declined, and
    each row keeps the running held total beside the balance."""
    from timpe.transactions.holds import void_changes
    from timpe.transactions.protocol import Processor
    ids = register(store, a=500, b=0)
    service = TransactionService(store)
    # Recorded while the balance covered them, their legs not yet carried.
    later = [service._create(ids["a"], ids["b"], amount, None, True, None, hold=(None,))[0]
             for amount in (400, 200)]
    first = service.hold(ids["a"], ids["b"], 300)[0]  # balance 200, held 300
    first = Processor(store).decide(service.find(first["id"]),
                                    **void_changes(service.users.ledger, first))
    assert first["state"] == "voiding"
    out = Appender(store).append_many(ids["a"], [
        *((t["id"], -t["amount"], t["debit_seq"], "hold", t["amount"]) for t in later),
        (first["id"], 300, first["release_seq"], "void", -300)])
    assert len({row["seq"] for row, _ in out}) == 1
    assert [(leg.kind, leg.balance, leg.held) for leg in legs(out[0][0])] == [
        ("void", 500, 0), ("hold", 100, 400), ("declined", 100, 400)]
    ended = [service.complete(service.find(t["id"]))["state"] for t in (first, *later)]
    assert ended == ["voided", "held", "failed"]
    assert UserService(store).find(ids["a"])["held"] == 4
    assert_sound(store)
