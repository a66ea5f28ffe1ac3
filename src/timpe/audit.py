"""Check the invariants from the stored rows themselves.

Every ledger row keeps its running balance, so "no balance was ever negative"
can be proven after the fact, not only sampled while running. This reads the
tables with scans, which no store reads at one instant: run it on a store
no client writes to meanwhile. Transfers left under way (queued, or cut
short by a crash) are money in flight; after /process none is.
Rows written while it reads are counted (``written_meanwhile``): the
problems it finds may then be theirs.

It keeps the users in memory, the rows of a table only a page at a time,
and the legs it finds in a temporary SQLite file (in the system's
temporary directory: about 150 bytes a leg, measured), where each page of
transactions finds its own. So its memory grows with the users, not with
the transfers: holding every row, the audit of 2.3 million transfers
took 5.4 GB (docs/benchmarks.rst).
"""
import itertools
import operator
import sqlite3
import tempfile
from collections import namedtuple
from pathlib import Path

from timpe.ledger import (
    CREDIT, DEBIT, DECLINED, DEPOSIT, HOLD, POST, VOID, legs as legs_of, now_ms,
)
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
#: Problems told in full; the others are only counted (a store broken
#: everywhere would otherwise fill the memory with its problems).
MAX_PROBLEMS = 10_000
#: Transactions whose legs are looked up at once in the spilled legs.
LOOKUP = 500
#: Legs written to the temporary file in one transaction of its own.
SPILL = 10_000


def audit(store, require_terminal=True, page=None):
    """Return {"problems": [...], "problem_count", "initial_total",
    "balance_total", "held_total", "in_flight", "written_meanwhile"}. Open
    holds are money too: balances plus held plus what is in flight make
    the initial balances. ``page``: rows a scan reads at once
    (timpe.store.paging)."""
    problems, meanwhile = _Problems(), _Meanwhile(now_ms())
    initial = {u["id"]: u["initial_balance"] for u in every(store, USERS.name, "id", page)}
    balance_total = held_total = in_flight = 0
    with _Legs() as legs:
        unseen = set(initial)
        rows = every(store, USER_TRANSACTIONS.name, ("user_id", "seq"), page)
        for uid, ledger in itertools.groupby(rows, operator.itemgetter("user_id")):
            if uid not in initial:
                problems.append(f"ledger rows for unknown user {uid}")
                continue
            unseen.discard(uid)
            balance, held = _check_ledger(uid, initial[uid], meanwhile.rows(ledger, "timestamp"),
                                          legs.add, problems)
            balance_total, held_total = balance_total + balance, held_total + held
        # No row 0 yet: reading the user writes it.
        balance_total += sum(initial[uid] for uid in unseen)

        txns = meanwhile.rows(every(store, TRANSACTIONS.name, "id", page), "updated")
        while chunk := list(itertools.islice(txns, LOOKUP)):
            found = legs.of([txn["id"] for txn in chunk])
            for txn in chunk:
                if require_terminal and txn["state"] not in RESTING:
                    problems.append(f"{txn['id']}: still {txn['state']!r}")
                check = _check_hold if is_hold(txn) else _check_legs
                in_flight += check(txn, found.get(txn["id"], []), problems)
        for tid in legs.unclaimed():
            problems.append(f"ledger rows for unknown transaction {tid}")

    initial_total = sum(initial.values())
    if balance_total + held_total + in_flight != initial_total:
        problems.append(f"money not conserved: balances {balance_total} + held {held_total} "
                        f"+ in flight {in_flight} != initial {initial_total}")
    return {"problems": list(problems), "problem_count": problems.total,
            "initial_total": initial_total, "balance_total": balance_total,
            "held_total": held_total, "in_flight": in_flight,
            "written_meanwhile": meanwhile.count}


class _Meanwhile:
    """Counts the rows read that were written after the audit began (in
    a later millisecond: the last write before it may share its own)."""

    def __init__(self, began):
        self.began, self.count = began, 0

    def rows(self, rows, stamp):
        for row in rows:
            if (row.get(stamp) or 0) > self.began:
                self.count += 1
            yield row


class _Problems(list):
    """The problems found: the first MAX_PROBLEMS kept, every one counted."""
    total = 0

    def append(self, text):
        self.total += 1
        if self.total <= MAX_PROBLEMS:
            super().append(text)


class _Legs:
    """The legs the ledgers carry, by transaction, in a temporary SQLite
    file: written as the ledgers are read, looked up a page of
    transactions at a time, and, at the end, those of no transaction."""

    def __init__(self):
        self._dir = tempfile.TemporaryDirectory(prefix="timpe-audit-")
        self._db = sqlite3.connect(Path(self._dir.name) / "legs.sqlite", isolation_level=None)
        # A scratch file: nothing in it outlives the audit.
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("CREATE TABLE legs (txn TEXT, user TEXT, kind TEXT, amount INTEGER, "
                         "added INTEGER)")
        self._db.execute("CREATE TABLE txns (id TEXT PRIMARY KEY) WITHOUT ROWID")
        self._pending, self._indexed = [], False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._db.close()
        self._dir.cleanup()

    def add(self, txn_id, uid, leg, added):
        self._pending.append((txn_id, uid, leg.kind, leg.amount, added))
        if len(self._pending) >= SPILL:
            self._flush()

    def _flush(self):
        self._insert("INSERT INTO legs VALUES (?, ?, ?, ?, ?)", self._pending)
        self._pending.clear()

    def _insert(self, sql, rows):
        self._db.execute("BEGIN")  # one transaction, not one a row: 14 times faster
        self._db.executemany(sql, rows)
        self._db.execute("COMMIT")

    def _ready(self):
        """Once every leg is in: index them by transaction."""
        if not self._indexed:
            self._flush()
            self._db.execute("CREATE INDEX legs_txn ON legs (txn)")
            self._indexed = True

    def of(self, txn_ids):
        """{transaction id: [(user id, Leg-like, held added)]} for ``txn_ids``
        (each remembered as a transaction that exists)."""
        self._ready()
        self._insert("INSERT OR IGNORE INTO txns VALUES (?)", [(t,) for t in txn_ids])
        found = {}
        marks = ",".join("?" * len(txn_ids))
        for txn, uid, kind, amount, added in self._db.execute(
                f"SELECT txn, user, kind, amount, added FROM legs WHERE txn IN ({marks}) "
                "ORDER BY rowid", txn_ids):
            found.setdefault(txn, []).append((uid, _Leg(kind, amount), added))
        return found

    def unclaimed(self):
        """The transaction ids legs name that no transaction had."""
        self._ready()
        return [tid for (tid,) in self._db.execute(
            "SELECT DISTINCT txn FROM legs WHERE txn NOT IN (SELECT id FROM txns) ORDER BY txn")]


#: What the checks of a transaction read of a leg.
_Leg = namedtuple("_Leg", "kind amount")


def _check_ledger(uid, initial_balance, rows, add_leg, problems):
    """Check one user's ledger (``rows``, in seq order); hand each leg of
    a transfer to ``add_leg(transaction id, user id, leg, held added)``;
    return the user's balance and held total."""
    balance = held = 0
    last, gap = None, False
    for expected_seq, row in enumerate(rows):
        last, seq = row, row["seq"]
        if gap:
            continue  # read on to the head: the balance is its
        if seq != expected_seq:
            problems.append(f"{uid}: ledger gap before seq {seq}")
            gap = True
            continue
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
                if leg.kind != DEPOSIT or leg.amount != initial_balance:
                    problems.append(f"{uid}: row 0 is not the initial deposit")
            else:
                add_leg(leg.transaction_id, uid, leg, added)
        if row["balance"] != balance:
            problems.append(f"{uid}: seq {seq} balance {row['balance']} != {balance}")
        if (row.get("held") or 0) != held:
            problems.append(f"{uid}: seq {seq} held {row.get('held')} != {held}")
    return last["balance"], held


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
