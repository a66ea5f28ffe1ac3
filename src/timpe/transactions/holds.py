"""Holds: reserve now, post or void later (or let the hold expire).

A hold is a transfer whose first leg, on the sender's ledger, moves the
amount from the balance to the running ``held`` total beside it
(timpe.ledger: HOLD); it rests ``held`` there. Its outcome is decided
once, for every process, by one compare-and-set of the transaction row
from ``held``:

* post: to ``posting``, with the amount posted and the claims of its two
  legs: the sender's (POST: the hold leaves ``held``, what was not posted
  returns to the balance) and the recipient's credit of what was;
* void (a client's, or expiry's): to ``voiding``, with the claim of the
  sender's VOID leg (the hold returns to the balance).

Whoever loses the compare-and-set reads the winner's decision: a post
that meets a void (or a void a post) is refused with 409; a retry of the
decision that won answers what it answered. The legs of a decided hold
are carried like any transfer's (timpe.transactions.protocol), so a node
killed at any step leaves them to whoever resumes it.

The second leg's claim comes after the row that carries the hold leg
(``debit_seq`` names that row once the hold is ``held``): looked for from
there, the hold leg itself is never taken for it.
"""
from collections import namedtuple

from timpe.errors import BadRequest, Conflict
from timpe.ledger import now_ms
from timpe.money import to_api
from timpe.transactions.protocol import (
    COMMITTED, FINISHED, HELD, INITIAL, IN_PROGRESS, POSTING, VOIDED, VOIDING, is_hold,
)

#: Seconds a hold lasts when the request names none, and the most it may
#: name (settings ``holds.expires_in`` and ``holds.max_expires_in``, which
#: may lower the maximum, not raise it: the OpenAPI document states it).
EXPIRES_IN = 3600
MAX_EXPIRES_IN = 7 * 24 * 3600
#: Why a hold voided without a client's request.
EXPIRED = "expired"

#: Reads and compare-and-sets a decision may take: a row read afresh, a
#: compare-and-set won or lost, and the outcome it then reads.
DECISION_ROUNDS = 5

Expiry = namedtuple("Expiry", "default maximum")


def expiry_from_settings(settings):
    expiry = Expiry(int(settings.get("holds.expires_in", EXPIRES_IN)),
                    int(settings.get("holds.max_expires_in", MAX_EXPIRES_IN)))
    if not 1 <= expiry.default <= expiry.maximum <= MAX_EXPIRES_IN:
        raise ValueError("holds.expires_in must be between 1 and holds.max_expires_in, "
                         f"which is at most {MAX_EXPIRES_IN}")
    return expiry


def expires_at(expiry, expires_in):
    """When a hold made now expires (ms); BadRequest past the maximum."""
    seconds = expiry.default if expires_in is None else expires_in
    if seconds > expiry.maximum:
        raise BadRequest(f"'expires_in' must be at most {expiry.maximum} seconds")
    return now_ms() + seconds * 1000


def expired(txn, now=None):
    return (now or now_ms()) >= txn["expires"]


def _after(ledger, user_id, seq=-1):
    """A claim for a leg of ``user_id``: after the newest row seen, and
    after ``seq``."""
    return max(ledger.recent(user_id)["seq"], seq) + 1


def post_changes(ledger, txn, posted):
    return {"state": POSTING, "posted": posted,
            "release_seq": _after(ledger, txn["sender"], txn["debit_seq"]),
            "credit_seq": _after(ledger, txn["recipient"])}


def void_changes(ledger, txn, reason=None):
    changes = {"state": VOIDING, "release_seq": _after(ledger, txn["sender"], txn["debit_seq"])}
    if reason is not None:
        changes["reason"] = reason
    return changes


class Decision:
    """Drive one transaction to the outcome a client asks for, against
    every other process that may decide it at once.

    ``processor``: a timpe.transactions.protocol.Processor; ``ledger``: the
    request's (claims start from the rows it saw).
    """

    def __init__(self, processor, ledger):
        self.processor, self.ledger = processor, ledger

    def post(self, txn, amount=None):
        """Post ``amount`` (the whole hold when None) of the hold ``txn``;
        return it finished. Conflict when it was voided, expired or posted
        with another amount."""
        if not is_hold(txn):
            raise Conflict(f"transaction {txn['id']!r} is not a hold")
        posted = txn["amount"] if amount is None else amount
        if posted > txn["amount"]:
            raise BadRequest(f"'amount' must be at most the amount held, "
                             f"{to_api(txn['amount'])}")
        for _ in range(DECISION_ROUNDS):
            txn = self._settled(txn)
            if txn["state"] == HELD:
                if expired(txn):
                    raise Conflict(f"the hold {txn['id']!r} expired: nothing was posted")
                txn = self.processor.decide(txn, **post_changes(self.ledger, txn, posted))
                continue
            if txn["state"] in (POSTING, FINISHED) and txn["posted"] == posted:
                return self.processor.run(txn)
            if txn["state"] in (POSTING, FINISHED):
                raise Conflict(f"the hold {txn['id']!r} was posted with the amount "
                               f"{to_api(txn['posted'])}")
            raise Conflict(f"the hold {txn['id']!r} is {txn['state']}: it cannot be posted")
        raise Conflict(f"the hold {txn['id']!r} is being decided by another request")

    def void(self, txn, reason=None):
        """Void the hold ``txn``, or cancel the transfer ``txn`` while it is
        initial; return it voided. Conflict once it was posted, or once a
        transfer has left ``initial``. ``reason``: why, when not asked by
        a client (expiry)."""
        for _ in range(DECISION_ROUNDS):
            if txn["state"] == INITIAL:  # nothing moved yet, nor will
                txn = self.processor.decide(txn, state=VOIDED)
                continue
            txn = self._settled(txn)
            if txn["state"] == HELD:
                txn = self.processor.decide(txn, **void_changes(self.ledger, txn, reason))
                continue
            if txn["state"] in (VOIDING, VOIDED):
                return self.processor.run(txn)
            raise Conflict(f"transaction {txn['id']!r} is {txn['state']}: it can no "
                           "longer be voided")
        raise Conflict(f"transaction {txn['id']!r} is being decided by another request")

    def _settled(self, txn):
        """A hold still carrying its own leg is driven to ``held`` (or
        failed) first: nothing is decided before the amount is reserved."""
        if is_hold(txn) and txn["state"] in (IN_PROGRESS, COMMITTED):
            return self.processor.run(txn)
        return txn
