"""Holds under faults and races, in-process on the real SQLite store: a
process killed at every primitive call of a hold, a post or a void; a post
and a void deciding the same hold from stale copies in random orders.
Whatever the cut, recovery settles each hold to exactly one outcome."""
import random

import pytest

from tests.conftest import assert_sound
from tests.faults import Crash, FaultyStore
from tests.test_protocol_faults import calls_of, setup_users
from timpe.errors import Conflict
from timpe.money import to_api
from timpe.store.schema import TRANSACTIONS
from timpe.store.sqlite import SQLiteStore
from timpe.transactions.holds import Decision
from timpe.transactions.protocol import RESTING, Processor
from timpe.transactions.recovery import Recovery
from timpe.transactions.services import TransactionService
from timpe.users.services import UserService


def recover(store):
    """A recovery pass of another node, the grace period long over."""
    return Recovery(store, TransactionService, grace=0).run_pass()


def balances(store, ids):
    users = UserService(store)
    return {name: (users.find(uid)["balance"], users.find(uid)["held"])
            for name, uid in ids.items()}


@pytest.mark.parametrize("mode", ["before", "after"])
def test_a_crash_at_every_call_of_a_hold(store, tmp_path, mode):
    count = SQLiteStore(tmp_path / "count.sqlite")
    count.setup()
    counted = setup_users(count, a=10000, b=0)
    total = calls_of(count, lambda s: TransactionService(s).hold(counted["a"], counted["b"], 3000))
    assert total >= 5
    ids = setup_users(store, a=1_000_000, b=0)
    for k in range(1, total + 1):
        with pytest.raises(Crash):
            TransactionService(FaultyStore(store, crash_at=k, mode=mode)).hold(
                ids["a"], ids["b"], 3000)
        recover(store)
        assert_sound(store)
        states = [t["state"] for t in store.scan(TRANSACTIONS.name)]
        assert set(states) <= {"held"}  # recorded ones are reserved, once each
        assert balances(store, ids)["a"] == (to_api(1_000_000 - 3000 * len(states)),
                                             to_api(3000 * len(states)))
    assert len(states) >= total - 4  # only a cut before the insert loses it


@pytest.mark.parametrize("action", ["post", "part", "void"])
@pytest.mark.parametrize("mode", ["before", "after"])
def test_a_crash_at_every_call_of_a_decision_then_a_rival_decides(store, tmp_path, mode, action):
    """A post (or void) cut at its k-th call; then recovery, and the other
    decision from another node: exactly one outcome, and the balances it
    makes."""
    def decide(service, txn_id, what):
        if what == "void":
            return service.void(txn_id)
        return service.post(txn_id, 1000 if what == "part" else None)

    count = SQLiteStore(tmp_path / "count.sqlite")
    count.setup()
    cids = setup_users(count, a=10000, b=0)
    txn = TransactionService(count).hold(cids["a"], cids["b"], 3000)[0]
    total = calls_of(count, lambda s: decide(TransactionService(s), txn["id"], action))
    assert total >= 4
    rival = "post" if action == "void" else "void"
    for k in range(1, total + 1):
        ids = setup_users(store, **{f"a{k}": 10000, f"b{k}": 0})
        ids = {"a": ids[f"a{k}"], "b": ids[f"b{k}"]}
        healthy = TransactionService(store)
        txn = healthy.hold(ids["a"], ids["b"], 3000)[0]
        with pytest.raises(Crash):
            decide(TransactionService(FaultyStore(store, crash_at=k, mode=mode)), txn["id"],
                   action)
        recover(store)
        try:
            decide(TransactionService(store), txn["id"], rival)
            winner = rival
        except Conflict:
            winner = action
        if winner == action:  # the cut decision had won: its retry finishes it
            decide(TransactionService(store), txn["id"], action)
        state = healthy.find(txn["id"])["state"]
        expected = {"post": ("finished", (7000, 0), (3000, 0)),
                    "part": ("finished", (9000, 0), (1000, 0)),
                    "void": ("voided", (10000, 0), (0, 0))}[winner]
        got = balances(store, ids)
        assert (state, got["a"], got["b"]) == (expected[0], *(
            tuple(to_api(x) for x in pair) for pair in expected[1:]))
    assert_sound(store)


@pytest.mark.parametrize("seed", range(30))
def test_decisions_from_stale_copies_converge(store, seed):
    """Three processors step holds and decide them (post, part of a post,
    void) in random orders, each from its own often stale copy: each hold
    has one outcome, every decision that lost says so, the legs are
    carried once."""
    rnd = random.Random(seed)
    users = UserService(store)
    ids = [users.register(f"u{i}", 5000)["id"] for i in range(3)]
    service = TransactionService(store)
    holds = []
    for _ in range(6):
        sender, recipient = rnd.sample(ids, 2)
        # Recorded, its leg not carried yet: the processors race for that too.
        holds.append(service._create(sender, recipient, rnd.randint(1, 15) * 100, None, True,
                                     None, hold=(None,))[0])
    processors = [Processor(store) for _ in range(3)]
    copies = {(p, t["id"]): t for p in range(3) for t in holds}
    answers = {t["id"]: set() for t in holds}
    for _ in range(300):
        p, txn = rnd.randrange(3), rnd.choice(holds)
        copy = copies[(p, txn["id"])]
        roll = rnd.random()
        try:
            if roll < 0.1:
                copies[(p, txn["id"])] = Decision(processors[p], users.ledger).void(copy)
                answers[txn["id"]].add("void")
            elif roll < 0.2:
                amount = rnd.choice([None, copy["amount"] // 2 or None])
                copies[(p, txn["id"])] = Decision(processors[p], users.ledger).post(copy, amount)
                answers[txn["id"]].add(("post", amount or copy["amount"]))
            elif copy["state"] not in RESTING:
                copies[(p, txn["id"])] = processors[p].step(copy)
        except Conflict:
            copies[(p, txn["id"])] = service.find(txn["id"])
    for txn in holds:  # what is left decided, then settled
        try:
            service.void(txn["id"])
        except Conflict:
            pass
    service.process()
    for txn in holds:
        final = service.find(txn["id"])
        assert final["state"] in ("finished", "voided", "failed")
        won = answers[txn["id"]]
        # Every decision answered with success agrees with the outcome.
        if final["state"] == "finished":
            assert won <= {("post", final["posted"])}
        elif final["state"] == "voided":
            assert not any(isinstance(w, tuple) for w in won)
    assert_sound(store)
