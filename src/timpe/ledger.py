"""The append-only ledger (table ``user_transactions``).

Each user's rows form a gap-free sequence 0, 1, 2, ... and every row stores
the running balance, so the newest row *is* the balance. A row is written
only with insert-if-absent at "newest seq + 1": two writers racing for the
same seq cannot both win, which is what makes an overdraft impossible.

Rows never change once written, so a row once seen stays a valid row, at
worst no longer the newest. A Ledger remembers the newest row it has seen
of each user, and so does the process (timpe.users.known): a head is then
found from there by primary key, with one look-up of the next seqs of
every user wanted (both parties of a transfer in one round trip; farther
while they are all taken), and proven by the first seq that is absent.
Every store answers gets by primary key with each acknowledged write, so a
proven head is the head but for writes still in flight, which the
insert-if-absent after it catches.

A user the process has not seen yet starts from its users row's hint,
``users.head_seq`` (it may lag but never leads, and is pushed forward every
``HINT_STRIDE`` appends): the hint's row and the seqs after it are read in
the proof's own look-up. Only where that row is missing (a registration cut
between its two writes, a store destroyed under the node) does it start
from a search: ``newest`` finds the highest row at or above the hint. A
search is eventually consistent (a CrateDB search sees what its last
refresh made visible), so it may come back with an older row or none; then
the hint's row and the look-ahead take over: a stale search costs round
trips, never a wrong answer.

Rows carry one leg or many (:func:`legs`); the process's appender
(timpe.transactions.appender) writes them.

A row the process kept may predate a store destroyed and filled again
under it (bin/crate_cleanup): the look-ahead asks for that row too, and
when it is gone the user starts over from its users row.
"""
import json
import time
from collections import namedtuple

from timpe.errors import RowsLost, unknown_user
from timpe.store.races import insert_or_read
from timpe.store.schema import USER_TRANSACTIONS, USERS

#: Each push of a hint is a compare-and-set of the users row: on CrateDB
#: one more bulk request of its own, for a user every HINT_STRIDE rows. At
#: 16 a uniform transfer sent 0.39 store requests, at 128 0.34-0.36, and
#: ran 599 against 672/s (medians of four alternating runs; docs/
#: benchmarks.rst). A process that has not seen a user walks from its hint
#: in windows that double (4, 8, 16, 32): at 64, up to about four round
#: trips, once per process and user.
HINT_STRIDE = 64
#: Seqs looked ahead of the newest row known, per user, in the first round
#: trip: about what the other node appends between two looks of this one at
#: a busy user. Each round trip that finds its whole window taken (a search
#: that lagged far, a user the process saw long ago) looks twice as far.
WINDOW = 4
MAX_WINDOW = 64
#: Seqs looked ahead of a row the process kept, in the first round trip:
#: the process wrote it or proved it the head, and where writes of a user
#: go to one node (timpe.topology.routing) it is the head still. Found
#: taken, the look goes on with WINDOW.
KEPT_WINDOW = 1


#: One movement a ledger row carries: ``amount`` is signed (a debit is
#: negative) and ``balance`` is the running balance just after it; ``held``
#: the running total of the user's open holds (0 in rows of an earlier
#: version). A debit that did not fit is carried as DECLINED, with amount
#: 0: the row it is in decides, for every process, that its transfer failed.
Leg = namedtuple("Leg", "transaction_id kind amount balance held", defaults=(0,))
DEPOSIT, DEBIT, CREDIT, DECLINED = "deposit", "debit", "credit", "declined"
#: The legs of a hold on the sender's ledger (timpe.transactions.holds): a
#: HOLD moves the amount from the balance to ``held``; a VOID moves it back;
#: a POST takes it out of ``held`` and returns what was not posted (the
#: posted part is a CREDIT of the recipient).
HOLD, VOID, POST = "hold", "void", "post"
#: The kinds of leg that can be declined: those that take from the balance.
TAKING = (DEBIT, HOLD)
#: The kind of a row that carries more than one leg.
MANY = "legs"
#: The most legs one row carries (statements number a row's legs below it).
MAX_LEGS = 1000


def now_ms():
    return int(time.time() * 1000)


def legs(row):
    """The legs ``row`` carries, in order (decoded once per row object)."""
    found = row.get("_legs")
    if found is None:
        raw = row.get("legs")
        if raw is None:  # a row of one leg, as the first rows of a ledger are
            found = [Leg(row["transaction_id"], row["kind"], row["amount"], row["balance"],
                         row.get("held") or 0)]
        else:
            found = [Leg(*leg) for leg in json.loads(raw)]
        row["_legs"] = found
    return found


def leg_of(row, transaction_id):
    """The leg of ``transaction_id`` that ``row`` carries, or None."""
    index = row.get("_index")
    if index is None:
        index = row["_index"] = {leg.transaction_id: leg for leg in legs(row)}
    return index.get(transaction_id)


#: What a leg waiting to be carried asks: ``amount`` is signed, ``held``
#: what it adds to the user's held total (timpe.transactions.appender).
Move = namedtuple("Move", "transaction_id kind amount held", defaults=(0,))


def same_write(row, other):
    """Whether two reads of one key show the same write: rows never
    change, so legs and running balances tell a row from another written
    under its key after the first vanished (a write its primary lost)."""
    return all(row[c] == other[c] for c in ("legs", "balance", "held"))


def move(txn_id, amount):
    """A plain debit or credit."""
    return Move(txn_id, DEBIT if amount < 0 else CREDIT, amount)


def next_row(previous, moves):
    """The row after ``previous`` that carries ``moves`` (Moves, or
    (transaction id, signed amount) pairs): a debit or hold that would take
    the running balance below zero is carried DECLINED instead. Return (the
    row to insert, its legs)."""
    balance, held, carried = previous["balance"], previous.get("held") or 0, []
    moves = [m if isinstance(m, Move) else move(*m) for m in moves]
    # Credits first: each debit then meets the most the row can hold.
    for m in sorted(moves, key=lambda m: m.amount < 0):
        if m.kind in TAKING and balance + m.amount < 0:
            carried.append(Leg(m.transaction_id, DECLINED, 0, balance, held))
            continue
        balance, held = balance + m.amount, held + m.held
        carried.append(Leg(m.transaction_id, m.kind, m.amount, balance, held))
    one = carried[0] if len(carried) == 1 else None
    row = {
        "user_id": previous["user_id"], "seq": previous["seq"] + 1,
        "transaction_id": one.transaction_id if one else None,
        "kind": one.kind if one else MANY,
        "amount": balance - previous["balance"], "balance": balance, "held": held,
        "timestamp": now_ms(),
        "legs": json.dumps([list(leg) for leg in carried], separators=(",", ":")),
    }
    return row, carried


class Ledger:
    def __init__(self, store, known=None):
        self.store = store
        self.known = known  # what the process keeps (timpe.users.known)
        self._seen = {}   # user id -> the newest ledger row seen of that user
        self._users = {}  # user id -> its users row as last seen

    def remember_user(self, user, keep=True):
        """Remember ``user`` for this request; ``keep`` it for the process
        too (False: it came from there)."""
        self._users[user["id"]] = user
        if keep and self.known is not None:
            self.known.keep(user)

    def _saw(self, row):
        """``row`` is the newest row seen of its user, here and by the process."""
        self._seen[row["user_id"]] = row
        if self.known is not None:
            self.known.keep_head(row)

    def recent(self, user_id, user=None):
        """A ledger row of the user, in one round trip at most (none when the
        process knows one): the head, unless another writer appended since
        or a search lagged. Decide nothing on it that no insert-if-absent
        checks after.

        ``user`` (the users row) is read when needed and not passed.
        """
        row = self._seen.get(user_id)
        if row is None:
            row = self.known.head(user_id) if self.known is not None else None
            if row is None:
                row = self._search(user or self._user(user_id))
            self._seen[user_id] = row
        return row

    def _search(self, user):
        row = (self.store.newest(USER_TRANSACTIONS.name, (user["id"],), since=user["head_seq"])
               or self._start(user))
        self._saw(row)
        return row

    def _user(self, user_id):
        """The users row as this request or this process last saw it, else
        as stored."""
        user = self._users.get(user_id)
        if user is None and self.known is not None:
            user = self.known.get(user_id)
        if user is None:
            user = self.store.get(USERS.name, (user_id,))
            if user is None:
                raise unknown_user(user_id)
            self.remember_user(user)
        return user

    def covering(self, user_id, amount, user=None):
        """A row to claim a debit of ``amount`` after: the recent row when it
        covers the amount, else the proven head, which may not. Refusing for
        want of funds is decided on a proven head only: a recent row may
        predate a credit."""
        row = self.recent(user_id, user)
        return row if row["balance"] >= amount else self.head(user_id, user)

    def head(self, user_id, user=None):
        """The user's newest ledger row (its balance is the user's balance),
        proven by the absence of the row after it."""
        return self.heads({user_id: user})[user_id]

    def from_hints(self, users):
        """Start each user of ``users`` ({id: users row}) that this request
        and the process have not seen from its hint's row, all in one
        look-up instead of a search each: for listings of many users. (A
        user whose hint's row is missing starts from a search, as ever.)"""
        wanted = [(uid, user["head_seq"]) for uid, user in users.items()
                  if uid not in self._seen
                  and (self.known is None or self.known.head(uid) is None)]
        if wanted:
            for row in self.store.get_many(USER_TRANSACTIONS.name, wanted):
                self._saw(row)

    def heads(self, users):
        """The proven newest row of each user of ``users`` ({id: users row
        or None}), all in one look-up while none is more than its first
        window ahead of the row known: KEPT_WINDOW from a row the process
        kept, WINDOW from a hint or a search."""
        start = {uid: self._start_of(uid, user) for uid, user in users.items()}
        # From a hint the head is up to HINT_STRIDE rows ahead: look farther.
        proven = {}
        windows = {uid: KEPT_WINDOW if "_kept" in row else WINDOW for uid, row in start.items()}
        while start:
            # A row the process kept is asked for again: is it still there?
            # So is the row a users row's hint names (see _start_of).
            check = {uid: row for uid, row in start.items() if "_kept" in row or "_hint" in row}
            keys = [(uid, row["seq"] + i) for uid, row in start.items()
                    for i in range(0 if uid in check else 1, windows[uid] + 1)]
            found = {(r["user_id"], r["seq"]): r
                     for r in self.store.get_many(USER_TRANSACTIONS.name, keys)}
            ahead = {}
            for uid, row in start.items():
                if uid in check and (uid, row["seq"]) not in found:
                    ahead[uid] = (self._forget(uid, users.get(uid)) if "_kept" in row
                                  else self.recent(uid, users.get(uid)))
                    continue
                seq = row["seq"]
                while (uid, seq + 1) in found:
                    seq += 1
                newest = found.get((uid, seq), row)
                self._saw(newest)
                if seq == row["seq"] + windows[uid]:
                    ahead[uid] = newest  # the whole window is taken: look on
                else:
                    proven[uid] = newest
            start = ahead
            windows = {uid: WINDOW if windows[uid] < WINDOW else min(2 * windows[uid], MAX_WINDOW)
                       for uid in ahead}
        return proven

    def _start_of(self, uid, user):
        """Where a proof of ``uid``'s head starts: the newest row seen, else
        the row its users row's hint names (when that users row is at hand,
        here or in the process), read in the proof's own look-up instead of
        found by a search first: a look-up by key costs a cluster far less
        than a search, and a hint lags its head by about HINT_STRIDE rows at
        most. Where the hint's row is missing, the proof starts over from a
        search (recent)."""
        if uid in self._seen or (self.known is not None and self.known.head(uid) is not None):
            return self.recent(uid, user)
        user = user or self._users.get(uid) or (self.known.get(uid) if self.known else None)
        if user is None:
            return self.recent(uid, user)
        return {"user_id": uid, "seq": user["head_seq"], "_hint": True}

    def _forget(self, user_id, user):
        """The kept newest row of ``user_id`` is gone from the store: start
        the user over from its users row as stored."""
        if self.known is not None:
            self.known.forget(user_id)
        self._users.pop(user_id, None)
        stored = self.store.get(USERS.name, (user_id,))
        if stored is None:
            raise unknown_user(user_id)
        self.remember_user(stored)
        return self._search(stored)

    def _start(self, user):
        row = self.store.get(USER_TRANSACTIONS.name, (user["id"], user["head_seq"]))
        if row is not None:
            return row
        # The hint only ever names a written row, except seq 0 when a
        # registration stopped between its two inserts: finish it. A kept
        # users row may predate a store destroyed and filled again: read it.
        stored = self.store.get(USERS.name, (user["id"],))
        if stored is None:
            raise unknown_user(user["id"])
        if stored["timestamp"] != user["timestamp"] or stored["head_seq"] != user["head_seq"]:
            self.remember_user(stored)
            return self._start(stored)
        if user["head_seq"] != 0:
            raise RowsLost(f"store lost rows: ledger of {user['id']} lost row {user['head_seq']}")
        return self.open(user)

    def open(self, user):
        """Write row 0, the registration's initial balance (idempotent)."""
        row = insert_or_read(self.store, USER_TRANSACTIONS.name, {
            "user_id": user["id"], "seq": 0, "transaction_id": None,
            "kind": DEPOSIT, "amount": user["initial_balance"],
            "balance": user["initial_balance"], "timestamp": user["timestamp"],
            "legs": None, "held": 0,
        })[1]
        self._saw(row)
        return row

    def advance_hint(self, user_id, seq):
        """Move users.head_seq up to ``seq``; best effort, never backwards."""
        if seq % HINT_STRIDE:
            return
        # First try the row this request read, or the process keeps (the
        # phase 1 of its transfers reads it, so its version is often current).
        user = self._users.get(user_id) or (self.known.get(user_id) if self.known else None)
        for _ in range(3):
            if user is None or user.get("_version") is None:
                user = self.store.get(USERS.name, (user_id,))
                if user is not None:
                    self.remember_user(user)
            if user is None or user["head_seq"] >= seq:
                return
            if self.store.cas(USERS.name, (user_id,), user["_version"], {"head_seq": seq}):
                # Its new version is unknown: the next push reads the row.
                self.remember_user({**user, "head_seq": seq, "_version": None})
                return
            user = None  # it moved on (or was kept stale): read it again
