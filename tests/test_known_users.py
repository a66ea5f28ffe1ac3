"""Users rows a process keeps across requests: they save reads, and being
out of date never makes a transfer wrong."""
from decimal import Decimal

import pytest

from tests.conftest import assert_sound, snapshot
from tests.spec import SpecTestApp, app_settings
from timpe import main
from timpe.errors import InsufficientFunds, NotFound, StoreReplaced
from timpe.ledger import HINT_STRIDE
from timpe.store.sqlite import SQLiteStore
from timpe.transactions.appender import Appender
from timpe.transactions.services import TransactionService
from timpe.users.known import KnownUsers
from timpe.users.services import UserService, user_id


class Node:
    """What one app node has: the shared store and its own kept rows."""

    def __init__(self, store):
        self.store, self.known = store, KnownUsers()
        self.appender = Appender(store, self.known)

    def users(self):
        return UserService(self.store, self.known)

    def pay(self, sender, recipient, amount, immediately=True):
        service = TransactionService(self.store, self.users(), self.appender)
        txn = service.create(sender, recipient, amount, claimed=immediately)[0]
        return service.complete(txn)


def paid_once(store):
    """A node on ``store``, and alice and bob, who made one transfer through it."""
    node = Node(store)
    alice = node.users().register("alice", 1000)["id"]
    bob = node.users().register("bob", 0)["id"]
    node.pay(alice, bob, 1)
    return node, alice, bob


def balances(store, *ids):
    return [UserService(store).find(i)["balance"] for i in ids]


def test_a_hint_kept_while_the_other_node_moved_it_on(store):
    a, b = Node(store), Node(store)
    alice = a.users().register("alice", 1000)["id"]
    bob = a.users().register("bob", 0)["id"]
    assert a.pay(alice, bob, 100)["state"] == "finished"
    kept = a.known.rows([alice])[alice]
    for _ in range(HINT_STRIDE):  # node b pushes both hints on, past a's kept rows
        assert b.pay(bob, alice, 50)["state"] == "finished"
        assert b.pay(alice, bob, 50)["state"] == "finished"
    assert store.get("users", (alice,))["head_seq"] == 2 * HINT_STRIDE > kept["head_seq"]
    for _ in range(HINT_STRIDE):  # node a goes on from its old rows
        assert a.pay(alice, bob, 1, immediately=False)["state"] == "finished"
    left = 900 - HINT_STRIDE
    with pytest.raises(InsufficientFunds):  # refused on a proven head
        a.pay(alice, bob, left + 1)
    assert balances(store, alice, bob) == [Decimal(left) / 100, Decimal(1000 - left) / 100]
    # Its stale version failed the hint's compare-and-set once; read again, kept.
    assert (a.known.rows([alice])[alice]["head_seq"] == store.get("users", (alice,))["head_seq"]
            == 3 * HINT_STRIDE)
    assert_sound(store)


def test_unknown_users_are_not_kept(store):
    node = Node(store)
    alice = node.users().register("alice", 100)["id"]
    for _ in range(2):
        with pytest.raises(NotFound):
            node.pay(alice, user_id("carol"), 1)
    assert node.known.rows([user_id("carol")]) is None
    carol = node.users().register("carol", 0)["id"]
    assert node.pay(alice, carol, 1)["state"] == "finished"


def destroyed_under(node, transfers):
    """alice and bob make ``transfers`` through ``node``, which keeps their
    rows; then another process destroys the store and sets it up again."""
    alice = node.users().register("alice", 1000)["id"]
    bob = node.users().register("bob", 0)["id"]
    for _ in range(transfers):
        node.pay(alice, bob, 10)
    assert node.known.rows([alice])[alice]["head_seq"] == transfers // HINT_STRIDE * HINT_STRIDE
    assert node.known.head(alice)["seq"] == transfers
    other = reopened(node.store)
    other.drop()
    other.setup()
    other.close()
    return alice, bob


def reopened(store):
    """The same store as another process opens it (an app node's worker
    started over, bin/crate_cleanup)."""
    return SQLiteStore(store.path)


def refused_then_restarted(node, *pay):
    """``node`` keeps rows of the store it wrote to before: its first
    transfer is refused, and writes nothing; a node started over in its
    place makes it, from the store as it is."""
    before = snapshot(node.store)
    with pytest.raises(StoreReplaced):
        node.pay(*pay)
    assert snapshot(node.store) == before
    return Node(reopened(node.store))


def test_kept_rows_of_a_store_destroyed_and_filled_again(store):
    node = Node(store)
    alice, bob = destroyed_under(node, HINT_STRIDE + 1)
    UserService(reopened(store)).register("alice", 500)
    UserService(reopened(store)).register("bob", 0)
    node = refused_then_restarted(node, alice, bob, 200)
    assert node.pay(alice, bob, 200)["state"] == "finished"
    assert balances(store, alice, bob) == [3, 2]
    assert node.known.rows([alice])[alice]["initial_balance"] == 500
    assert_sound(store)


def test_a_kept_user_whose_store_was_destroyed_is_unknown(store):
    node = Node(store)
    alice, bob = destroyed_under(node, 1)
    node = refused_then_restarted(node, alice, bob, 10)
    with pytest.raises(NotFound):
        node.pay(alice, bob, 10)
    assert snapshot(store) == {"users": [], "transactions": [], "user_transactions": [],
                               "nicknames": []}


def test_at_most_size_rows_are_kept_the_one_kept_least_lately_goes_first():
    known = KnownUsers(size=3)
    for i in range(4):
        known.keep({"id": f"u{i}"})
    assert len(known) == 3
    assert known.rows(["u0"]) is None and known.get("u0") is None
    assert known.get("u1") == {"id": "u1"} and known.get(["u1"]) is None
    assert known.rows(["u1", "u3"]) == {"u1": {"id": "u1"}, "u3": {"id": "u3"}}
    known.keep({"id": "u3", "v": 2})  # kept again: replaced, nothing else goes
    assert len(known) == 3 and known.rows(["u3"])["u3"] == {"id": "u3", "v": 2}
    known.keep({"id": "u1", "v": 2})  # kept again: now the newest kept
    known.keep({"id": "u4"})
    assert known.get("u2") is None and known.get("u1") == {"id": "u1", "v": 2}


def test_at_most_size_heads_are_kept_the_one_seen_least_lately_goes_first():
    known = KnownUsers(size=2)
    for uid in ("a", "b"):
        known.keep_head({"user_id": uid, "seq": 1})
    known.keep_head({"user_id": "a", "seq": 2})  # a newer head of a: the newest kept
    known.keep_head({"user_id": "c", "seq": 1})
    assert known.head("b") is None
    assert known.head("a")["seq"] == 2 and known.head("c")["seq"] == 1


def test_two_app_nodes_keep_their_own_rows(store, db_path):
    nodes = [SpecTestApp(main({}, **app_settings(db_path))) for _ in range(2)]
    ids = [nodes[0].post_json("/users", {"nickname": n, "balance": 10}).json["data"]["id"]
           for n in ("alice", "bob")]
    for i in range(24):
        sender, recipient = ids if i % 3 else ids[::-1]
        nodes[i % 2].post_json("/transactions/immediately",
                               {"sender": sender, "recipient": recipient, "amount": 0.5}, status=201)
    for node in nodes:
        assert [node.get(f"/users/{i}").json["data"]["balance"] for i in ids] == [6, 14]
    assert_sound(store)


def test_a_queued_transfer_of_a_store_destroyed_is_refused(store):
    # Queued, phase 1 reads no ledger: the kept users rows alone must not
    # let it record a transfer to a user the store no longer has.
    node = Node(store)
    alice, bob = destroyed_under(node, 1)
    UserService(reopened(store)).register("alice", 1000)
    node = refused_then_restarted(node, alice, bob, 10, False)
    with pytest.raises(NotFound):
        node.pay(alice, bob, 10, immediately=False)
    assert snapshot(store)["transactions"] == []


def test_a_kept_row_far_behind_is_caught_up_with_windows_that_grow(store):
    from timpe.bench.roundtrips import CountingStore
    from timpe.ledger import KEPT_WINDOW, WINDOW

    a, b = Node(store), Node(store)
    alice = a.users().register("alice", 1000)["id"]
    bob = a.users().register("bob", 0)["id"]
    a.pay(alice, bob, 1)                       # a keeps alice's row 1
    for _ in range(40):                        # b appends 40 more
        b.pay(alice, bob, 1)
    counting = CountingStore(store)
    head = UserService(counting, a.known).ledger.head(alice)
    assert head["seq"] == 41 and head["balance"] == 1000 - 41
    # 1 seq after the kept row, then 4, 8, 16 and 32: five look-ups where
    # fixed windows of 4 took ten.
    assert (KEPT_WINDOW, WINDOW) == (1, 4)
    assert counting.take()[("get_many", "user_transactions")] == 5


def test_kept_rows_however_old_need_no_read(store):
    # Users this node last wrote to long ago (the tail of a zipf load):
    # their users rows and heads as kept will do; both legs go after the
    # kept heads with no read of any row, and no confirmation of rows the
    # node wrote itself: three inserts and the end.
    from timpe.bench.roundtrips import CountingStore

    counting = CountingStore(store)
    node, alice, bob = paid_once(counting)
    for _ in range(3):
        counting.take()
        assert node.pay(alice, bob, 1)["state"] == "finished"
        assert counting.take() == {("insert", "transactions"): 1,
                                   ("insert", "user_transactions"): 2,
                                   ("update", "transactions"): 1}
    assert balances(store, alice, bob) == [Decimal("9.96"), Decimal("0.04")]
    assert_sound(store)


def test_a_kept_head_far_behind_costs_a_lost_race_and_widening_looks(store):
    # Another node moved alice and bob 100 rows on since this one kept their
    # heads (it took over from a node that died, say): each insert after a
    # kept head loses, and the rows after it are read in look-ups that
    # double (2, 4, ... 64 seqs), not two seqs at a time.
    from timpe.bench.roundtrips import CountingStore

    counting = CountingStore(store)
    node, alice, bob = paid_once(counting)
    other = Node(store)
    for _ in range(100):
        other.pay(alice, bob, 1)
    counting.take()
    assert node.pay(alice, bob, 1)["state"] == "finished"
    calls = counting.take()
    assert calls[("insert", "user_transactions")] == 4  # each leg lost once
    # 2 + 4 + 8 + 16 + 32 + 64 seqs: 6 look-ups a user cover 100 rows.
    assert calls[("get_many", "user_transactions")] <= 2 * 6
    assert balances(store, alice, bob) == [Decimal("8.98"), Decimal("1.02")]
    assert_sound(store)


def test_a_kept_head_that_does_not_cover_the_amount_is_proven(store):
    # Refusing for want of funds is decided on a proven head: the kept one
    # predates a credit another node carried.
    node, alice, bob = paid_once(store)
    Node(store).pay(alice, bob, 500)
    assert node.pay(bob, alice, 400)["state"] == "finished"
    with pytest.raises(InsufficientFunds):
        node.pay(bob, alice, 102)
    assert balances(store, alice, bob) == [Decimal("8.99"), Decimal("1.01")]
    assert_sound(store)


@pytest.mark.parametrize("refilled", [0, 2 * HINT_STRIDE])
def test_heads_kept_of_a_store_destroyed_and_filled_again(store, refilled):
    # ``refilled``: the new ledgers have grown past the rows the node kept,
    # so a row after a kept head would find its seq free.
    node = Node(store)
    alice, bob = destroyed_under(node, HINT_STRIDE + 1)
    other = Node(reopened(store))
    other.users().register("alice", 5000)
    other.users().register("bob", 0)
    for _ in range(refilled):
        other.pay(alice, bob, 1)
    node = refused_then_restarted(node, alice, bob, 200)
    assert node.pay(alice, bob, 200)["state"] == "finished"
    assert balances(store, alice, bob) == [Decimal(4800 - refilled) / 100,
                                           Decimal(200 + refilled) / 100]
    assert_sound(store)
