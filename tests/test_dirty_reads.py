"""Reads that later vanish: a get served by a primary that shows another
process's write before any replica has it, and that primary dies. The
protocol acts on no such row until it has confirmed it (a write of its own
on that row, acknowledged: timpe.store.races.confirmed); one that is gone
by then stops the request (503), and the transfer ends later, once."""
import pytest

from tests.conftest import assert_sound
from timpe.errors import RowsLost
from timpe.ledger import next_row
from timpe.store.schema import TRANSACTIONS, USER_TRANSACTIONS, table
from timpe.transactions.protocol import Processor
from timpe.transactions.services import TransactionService
from timpe.users.services import UserService


class DyingPrimary:
    """The real store, with writes of another process that only a primary
    holds (``unreplicated``): every get shows them, and they vanish when
    the primary dies, which it does as a compare-and-set reaches one of
    them, before that write could be replicated; or when ``die`` is
    called."""

    def __init__(self, store):
        self.store, self.unreplicated, self.died = store, [], False

    def __getattr__(self, name):
        return getattr(self.store, name)

    def insert_unreplicated(self, table_name, row):
        assert self.store.insert(table_name, row)
        self.unreplicated.append((table_name, _key(table_name, row), None))

    def update_unreplicated(self, table_name, key, changes):
        before = self.store.get(table_name, key)
        assert self.store.update(table_name, key, changes)
        self.unreplicated.append((table_name, key, {c: before[c] for c in changes}))

    def cas(self, table_name, key, version, changes):
        if any(t == table_name and k == key for t, k, _ in self.unreplicated):
            self.die()
        return self.store.cas(table_name, key, version, changes)

    def die(self):
        """The replica that takes over never had those writes."""
        for table_name, key, before in reversed(self.unreplicated):
            if before is None:
                pk = table(table_name).pk
                self.store.sql(f"DELETE FROM {table_name} WHERE "
                               + " AND ".join(f"{c} = ?" for c in pk), key)
            else:
                self.store.update(table_name, key, before)
        self.unreplicated.clear()
        self.died = True


def _key(table_name, row):
    return tuple(row[c] for c in table(table_name).pk)


@pytest.fixture
def ids(store):
    users = UserService(store)
    return {name: users.register(name, cents)["id"] for name, cents in (("a", 1000), ("b", 0))}


def claimed(store, ids, amount):
    return TransactionService(store).create(ids["a"], ids["b"], amount, claimed=True)[0]


def balances(store, ids):
    users = UserService(store)
    return [users.find(ids[name])["balance"] for name in ("a", "b")]


def another_node_debits(primary, ids, *txns):
    """Another node's row 1 of a's ledger, carrying the debits of ``txns``,
    that only the primary holds."""
    row0 = primary.store.get(USER_TRANSACTIONS.name, (ids["a"], 0))
    row, _ = next_row(row0, [(t["id"], -t["amount"]) for t in txns])
    primary.insert_unreplicated(USER_TRANSACTIONS.name, row)


def test_a_leg_found_in_a_row_that_vanishes_is_not_taken_as_carried(store, ids):
    txn = claimed(store, ids, 300)
    primary = DyingPrimary(store)
    another_node_debits(primary, ids, txn)  # it was carrying the same transfer
    with pytest.raises(RowsLost):
        TransactionService(primary).complete(txn)
    assert primary.died
    TransactionService(store).process()
    assert store.get(TRANSACTIONS.name, (txn["id"],))["state"] == "finished"
    assert balances(store, ids) == [7, 3]
    assert_sound(store)


def test_no_row_goes_after_a_row_that_vanishes(store, ids):
    ours, theirs = claimed(store, ids, 300), claimed(store, ids, 200)
    primary = DyingPrimary(store)
    another_node_debits(primary, ids, theirs)
    with pytest.raises(RowsLost):
        TransactionService(primary).complete(ours)
    assert primary.died
    assert store.get(USER_TRANSACTIONS.name, (ids["a"], 2)) is None
    TransactionService(store).process()
    assert balances(store, ids) == [5, 5]
    assert_sound(store)


def test_no_leg_is_carried_from_a_claim_that_vanishes(store, ids):
    txn = TransactionService(store).create(ids["a"], ids["b"], 300)[0]
    primary = DyingPrimary(store)
    # Another node claimed it; only the primary has the claim.
    primary.update_unreplicated(TRANSACTIONS.name, (txn["id"],),
                                {"state": "in progress", "debit_seq": 1, "credit_seq": 1})
    ours = Processor(primary)
    read = primary.get(TRANSACTIONS.name, (txn["id"],))
    stepped = ours.step(read)  # the claim as read, or what is left of it
    primary.die()
    TransactionService(store).process()  # a third node resumes it, as stored now
    ours.run(stepped)
    assert store.get(TRANSACTIONS.name, (txn["id"],))["state"] == "finished"
    assert balances(store, ids) == [7, 3]
    assert_sound(store)


def test_a_confirmed_row_is_kept_and_a_vanished_one_is_none(store, ids):
    from timpe.store.races import confirmed

    row0 = store.get(USER_TRANSACTIONS.name, (ids["a"], 0))
    kept = confirmed(store, USER_TRANSACTIONS.name, row0)
    assert kept["_version"] is None and kept["balance"] == row0["balance"]
    # Confirming changed no column of the row: only its version.
    again = store.get(USER_TRANSACTIONS.name, (ids["a"], 0))
    assert {k: v for k, v in again.items() if k != "_version"} == \
           {k: v for k, v in row0.items() if k != "_version"}
    primary = DyingPrimary(store)
    txn = claimed(store, ids, 100)
    another_node_debits(primary, ids, txn)
    vanishing = primary.get(USER_TRANSACTIONS.name, (ids["a"], 1))
    assert confirmed(primary, USER_TRANSACTIONS.name, vanishing) is None
