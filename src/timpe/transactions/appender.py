"""Appending legs: the legs one process has waiting for a user go in one row.

A leg (a transfer's debit or credit) is carried by the first row of the
user's ledger, from the seq its transaction claimed on, that carries it
(timpe.transactions.protocol). The process's first caller for a user leads:
it takes every leg then waiting for that user, looks for each in the rows
from its claim to the head, and appends the rest as one row at the next
seq with one insert-if-absent. The callers that arrive meanwhile wait, and
the next leader takes them all. A row that loses its seq (the other node
won it) is read, each leg is looked for in it too, and the rest go to the
seq after it, as a whole.

Why that is the protocol and not only a way to batch: a leg is appended
at seq s only by a writer that saw every row from its claim to s - 1
without it, and rows never change; so every writer that appends it does
so at the same s, and only one wins s. A debit that would take the running
balance below zero is carried as ``declined``: the row, which never
changes, decides for every process that the transfer failed.

A row another process wrote is acted on (a leg found in it settled, a row
appended after it) only once it is confirmed, as the same write
(timpe.store.races): a get may show a write that its primary loses before
any replica has it, and the new primary may take another row at its seq;
a leg settled by a row that then vanishes, or a row whose balance starts
from one, would move money that no row records.

The rows kept here are an optimisation, never a rule: any process finds
the same rows by key. A kept head, however old, is a row of the store
the process writes to (every insert carries the store's token, which a
store made again refuses: timpe.store.identity), and rows never change:
where another process has appended since, the insert after it loses and
the rows after it are read.
"""
import collections
import contextlib
import functools
import threading
import time

from timpe.concurrently import aside
from timpe.errors import RowsLost, StoreUnavailable
from timpe.ledger import (HINT_STRIDE, MAX_LEGS, MAX_WINDOW, Ledger, Move, leg_of, move,
                          next_row, same_write)
from timpe.store.batching import Turn, cooperative_yield
from timpe.store.races import confirmed, insert_or_read
from timpe.store.schema import USER_TRANSACTIONS
from timpe.users.known import SIZE as KNOWN_USERS, KnownUsers

#: Rows of one user kept, the newest: where the legs of transfers under way
#: are looked for (their claims are a few rows below the head).
TAIL = 256
#: Users whose rows are kept (the least recently used goes first): as
#: many as timpe.users.known keeps.
USERS = KNOWN_USERS
#: Seconds after a row of a user lost its seq during which the seqs after
#: the user's kept head are looked up before a row goes after it.
LOST_LATELY = 1.0
#: Keys a look-up for a leg's rows asks at once.
LOOKUP = 200
#: Seqs read after a row lost to the other node (it may have written more)
#: in the first look-up; twice as many in each look-up after one that
#: found them all taken (a head kept long ago that the other node has
#: moved far on from), up to timpe.ledger's MAX_WINDOW.
LOOK_AHEAD = 2


class Job:
    """One leg waiting to be carried (``move``, a timpe.ledger.Move); its
    outcome: (row, leg) or an error."""

    __slots__ = ("txn_id", "move", "since", "checked", "outcome")

    def __init__(self, txn_id, amount, since, kind=None, held=0):
        self.txn_id, self.since = txn_id, since
        self.move = move(txn_id, amount) if kind is None else Move(txn_id, kind, amount, held)
        self.checked = since - 1  # rows up to this seq do not carry it
        self.outcome = None


class _User:
    __slots__ = ("queue", "turn", "rows", "head", "generation", "lost_at")

    def __init__(self):
        self.queue = collections.deque()
        self.turn = Turn()  # the leader's; its followers wait for it to end
        self.rows = {}  # seq -> row, the newest TAIL
        self.head = None
        self.generation = 0  # KnownUsers.generation when these were kept
        self.lost_at = -LOST_LATELY  # when a row of this user last lost its seq


class Appender:
    """One per process, made after gevent's patching (waiting then yields)."""

    def __init__(self, store, known=None):
        self.store = store
        self.known = KnownUsers() if known is None else known
        self._users = collections.OrderedDict()
        self._let_others_run = cooperative_yield()
        self._driven = {}  # transaction id -> [its lock, callers]

    @contextlib.contextmanager
    def alone(self, txn_id):
        """Hold ``txn_id`` against the other callers of this process: two
        /process calls (or one and a recovery pass) that pick the same
        transfer take it in turns, the second from where the first left it.
        Side by side their writes of the same row would share one bulk
        request, where CrateDB fails the second without saying it lost."""
        entry = self._driven.setdefault(txn_id, [threading.Lock(), 0])
        entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if not entry[1]:
                del self._driven[txn_id]

    def append(self, user_id, txn_id, amount, since, patience=None, give_up=None,
               kind=None, held=0):
        """Carry the leg of ``txn_id`` (``amount`` signed: a debit is
        negative) in the first row of ``user_id``'s ledger from seq ``since``
        on that carries it, appending one where none does. Return (row, leg);
        ``leg.kind`` is ``declined`` for a debit that did not fit. ``kind``
        and ``held``: a leg of a hold (timpe.ledger.Move), else a debit or
        credit.

        A caller still waiting for the leader after ``patience`` seconds
        asks ``give_up()`` and, if it says so, raises StoreUnavailable."""
        user = self._user(user_id)
        job = Job(txn_id, amount, since, kind, held)
        user.queue.append(job)
        while job.outcome is None:
            if user.turn.take():
                try:
                    if job.outcome is None:
                        self._lead(user_id, user)
                finally:
                    user.turn.end()
            elif not user.turn.wait(patience) and give_up is not None and give_up():
                if job.outcome is None and job in user.queue:
                    user.queue.remove(job)
                    raise StoreUnavailable(
                        f"store unavailable: the legs ahead of this one for user "
                        f"{user_id} were not written within {patience:g} s")
        if isinstance(job.outcome, BaseException):
            raise job.outcome
        return job.outcome

    def kept_head(self, user_id):
        """The newest row of ``user_id`` the process keeps, else None: a row
        that exists, near the head, with no round trip."""
        return self._kept(user_id, self._users.get(user_id))

    def _kept(self, user_id, user):
        """The newest row of ``user_id`` that this appender (``user``, if
        any) or a request of this process saw, or None."""
        kept = self.known.head(user_id)
        if user is not None:
            self._current(user_id, user)
            if user.head is not None and (kept is None or kept["seq"] <= user.head["seq"]):
                return user.head
        return kept

    def append_many(self, user_id, legs):
        """Carry ``legs`` ([(transaction id, signed amount, since[, kind,
        held])]) of one user as one leader would, at once, waiting for no one; return each
        one's (row, leg)."""
        user = self._user(user_id)
        jobs = [Job(*leg) for leg in legs]
        with user.turn.held():
            self._carry(user_id, user, list(jobs))
        return [job.outcome for job in jobs]

    def _user(self, user_id):
        users = self._users
        user = users.get(user_id)
        if user is None:
            user = users[user_id] = _User()
            user.generation = self.known.generation(user_id)
            if len(users) > USERS:
                oldest, kept = next(iter(users.items()))
                if not kept.queue and not kept.turn.taken():
                    del users[oldest]
        else:
            users.move_to_end(user_id)
            self._current(user_id, user)
        return user

    def _current(self, user_id, user):
        """Drop the rows kept of a user the process has seen registered
        again (a store destroyed and filled under it, timpe.users.known)."""
        generation = self.known.generation(user_id)
        if generation != user.generation:
            user.rows.clear()
            user.head, user.generation = None, generation

    def _lead(self, user_id, user):
        if self._let_others_run is not None:
            self._let_others_run()  # callers with a leg for this user queue it
        jobs = [user.queue.popleft() for _ in range(len(user.queue))]
        try:
            self._carry(user_id, user, jobs)
        except BaseException as exc:
            for job in jobs:
                if job.outcome is None:
                    job.outcome = exc
            if not isinstance(exc, Exception):
                raise
        finally:
            for job in jobs:
                if job.outcome is None:  # cut short (a gevent timeout)
                    job.outcome = StoreUnavailable("store unavailable: leg interrupted")

    def _carry(self, user_id, user, jobs):
        head, checked = self._head(user_id, user)
        if any(job.since > head["seq"] + 1 for job in jobs):
            head, checked = self._head(user_id, user, proven=True)  # the other node wrote on
        # A user whose row this process lost lately is one the other node
        # writes to as well: a look-up of the seqs after the kept head costs
        # less than the next insert lost, and its read of the winner.
        checked = checked or time.monotonic() - user.lost_at > LOST_LATELY
        while True:
            if not checked:
                head = self._read_ahead(user_id, user, head["seq"] + 1) or head
            jobs, unconfirmed = self._look(user_id, user, jobs, head)
            if not jobs:
                return
            if any(job.since > head["seq"] + 1 for job in jobs):
                raise RowsLost(f"store lost rows: ledger of {user_id} lost rows, a claim "
                               f"is past its head {head['seq']}")
            # Two requests of this process may carry the same transfer (two
            # /process calls, a recovery pass): its leg goes in once.
            moves = {}
            for job in jobs:
                moves.setdefault(job.txn_id, job.move)
            # The rows that showed the legs not carried, as the same
            # writes the store keeps: a row a dying primary showed may sit
            # below a head read from the new one, whose row at that seq
            # carries a leg.
            for below in unconfirmed:
                self._durable(user_id, user, below)
            head = self._durable(user_id, user, head)
            row, _ = next_row(head, list(moves.values())[:MAX_LEGS])
            if self.store.insert(USER_TRANSACTIONS.name, row):
                head = self._keep(user, row)
                if not row["seq"] % HINT_STRIDE:
                    # Off the legs' path: the callers waiting for this user
                    # and for this row need no hint pushed first.
                    aside(functools.partial(Ledger(self.store, self.known).advance_hint,
                                            user_id, row["seq"]))
            else:
                user.lost_at = time.monotonic()
                head = self._after_loss(user_id, user, row)
            checked = True

    def _after_loss(self, user_id, user, row):
        """The other node won ``row``'s seq: read that row and the ones after
        it (a user both nodes write to has often moved on by more than one
        row); return the newest of them, the head to go on from."""
        newest = self._read_ahead(user_id, user, row["seq"])
        if newest is None:  # the winner is still in flight: as races reads it
            inserted, stored = insert_or_read(self.store, USER_TRANSACTIONS.name, row)
            return self._keep(user, stored)
        return newest

    def _read_ahead(self, user_id, user, seq):
        """The newest row from ``seq`` on, read in look-ups of LOOK_AHEAD
        seqs, then twice as many, while they are all taken; None when there
        is no row at ``seq``."""
        newest, window = None, LOOK_AHEAD
        while True:
            found = {r["seq"]: r for r in self.store.get_many(
                USER_TRANSACTIONS.name, [(user_id, seq + i) for i in range(window)])}
            start = seq
            while seq in found:
                newest = self._keep(user, found[seq])
                seq += 1
            if seq < start + window:
                return newest
            window = min(2 * window, MAX_WINDOW)

    def _look(self, user_id, user, jobs, head):
        """Settle each job whose leg a row up to ``head`` carries; return the
        others, and the rows below ``head`` that showed them not carried and
        that another process wrote (unconfirmed)."""
        rows = user.rows
        missing = sorted({s for job in jobs for s in range(job.checked + 1, head["seq"] + 1)
                          if s not in rows})
        if missing:  # below the rows kept (a transfer resumed late)
            rows = dict(rows)
            for start in range(0, len(missing), LOOKUP):
                keys = [(user_id, s) for s in missing[start:start + LOOKUP]]
                rows.update((r["seq"], r) for r in self.store.get_many(USER_TRANSACTIONS.name, keys))
            gone = [s for s in missing if s not in rows]
            if gone:
                raise RowsLost(f"store lost rows: ledger of {user_id} lost row {gone[0]} "
                               "below its head")
        left, lowest = [], head["seq"]
        for job in jobs:
            for seq in range(job.checked + 1, head["seq"] + 1):
                leg = leg_of(rows[seq], job.txn_id)
                if leg is not None:
                    job.outcome = (self._durable(user_id, user, rows[seq]), leg)
                    break
            else:
                lowest = min(lowest, job.checked)
                job.checked = head["seq"]
                left.append(job)
        # As kept now: a row confirmed for a leg found in it is not again.
        below = (user.rows.get(seq, rows[seq]) for seq in range(lowest + 1, head["seq"]))
        return left, [row for row in below if row.get("_version") is not None]

    def _head(self, user_id, user, proven=False):
        """(the head, whether it was read just now): the head kept (unless
        ``proven`` is asked for), else the head proven by key. A proof that
        finds the kept row gone (a write its primary never replicated)
        makes the process forget the user, and this its rows."""
        kept = None if proven else self._kept(user_id, user)
        if kept is not None:
            return (kept if kept is user.head else self._keep(user, kept)), False
        head = Ledger(self.store, self.known).head(user_id)
        self._current(user_id, user)
        return self._keep(user, head), True

    def _durable(self, user_id, user, row):
        """``row`` once it is sure to be kept: as it is when this process
        wrote it (no ``_version``: its insert was acknowledged) or when it
        is row 0 (the users row's deposit, which whoever finds it missing
        writes again, the same), else confirmed, and kept so.

        A row that vanished, or that another write replaced under its key
        (the cluster's new primary never had it, and took another node's
        row at that seq), decided nothing: not the legs looked for in it,
        nor those looked for in the rows read with it, which may be gone
        too. The process forgets what it kept of the user and raises; the
        next attempt reads the ledger as the store keeps it."""
        if row.get("_version") is None or row["seq"] == 0:
            return row
        kept = confirmed(self.store, USER_TRANSACTIONS.name, row,
                         functools.partial(same_write, row))
        if kept is None:
            self.known.forget(user_id)
            self._current(user_id, user)
            raise RowsLost(f"store lost rows: ledger of {user_id} lost row {row['seq']}, "
                           "a write its primary never replicated")
        user.rows[row["seq"]] = kept
        if user.head is not None and user.head["seq"] == row["seq"]:
            user.head = kept
        return kept

    def _keep(self, user, row):
        """Keep ``row``, read or written; return the head kept."""
        held = user.rows.get(row["seq"])
        if held is not None and held.get("_version") is None:
            row = held  # the same row (rows never change), already durable
        user.rows[row["seq"]] = row
        if user.head is None or row["seq"] >= user.head["seq"]:
            user.head = row
            self.known.keep_head(row)
            # The rows kept first go first: mostly the lowest seqs, and a
            # row dropped too soon is read again if ever needed.
            rows = user.rows
            while len(rows) > TAIL:
                seq = next(iter(rows))
                oldest = rows.pop(seq)
                if seq == user.head["seq"]:
                    rows[seq] = oldest  # the head stays, now the last kept
        return user.head
