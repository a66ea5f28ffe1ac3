"""The append-only ledger (table ``user_transactions``).

Each user's rows form a gap-free sequence 0, 1, 2, ... and every row stores
the running balance, so the newest row *is* the balance. A row is written
only with insert-if-absent at "newest seq + 1": two writers racing for the
same seq cannot both win, which is what makes an overdraft impossible.

Finding the newest row must not cost a scan: ``users.head_seq`` is a hint
that may lag but never leads, and a balance read walks forward from it by
primary-key gets. Appends push the hint forward every ``HINT_STRIDE`` rows,
so a read costs at most about that many gets, however long the history.
"""
import time

from timpe.store.schema import USER_TRANSACTIONS, USERS

HINT_STRIDE = 8


def now_ms():
    return int(time.time() * 1000)


class Ledger:
    def __init__(self, store):
        self.store = store

    def head(self, user):
        """The user's newest ledger row (its balance is the user's balance)."""
        row = self.row(user["id"], user["head_seq"])
        if row is None:
            # The hint only ever names a written row, except seq 0 when a
            # registration stopped between its two inserts: finish it.
            if user["head_seq"] != 0:
                raise LookupError(f"ledger of {user['id']} lost row {user['head_seq']}")
            row = self.open(user)
        while True:
            following = self.row(user["id"], row["seq"] + 1)
            if following is None:
                return row
            row = following

    def row(self, user_id, seq):
        return self.store.get(USER_TRANSACTIONS.name, (user_id, seq))

    def open(self, user):
        """Write row 0, the registration's initial balance (idempotent)."""
        self.store.insert(USER_TRANSACTIONS.name, {
            "user_id": user["id"], "seq": 0, "transaction_id": None,
            "kind": "deposit", "amount": user["initial_balance"],
            "balance": user["initial_balance"], "timestamp": user["timestamp"],
        })
        return self.row(user["id"], 0)

    def append(self, previous, transaction_id, kind, amount):
        """Write the row after ``previous``; False when another writer won it."""
        return self.store.insert(USER_TRANSACTIONS.name, {
            "user_id": previous["user_id"], "seq": previous["seq"] + 1,
            "transaction_id": transaction_id, "kind": kind, "amount": amount,
            "balance": previous["balance"] + amount, "timestamp": now_ms(),
        })

    def advance_hint(self, user_id, seq):
        """Move users.head_seq towards ``seq``; best effort, never backwards."""
        if seq % HINT_STRIDE:
            return
        for _ in range(3):
            user = self.store.get(USERS.name, (user_id,))
            if user is None or user["head_seq"] >= seq:
                return
            if self.store.cas(USERS.name, (user_id,), user["_version"], {"head_seq": seq}):
                return
