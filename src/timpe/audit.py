"""Check the invariants from the stored rows themselves.

Every ledger row keeps its running balance, so "no balance was ever negative"
can be proven after the fact, not only sampled while running. This reads the
tables with scans: run it on a quiescent store (after /process).
"""
from collections import defaultdict

from timpe.ledger import CREDIT, DEBIT, DECLINED, DEPOSIT, HOLD, POST, VOID, legs as legs_of
from timpe.store.paging import every
from timpe.store.schema import TRANSACTIONS, USER_TRANSACTIONS, USERS
from timpe.transactions.protocol import (
    FAILED, FINISHED, HELD, POSTING, TERMINAL, VOIDED, VOIDING, is_hold,
)

#: What each kind of leg may move.
SIGNS = {DEPOSIT: lambda a: a >= 0, DEBIT: lambda a: a < 0, CREDIT: lambda a: a > 0,
         DECLINED: lambda a: a == 0, HOLD: lambda a: a < 0, VOID: lambda a: a > 0,
         POST: lambda a: a >= 0}
#: What each kind of leg adds to the user's held total, from its amount
#: (a POST's is the hold's amount, checked against its transaction).
HELD_BY = {HOLD: lambda a: -a, VOID: lambda a: -a}
#: The states a transfer may rest in (with require_terminal).
RESTING = (*TERMINAL, HELD)


def audit(store, require_terminal=True):
    """Return {"problems": [...], "initial_total", "balance_total",
    "held_total", "in_flight"}. Open holds are money too: balances plus
    held plus what is in flight make the initial balances."""
    problems = []
    users = {u["id"]: u for u in every(store, USERS.name, "id")}
    txns = {t["id"]: t for t in every(store, TRANSACTIONS.name, "id")}
    ledgers = defaultdict(list)
    for row in every(store, USER_TRANSACTIONS.name, ("user_id", "seq")):
        ledgers[row["user_id"]].append(row)

    legs = defaultdict(list)  # transaction id -> its legs, as (user id, Leg, held added)
    balance_total = held_total = 0
    for uid, user in users.items():
        rows = ledgers.pop(uid, [])
        balance, held = _check_ledger(user, rows, legs, problems)
        balance_total, held_total = balance_total + balance, held_total + held
    for uid in ledgers:
        problems.append(f"ledger rows for unknown user {uid}")

    in_flight = 0
    for tid, txn in txns.items():
        if require_terminal and txn["state"] not in RESTING:
            problems.append(f"{tid}: still {txn['state']!r}")
        check = _check_hold if is_hold(txn) else _check_legs
        in_flight += check(txn, legs.pop(tid, []), problems)
    for tid in legs:
        problems.append(f"ledger rows for unknown transaction {tid}")

    initial_total = sum(u["initial_balance"] for u in users.values())
    if balance_total + held_total + in_flight != initial_total:
        problems.append(f"money not conserved: balances {balance_total} + held {held_total} "
                        f"+ in flight {in_flight} != initial {initial_total}")
    return {"problems": problems, "initial_total": initial_total,
            "balance_total": balance_total, "held_total": held_total, "in_flight": in_flight}


def _check_ledger(user, rows, legs, problems):
    """Check one user's ledger; return the user's balance and held total."""
    uid = user["id"]
    if not rows:
        return user["initial_balance"], 0  # row 0 not written yet: read repairs it
    balance = held = 0
    for expected_seq, row in enumerate(rows):
        seq = row["seq"]
        if seq != expected_seq:
            problems.append(f"{uid}: ledger gap before seq {seq}")
            break
        carried = legs_of(row)
        if not carried or row["amount"] != sum(leg.amount for leg in carried):
            problems.append(f"{uid}: seq {seq} amount is not the sum of its legs")
        for leg in carried:
            balance += leg.amount
            if leg.balance != balance:
                problems.append(f"{uid}: seq {seq} leg {leg.transaction_id} balance "
                                f"{leg.balance} != {balance}")
            if leg.balance < 0:
                problems.append(f"{uid}: negative balance at seq {seq}")
            added = leg.held - held
            if leg.kind != POST and added != HELD_BY.get(leg.kind, lambda a: 0)(leg.amount):
                problems.append(f"{uid}: seq {seq} leg {leg.transaction_id} moves held by "
                                f"{added} as a {leg.kind}")
            held = leg.held
            if held < 0:
                problems.append(f"{uid}: negative held at seq {seq}")
            if not SIGNS.get(leg.kind, lambda amount: False)(leg.amount):
                problems.append(f"{uid}: seq {seq} leg {leg.transaction_id} is not a "
                                f"{leg.kind}")
            if seq == 0:
                if leg.kind != DEPOSIT or leg.amount != user["initial_balance"]:
                    problems.append(f"{uid}: row 0 is not the initial deposit")
            else:
                legs[leg.transaction_id].append((uid, leg, added))
        if row["balance"] != balance:
            problems.append(f"{uid}: seq {seq} balance {row['balance']} != {balance}")
        if (row.get("held") or 0) != held:
            problems.append(f"{uid}: seq {seq} held {row.get('held')} != {held}")
    return rows[-1]["balance"], held


def _check_legs(txn, legs, problems):
    """Check a transfer against its legs; return money in flight."""
    tid, state = txn["id"], txn["state"]
    debits = [(u, leg) for u, leg, _ in legs if leg.kind == DEBIT]
    credits = [(u, leg) for u, leg, _ in legs if leg.kind == CREDIT]
    declined = [(u, leg) for u, leg, _ in legs if leg.kind == DECLINED]
    if state == VOIDED and legs:
        problems.append(f"{tid}: voided before phase 2, but moved money")
    if (len(debits) + len(declined) > 1 or len(credits) > 1
            or len(legs) != len(debits) + len(credits) + len(declined)):
        problems.append(f"{tid}: applied more than once ({len(debits)} debits, "
                        f"{len(declined)} declined, {len(credits)} credits)")
    for uid, leg in debits + declined:
        if uid != txn["sender"] or leg.kind == DEBIT and leg.amount != -txn["amount"]:
            problems.append(f"{tid}: debit leg does not match the transaction")
    for uid, leg in credits:
        if uid != txn["recipient"] or leg.amount != txn["amount"]:
            problems.append(f"{tid}: credit leg does not match the transaction")
    if state == FINISHED and (len(debits), len(credits)) != (1, 1):
        problems.append(f"{tid}: finished without both legs")
    if state == FAILED and (debits or credits):
        problems.append(f"{tid}: failed but moved money")
    if declined and (credits or state in (FINISHED, VOIDED)):
        problems.append(f"{tid}: its debit was declined, but it is {state!r}")
    if credits and not debits:
        problems.append(f"{tid}: credited without a debit")
    return txn["amount"] if debits and not credits else 0


#: The legs a hold may have carried in each state: (at least, at most), as
#: kinds in the order they are written.
HOLD_LEGS = {
    HELD: ((HOLD,), (HOLD,)),
    POSTING: ((HOLD,), (HOLD, POST, CREDIT)),
    FINISHED: ((HOLD, POST, CREDIT), (HOLD, POST, CREDIT)),
    VOIDING: ((HOLD,), (HOLD, VOID)),
    VOIDED: ((HOLD, VOID), (HOLD, VOID)),
    FAILED: ((DECLINED,), (DECLINED,)),
}


#: The order a hold's legs are written in (they are on two ledgers).
WRITTEN = {HOLD: 0, DECLINED: 0, POST: 1, VOID: 1, CREDIT: 2}


def _check_hold(txn, legs, problems):
    """Check a hold against its legs; return money in flight (posted, not
    yet credited: the hold has left ``held``)."""
    tid, state, amount = txn["id"], txn["state"], txn["amount"]
    legs = sorted(legs, key=lambda found: WRITTEN.get(found[1].kind, 3))
    kinds = tuple(leg.kind for _, leg, _ in legs)
    least, most = HOLD_LEGS.get(state, ((), (HOLD,)))  # in progress: at most its hold
    if kinds not in {most[:n] for n in range(len(least), len(most) + 1)} and not (
            state not in HOLD_LEGS and kinds == (DECLINED,)):
        problems.append(f"{tid}: a {state!r} hold carries the legs {list(kinds)}")
        return 0
    posted = txn["posted"]
    for uid, leg, added in legs:
        expected = {
            HOLD: (txn["sender"], -amount), DECLINED: (txn["sender"], 0),
            VOID: (txn["sender"], amount), CREDIT: (txn["recipient"], posted),
            POST: (txn["sender"], None if posted is None else amount - posted),
        }[leg.kind]
        if (uid, leg.amount) != expected or leg.kind == POST and added != -amount:
            problems.append(f"{tid}: its {leg.kind} leg does not match the hold")
    return posted if kinds == (HOLD, POST) else 0
