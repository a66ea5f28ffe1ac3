"""The append-only ledger (table ``user_transactions``).

Each user's rows form a gap-free sequence 0, 1, 2, ... and every row stores
the running balance, so the newest row *is* the balance. A row is written
only with insert-if-absent at "newest seq + 1": two writers racing for the
same seq cannot both win, which is what makes an overdraft impossible.

Finding the newest row must not cost a scan: ``users.head_seq`` is a hint
that may lag but never leads, and a balance read walks forward from it by
primary-key gets. Appends push the hint forward every ``HINT_STRIDE`` rows,
so a read costs at most about that many gets, however long the history.

Rows never change once written, so a Ledger remembers the newest row it has
seen of each user: always a valid row, at worst no longer the newest, which
the forward walk corrects. It lives as long as one request.
"""
import time

from timpe.store.schema import USER_TRANSACTIONS, USERS

HINT_STRIDE = 4


def now_ms():
    return int(time.time() * 1000)


class Ledger:
    def __init__(self, store):
        self.store = store
        self._seen = {}  # user id -> the newest ledger row seen of that user

    def head(self, user_id, user=None):
        """The user's newest ledger row (its balance is the user's balance).

        ``user`` (the users row) is read when needed and not passed.
        """
        row = self._seen.get(user_id)
        if row is None:
            user = user or self.store.get(USERS.name, (user_id,))
            row = self._start(user)
        while True:
            following = self.store.get(USER_TRANSACTIONS.name, (user_id, row["seq"] + 1))
            if following is None:
                self._seen[user_id] = row
                return row
            row = following

    def _start(self, user):
        row = self.store.get(USER_TRANSACTIONS.name, (user["id"], user["head_seq"]))
        if row is not None:
            return row
        # The hint only ever names a written row, except seq 0 when a
        # registration stopped between its two inserts: finish it.
        if user["head_seq"] != 0:
            raise LookupError(f"ledger of {user['id']} lost row {user['head_seq']}")
        return self.open(user)

    def row(self, user_id, seq):
        seen = self._seen.get(user_id)
        if seen is not None and seen["seq"] == seq:
            return seen
        return self.store.get(USER_TRANSACTIONS.name, (user_id, seq))

    def open(self, user):
        """Write row 0, the registration's initial balance (idempotent)."""
        self.store.insert(USER_TRANSACTIONS.name, {
            "user_id": user["id"], "seq": 0, "transaction_id": None,
            "kind": "deposit", "amount": user["initial_balance"],
            "balance": user["initial_balance"], "timestamp": user["timestamp"],
        })
        return self.store.get(USER_TRANSACTIONS.name, (user["id"], 0))

    def append(self, previous, transaction_id, kind, amount):
        """Write the row after ``previous``; False when another writer won it."""
        row = {
            "user_id": previous["user_id"], "seq": previous["seq"] + 1,
            "transaction_id": transaction_id, "kind": kind, "amount": amount,
            "balance": previous["balance"] + amount, "timestamp": now_ms(),
        }
        if not self.store.insert(USER_TRANSACTIONS.name, row):
            return False
        self._seen[row["user_id"]] = row
        self._advance_hint(row["user_id"], row["seq"])
        return True

    def _advance_hint(self, user_id, seq):
        """Move users.head_seq up to ``seq``; best effort, never backwards."""
        if seq % HINT_STRIDE:
            return
        for _ in range(3):
            user = self.store.get(USERS.name, (user_id,))
            if user is None or user["head_seq"] >= seq:
                return
            if self.store.cas(USERS.name, (user_id,), user["_version"], {"head_seq": seq}):
                return
