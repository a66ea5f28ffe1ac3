"""The audit finds what is wrong in the stored rows, and nothing in a sound
store: on both stores, with the tables read a few rows at a time, so that
users, ledgers and transactions all cross the pages' edges.

Each broken store is a sound one with rows written as no node would write
them, through the store's own primitives.
"""
import time

import pytest

from tests import test_store_contract as contract

from timpe.audit import audit
from timpe.ledger import Ledger, Move, DEBIT, CREDIT, next_row
from timpe.store.schema import TRANSACTIONS, USER_TRANSACTIONS, USERS
from timpe.transactions.services import TransactionService
from timpe.users.services import UserService

#: Rows a scan of the audit reads at once here: every table takes pages.
PAGE = 3

# The contract's stores: SQLite, and the live cluster where there is one.
spec, store = contract.spec, contract.store


@pytest.fixture
def sound(store):
    """A store where every kind of transfer happened: finished, failed for
    want of funds (queued, then processed), a hold posted in part, one
    voided and one still held; and a user who never moved money. Return
    (store, {name: id})."""
    users = UserService(store)
    ids = {name: users.register(name, balance)["id"]
           for name, balance in (("ann", 1_000), ("bob", 500), ("cat", 0), ("dan", 70),
                                 ("eve", 20))}
    service = TransactionService(store)
    for sender, recipient, amount in (("ann", "bob", 100), ("bob", "cat", 250),
                                      ("cat", "ann", 50), ("bob", "ann", 1)):
        service.immediately(ids[sender], ids[recipient], amount)
    for amount in (15, 15):  # each fits when queued; the second fails
        service.create(ids["eve"], ids["ann"], amount)
    ended = [txn["state"] for txn in service.process()[0]]
    assert sorted(ended) == ["failed", "finished"], ended
    posted = service.hold(ids["ann"], ids["bob"], 300)[0]["id"]
    service.post(posted, 200)
    service.void(service.hold(ids["bob"], ids["cat"], 40)[0]["id"])
    service.hold(ids["cat"], ids["ann"], 10)
    return store, ids


def audited(store, require_terminal=True):
    return audit(store, require_terminal=require_terminal, page=PAGE)


def one_problem(store, text, require_terminal=True):
    problems = audited(store, require_terminal)["problems"]
    assert any(text in p for p in problems), problems
    return problems


def append(store, uid, moves, **changes):
    """Write the row after ``uid``'s head carrying ``moves``, with
    ``changes`` to it; return the row."""
    row, _ = next_row(Ledger(store).head(uid), moves)
    row.update(changes)
    assert store.insert(USER_TRANSACTIONS.name, row)
    return row


def transfer(txn_id, sender, recipient, amount, state):
    return {"id": txn_id, "sender": sender, "recipient": recipient, "amount": amount,
            "state": state, "timestamp": 1, "updated": 1}


def test_a_sound_store_has_no_problem_and_its_money_adds_up(sound):
    store, _ = sound
    report = audited(store)
    assert report["problems"] == [] and report["problem_count"] == 0
    # The hold still held keeps its 10 aside; nothing is in flight.
    assert report["initial_total"] == 1_590
    assert (report["balance_total"], report["held_total"], report["in_flight"]) == (1_580, 10, 0)
    assert audit(store) == report  # the page's size changes nothing


def test_a_gap_in_a_ledger(sound):
    store, ids = sound
    head = Ledger(store).head(ids["dan"])
    row, _ = next_row({**head, "seq": head["seq"] + 1}, [("t-gap", 5)])
    assert store.insert(USER_TRANSACTIONS.name, row)
    after, _ = next_row(row, [("t-gap2", 7)])
    assert store.insert(USER_TRANSACTIONS.name, after)
    report = audited(store)
    assert f"{ids['dan']}: ledger gap before seq {head['seq'] + 2}" in report["problems"]
    # The user's balance is still its head's, past the gap.
    assert report["balance_total"] == 1_580 + 12


def test_a_user_whose_first_row_is_not_written_yet(sound):
    store, _ = sound
    assert store.insert(USERS.name, {"id": "fay", "nickname": "fay", "initial_balance": 33,
                                     "head_seq": 0, "timestamp": 1, "key_hash": None})
    report = audited(store)
    assert report["problems"] == []
    assert (report["initial_total"], report["balance_total"]) == (1_590 + 33, 1_580 + 33)


def test_a_leg_carried_twice(sound):
    store, ids = sound
    service = TransactionService(store)
    txn, _ = service.immediately(ids["ann"], ids["dan"], 30)
    append(store, ids["dan"], [(txn["id"], 30)])
    problems = one_problem(store, f"{txn['id']}: applied more than once (1 debits, 0 declined, "
                                  "2 credits)")
    assert any("money not conserved" in p for p in problems)


def test_a_balance_below_zero(sound):
    store, ids = sound
    store.insert(TRANSACTIONS.name, transfer("t-over", ids["dan"], ids["cat"], 100, "in progress"))
    head = Ledger(store).head(ids["dan"])
    # As no writer would: a debit that does not fit, carried all the same.
    append(store, ids["dan"], [], legs=f'[["t-over","debit",-100,{head["balance"] - 100},0]]',
           amount=-100, balance=head["balance"] - 100)
    one_problem(store, f"{ids['dan']}: negative balance at seq {head['seq'] + 1}",
                require_terminal=False)


def test_a_running_balance_that_is_not_the_sum_of_the_legs(sound):
    store, ids = sound
    head = Ledger(store).head(ids["dan"])
    store.insert(TRANSACTIONS.name, transfer("t-odd", ids["bob"], ids["dan"], 1, "finished"))
    append(store, ids["dan"], [("t-odd", 1)], balance=head["balance"] + 2)
    one_problem(store, f"{ids['dan']}: seq {head['seq'] + 1} balance {head['balance'] + 2} != "
                       f"{head['balance'] + 1}")


def test_rows_of_a_user_no_one_registered(sound):
    store, _ = sound
    row, _ = next_row({"user_id": "ghost", "seq": -1, "balance": 0}, [("t-ghost", 5)])
    assert store.insert(USER_TRANSACTIONS.name, row)
    one_problem(store, "ledger rows for unknown user ghost")


def test_a_leg_of_a_transfer_that_is_not_there(sound):
    store, ids = sound
    append(store, ids["cat"], [Move("t-nowhere", CREDIT, 7)])
    one_problem(store, "ledger rows for unknown transaction t-nowhere")


def test_a_finished_transfer_without_its_legs(sound):
    store, ids = sound
    store.insert(TRANSACTIONS.name, transfer("t-empty", ids["ann"], ids["bob"], 5, "finished"))
    one_problem(store, "t-empty: finished without both legs")


def test_a_transfer_still_under_way_is_money_in_flight(sound):
    store, ids = sound
    store.insert(TRANSACTIONS.name, transfer("t-flying", ids["ann"], ids["bob"], 40,
                                             "in progress"))
    append(store, ids["ann"], [Move("t-flying", DEBIT, -40)])
    report = audited(store, require_terminal=False)
    assert report["problems"] == [] and report["in_flight"] == 40
    assert report["balance_total"] + report["held_total"] + 40 == report["initial_total"]
    one_problem(store, "t-flying: still 'in progress'")


def test_a_first_row_that_is_not_the_users_deposit(sound):
    store, ids = sound
    user = store.get(USERS.name, (ids["bob"],))
    assert store.cas(USERS.name, (ids["bob"],), user["_version"], {"initial_balance": 501})
    problems = one_problem(store, f"{ids['bob']}: row 0 is not the initial deposit")
    assert any("money not conserved" in p for p in problems)


def test_a_store_broken_everywhere_is_told_in_few_lines_and_counted_in_full(sound, monkeypatch):
    import timpe.audit

    store, ids = sound
    monkeypatch.setattr(timpe.audit, "MAX_PROBLEMS", 3)
    for n in range(5):
        store.insert(TRANSACTIONS.name, transfer(f"t-lost{n}", ids["ann"], ids["bob"], 1,
                                                 "finished"))
    report = audited(store)
    assert len(report["problems"]) == 3 and report["problem_count"] == 5


def test_a_transfer_made_while_it_reads_is_told_as_written_meanwhile(sound):
    """A transfer made after the ledgers were read, before the transfers
    are: its transfer row shows no legs. The audit cannot tell that from a
    lost leg, but it says rows were written while it read."""
    store, ids = sound
    assert audited(store)["written_meanwhile"] == 0
    scan, made = store.scan, []

    def scan_then_transfer(table_name, **kwargs):
        if table_name == TRANSACTIONS.name and not made:  # the ledgers are read
            time.sleep(0.002)  # in a later millisecond than the audit's start
            made.append(TransactionService(store).immediately(ids["ann"], ids["bob"], 5)[0])
        return scan(table_name, **kwargs)

    store.scan = scan_then_transfer
    report = audited(store)
    assert f"{made[0]['id']}: finished without both legs" in report["problems"]
    assert report["written_meanwhile"] >= 1
    store.scan = scan
    assert audited(store)["problems"] == [] and audited(store)["written_meanwhile"] == 0
