"""Check the invariants from the stored rows themselves.

Every ledger row keeps its running balance, so "no balance was ever negative"
can be proven after the fact, not only sampled while running. This reads the
tables with scans: run it on a quiescent store (after /process).
"""
from collections import defaultdict

from timpe.store.schema import TRANSACTIONS, USER_TRANSACTIONS, USERS
from timpe.transactions.protocol import FAILED, FINISHED, TERMINAL


def audit(store, require_terminal=True):
    """Return {"problems": [...], "initial_total", "balance_total", "in_flight"}."""
    problems = []
    users = {u["id"]: u for u in store.scan(USERS.name)}
    txns = {t["id"]: t for t in store.scan(TRANSACTIONS.name)}
    ledgers = defaultdict(list)
    for row in store.scan(USER_TRANSACTIONS.name, order_by=("user_id", "seq")):
        ledgers[row["user_id"]].append(row)

    legs = defaultdict(list)  # transaction id -> its ledger rows
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
        if row["seq"] != expected_seq:
            problems.append(f"{uid}: ledger gap before seq {row['seq']}")
            break
        balance += row["amount"]
        if row["balance"] != balance:
            problems.append(f"{uid}: seq {row['seq']} balance {row['balance']} != {balance}")
        if row["balance"] < 0:
            problems.append(f"{uid}: negative balance at seq {row['seq']}")
        if row["seq"] == 0:
            if row["kind"] != "deposit" or row["amount"] != user["initial_balance"]:
                problems.append(f"{uid}: row 0 is not the initial deposit")
        else:
            legs[row["transaction_id"]].append(row)
    return rows[-1]["balance"]


def _check_legs(txn, rows, require_terminal, problems):
    """Check a transaction against its ledger rows; return money in flight."""
    tid, state = txn["id"], txn["state"]
    debits = [r for r in rows if r["kind"] == "debit"]
    credits = [r for r in rows if r["kind"] == "credit"]
    if require_terminal and state not in TERMINAL:
        problems.append(f"{tid}: still {state!r}")
    if len(debits) > 1 or len(credits) > 1 or len(rows) != len(debits) + len(credits):
        problems.append(f"{tid}: applied more than once ({len(debits)} debits, "
                        f"{len(credits)} credits)")
    for row in debits:
        if row["user_id"] != txn["sender"] or row["amount"] != -txn["amount"]:
            problems.append(f"{tid}: debit row does not match the transaction")
    for row in credits:
        if row["user_id"] != txn["recipient"] or row["amount"] != txn["amount"]:
            problems.append(f"{tid}: credit row does not match the transaction")
    if state == FINISHED and (len(debits), len(credits)) != (1, 1):
        problems.append(f"{tid}: finished without both legs")
    if state == FAILED and rows:
        problems.append(f"{tid}: failed but moved money")
    if credits and not debits:
        problems.append(f"{tid}: credited without a debit")
    return txn["amount"] if debits and not credits else 0
