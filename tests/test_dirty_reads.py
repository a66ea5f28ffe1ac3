"""Reads that later vanish: a get served by a primary that shows another
process's write before any replica has it, and that primary dies. The
protocol acts on no such row until it has confirmed it (a write of its own
on that row, acknowledged: timpe.store.races.confirmed); one that is gone
by then, or that the new primary holds another write in place of (a third
node took its seq meanwhile: seen live, under a partition), stops the
request (503), and the transfer ends later, once."""
import functools
from decimal import Decimal

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
        self.replacements = []

    def __getattr__(self, name):
        return getattr(self.store, name)

    def insert_unreplicated(self, table_name, row, then=None):
        """``then``: the row the new primary holds under that key once this
        one vanished, another node's write."""
        assert self.store.insert(table_name, row)
        self.unreplicated.append((table_name, _key(table_name, row), None))
        self.replacements.append((table_name, then))

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
        for table_name, row in self.replacements:
            if row is not None:
                # Written, then confirmed by its writer: a version of its own.
                assert self.store.insert(table_name, row)
                assert self.store.update(table_name, _key(table_name, row),
                                         {"timestamp": row["timestamp"]})
        self.unreplicated.clear()
        self.replacements.clear()
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


def debits(store, ids, *txns):
    """Row 1 of a's ledger, carrying the debits of ``txns``."""
    row0 = store.get(USER_TRANSACTIONS.name, (ids["a"], 0))
    return next_row(row0, [(t["id"], -t["amount"]) for t in txns])[0]


def another_node_debits(primary, ids, *txns, then=()):
    """Another node's row 1 of a's ledger, carrying the debits of ``txns``,
    that only the primary holds; ``then``: the transfers whose debits a
    third node's row 1 carries, which the new primary holds instead."""
    primary.insert_unreplicated(USER_TRANSACTIONS.name, debits(primary.store, ids, *txns),
                                then=debits(primary.store, ids, *then) if then else None)


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


@pytest.mark.parametrize("read, then", [("ours", "theirs"), ("theirs", "ours")],
                         ids=["our leg in the row read", "our leg in the row replacing it"])
def test_a_row_that_another_write_replaced_decides_nothing(store, ids, read, then):
    txns = {"ours": claimed(store, ids, 300), "theirs": claimed(store, ids, 200)}
    primary = DyingPrimary(store)
    # The row we read carries one debit; once its primary died, row 1 the other.
    another_node_debits(primary, ids, txns[read], then=[txns[then]])
    with pytest.raises(RowsLost):
        TransactionService(primary).complete(txns["ours"])
    assert primary.died
    # Not settled on the row read, not carried again after it.
    assert store.get(TRANSACTIONS.name, (txns["ours"]["id"],))["state"] == "in progress"
    assert store.get(USER_TRANSACTIONS.name, (ids["a"], 2)) is None
    TransactionService(store).process()
    assert balances(store, ids) == [5, 5]
    assert_sound(store)


def test_what_was_read_with_a_replaced_row_is_read_again(store, ids):
    """The process kept the rows it read with the one that was replaced:
    it forgets them, so the transfer's next attempt in the same process
    looks for its leg in the rows the store keeps."""
    ours, theirs = claimed(store, ids, 300), claimed(store, ids, 200)
    primary = DyingPrimary(store)
    another_node_debits(primary, ids, theirs, then=[ours])
    service = TransactionService(primary)
    with pytest.raises(RowsLost):
        service.complete(ours)
    assert service.complete(ours)["state"] == "finished"
    assert store.get(USER_TRANSACTIONS.name, (ids["a"], 2)) is None  # not carried twice
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
    kept = confirmed(store, USER_TRANSACTIONS.name, row0, same=lambda row: True)
    assert kept["_version"] is None and kept["balance"] == row0["balance"]
    # Confirming changed no column of the row: only its version.
    again = store.get(USER_TRANSACTIONS.name, (ids["a"], 0))
    assert {k: v for k, v in again.items() if k != "_version"} == \
           {k: v for k, v in row0.items() if k != "_version"}
    primary = DyingPrimary(store)
    txn = claimed(store, ids, 100)
    another_node_debits(primary, ids, txn)
    vanishing = primary.get(USER_TRANSACTIONS.name, (ids["a"], 1))
    assert confirmed(primary, USER_TRANSACTIONS.name, vanishing, lambda row: True) is None


def test_a_row_that_another_write_replaced_is_not_confirmed(store, ids):
    from timpe.ledger import leg_of, same_write
    from timpe.store.races import confirmed

    ours, theirs = claimed(store, ids, 100), claimed(store, ids, 200)
    primary = DyingPrimary(store)
    another_node_debits(primary, ids, ours, then=[theirs])
    read = primary.get(USER_TRANSACTIONS.name, (ids["a"], 1))
    assert confirmed(primary, USER_TRANSACTIONS.name, read,
                     functools.partial(same_write, read)) is None
    # The key holds the other write now, which is confirmed as itself.
    now = store.get(USER_TRANSACTIONS.name, (ids["a"], 1))
    assert leg_of(now, theirs["id"]) and not leg_of(now, ours["id"])
    assert confirmed(store, USER_TRANSACTIONS.name, now,
                     functools.partial(same_write, now))["legs"] == now["legs"]


class StaleCopy:
    """The real store, the new primary's copy, beside a cut-off primary's
    copy that serves look-ups of several keys (get_many) for the keys it
    has rows of its own under (``dirty``): rows the new primary replaced."""

    def __init__(self, store, dirty):
        self.store, self.dirty = store, {(r["user_id"], r["seq"]): r for r in dirty}

    def __getattr__(self, name):
        return getattr(self.store, name)

    def get_many(self, table_name, keys):
        if table_name != USER_TRANSACTIONS.name:
            return self.store.get_many(table_name, keys)
        keys = [tuple(k) for k in keys]
        return (self.store.get_many(table_name, [k for k in keys if k not in self.dirty])
                + [self.dirty[k] for k in keys if k in self.dirty])


def test_no_leg_is_carried_again_after_rows_a_dying_primary_showed_below_the_head(store, ids):
    """The head comes from the new primary, the rows below it from the
    cut-off one: those rows, which showed the leg not carried, are
    confirmed as the writes the store keeps before a row goes after them."""
    ours, *others = [claimed(store, ids, amount) for amount in (300, 100, 50, 20, 10)]
    row = store.get(USER_TRANSACTIONS.name, (ids["a"], 0))
    dirty = row
    stale = []
    for txn, theirs in ((ours, others[0]), (others[1], others[2]), (others[3], None)):
        row = next_row(row, [(txn["id"], -txn["amount"])])[0]
        assert store.insert(USER_TRANSACTIONS.name, row)
        version = store.get(USER_TRANSACTIONS.name, _key(USER_TRANSACTIONS.name, row))["_version"]
        assert store.update(USER_TRANSACTIONS.name, _key(USER_TRANSACTIONS.name, row),
                            {"timestamp": row["timestamp"]})  # its writer confirmed it
        if theirs is not None:  # what the cut-off primary had at that seq instead
            dirty = {**next_row(dirty, [(theirs["id"], -theirs["amount"])])[0],
                     "_version": version}
            stale.append(dirty)
    with pytest.raises(RowsLost):
        TransactionService(StaleCopy(store, stale)).complete(ours)
    assert store.get(USER_TRANSACTIONS.name, (ids["a"], 4)) is None  # not carried twice
    TransactionService(store).process()
    assert balances(store, ids) == [Decimal("5.20"), Decimal("4.80")]
    assert_sound(store)


def test_a_retry_is_not_answered_from_another_transfer_under_its_id(store, ids):
    """A client's retry finds its first attempt's row, shown by a primary
    that then dies; the new primary holds another request's transfer under
    that id (another body): the retry is not answered as that transfer."""
    from timpe.errors import Conflict
    from timpe.transactions.services import transaction_id

    txn_id = transaction_id(idempotency_key="replaced")
    service, attempts = TransactionService(store), []
    for amount in (300, 200):  # rows as each request would write them
        attempts.append(_stored(service.create(ids["a"], ids["b"], amount, txn_id=txn_id)[0]))
        store.sql(f"DELETE FROM {TRANSACTIONS.name} WHERE id = ?", (txn_id,))
    first, then = attempts
    primary = DyingPrimary(store)
    primary.insert_unreplicated(TRANSACTIONS.name, first, then=then)
    with pytest.raises(RowsLost):
        TransactionService(primary).create(ids["a"], ids["b"], 300, txn_id=txn_id)
    assert primary.died
    with pytest.raises(Conflict):
        TransactionService(store).create(ids["a"], ids["b"], 300, txn_id=txn_id)


def _stored(txn):
    return {c: txn[c] for c in TRANSACTIONS.columns}
