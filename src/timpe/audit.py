"""Check the invariants from the stored rows themselves.

Every ledger row keeps its running balance, so "no balance was ever negative"
can be proven after the fact, not only sampled while running. This reads the
tables with scans: run it on a quiescent store (after /process).
"""
from collections import defaultdict

from timpe.ledger import CREDIT, DEBIT, DECLINED, DEPOSIT, legs as legs_of
from timpe.store.schema import TRANSACTIONS, USER_TRANSACTIONS, USERS
from timpe.transactions.protocol import FAILED, FINISHED, TERMINAL

#: What each kind of leg may move.
SIGNS = {DEPOSIT: lambda a: a >= 0, DEBIT: lambda a: a < 0, CREDIT: lambda a: a > 0,
         DECLINED: lambda a: a == 0}


def audit(store, require_terminal=True):
    """Return {"problems": [...], "initial_total", "balance_total", "in_flight"}."""
    problems = []
    users = {u["id"]: u for u in store.scan(USERS.name)}
    txns = {t["id"]: t for t in store.scan(TRANSACTIONS.name)}
    ledgers = defaultdict(list)
    for row in store.scan(USER_TRANSACTIONS.name, order_by=("user_id", "seq")):
        ledgers[row["user_id"]].append(row)

    legs = defaultdict(list)  # transaction id -> its legs, as (user id, Leg)
    balance_total = 0
    for uid, user in users.items():
        rows = ledgers.pop(uid, [])
        balance_total += _check_ledger(user, rows, legs, problems)
    for uid in ledgers:
        problems.append(f"ledger rows for unknown user {uid}")

    in_flight = 0
    for tid, txn in txns.items():
        in_flight += _check_legs(txn, legs.pop(tid, []), require_terminal, problems)
    for tid in legs:
        problems.append(f"ledger rows for unknown transaction {tid}")

    initial_total = sum(u["initial_balance"] for u in users.values())
    if balance_total + in_flight != initial_total:
        problems.append(f"money not conserved: balances {balance_total} + in flight "
                        f"{in_flight} != initial {initial_total}")
    return {"problems": problems, "initial_total": initial_total,
            "balance_total": balance_total, "in_flight": in_flight}


def _check_ledger(user, rows, legs, problems):
    """Check one user's ledger; return the user's balance."""
    uid = user["id"]
    if not rows:
        return user["initial_balance"]  # row 0 not written yet: read repairs it
    balance = 0
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
            if not SIGNS.get(leg.kind, lambda amount: False)(leg.amount):
                problems.append(f"{uid}: seq {seq} leg {leg.transaction_id} is not a "
                                f"{leg.kind}")
            if seq == 0:
                if leg.kind != DEPOSIT or leg.amount != user["initial_balance"]:
                    problems.append(f"{uid}: row 0 is not the initial deposit")
            else:
                legs[leg.transaction_id].append((uid, leg))
        if row["balance"] != balance:
            problems.append(f"{uid}: seq {seq} balance {row['balance']} != {balance}")
    return rows[-1]["balance"]


def _check_legs(txn, legs, require_terminal, problems):
    """Check a transaction against its legs; return money in flight."""
    tid, state = txn["id"], txn["state"]
    debits = [(u, leg) for u, leg in legs if leg.kind == DEBIT]
    credits = [(u, leg) for u, leg in legs if leg.kind == CREDIT]
    declined = [(u, leg) for u, leg in legs if leg.kind == DECLINED]
    if require_terminal and state not in TERMINAL:
        problems.append(f"{tid}: still {state!r}")
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
    if declined and (credits or state not in (FAILED, *([] if require_terminal else
                                                      [txn["state"]]))):
        problems.append(f"{tid}: its debit was declined, but it is {state!r}")
    if credits and not debits:
        problems.append(f"{tid}: credited without a debit")
    return txn["amount"] if debits and not credits else 0
