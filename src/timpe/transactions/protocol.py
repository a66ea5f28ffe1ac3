"""Phase 2 of the multi-phase commit (MPC): drive one transaction to the end.

    initial --claim both legs--> in progress --debit leg--> --credit leg--> finished
                                      |  (debit declined)
                                      +--> failed

A claim names, for each leg, the seq of its user's ledger from which the
leg is looked for: the first row from there on that carries it is the one
(timpe.transactions.appender). Claims are made while the transfer is
``initial``, when no process can have written a leg of it, by one
compare-and-set to ``in progress`` (an immediate transfer is inserted with
them). From then on:

* the debit is carried by a row of the sender's ledger: as a debit, or as
  ``declined`` when it did not fit; the row never changes, so every
  process that looks decides the same: the transfer fails, or its credit
  is carried by a row of the recipient's ledger;
* a leg is appended only after every row from its claim was seen without
  it, so two processes appending it race for the same seq, and one loses:
  each leg is carried once;
* the last step writes what the rows decided (``finished`` or ``failed``),
  which every process would write: a plain update, no compare-and-set.

A debit goes in a row only when the running balance holds it, and each seq
is won by one writer: no balance ever goes below zero. ``committed`` (the
seed's state between the legs) is no longer written: a transfer goes from
its debit to its credit in one step, and a row of an earlier version in
that state is resumed like ``in progress``.

A hold (timpe.transactions.holds) takes the same path with other legs:

    in progress --hold leg--> held --(compare-and-set)--> posting --post leg--> --credit--> finished
                     |                                +-> voiding --void leg--> voided
                     +--> failed (hold declined)

The compare-and-set from ``held`` decides, once for every process, which
outcome the hold has, and records the claims of its legs; from there every
process carries the same legs, as above. ``held`` is the one state a
process leaves a transfer in without driving it on: a client, or expiry,
decides what comes next.
"""
from timpe.errors import RowsLost
from timpe.ledger import CREDIT, DECLINED, HOLD, POST, VOID, Ledger, now_ms
from timpe.store.races import read_newer
from timpe.store.schema import TRANSACTIONS
from timpe.transactions.appender import Appender

INITIAL = "initial"
IN_PROGRESS = "in progress"
COMMITTED = "committed"
FINISHED = "finished"
FAILED = "failed"
#: A hold's: its amount reserved, then decided (posting, voiding), voided.
HELD = "held"
POSTING = "posting"
VOIDING = "voiding"
VOIDED = "voided"
STATES = (INITIAL, IN_PROGRESS, COMMITTED, HELD, POSTING, VOIDING, FINISHED, FAILED, VOIDED)
PENDING = (INITIAL, IN_PROGRESS, COMMITTED, POSTING, VOIDING)
TERMINAL = (FINISHED, FAILED, VOIDED)
#: Where a processor stops: a held transfer waits for its post or void.
RESTING = (*TERMINAL, HELD)
#: The states in which a leg may be written.
PHASE2 = (IN_PROGRESS, COMMITTED, POSTING, VOIDING)

INSUFFICIENT_FUNDS = "insufficient funds"

#: Lost compare-and-sets one call may meet before it leaves the rest to a
#: later /process (each means another process moved the transfer on).
MAX_STEPS = 1000


def is_hold(txn):
    return txn.get("expires") is not None


def claims(sender_head, recipient_head):
    """The fields that record a transfer ``in progress`` with both legs
    claimed from the rows after those heads (rows that exist: a claim may
    lag the head, never pass it)."""
    return {"state": IN_PROGRESS, "debit_seq": sender_head["seq"] + 1,
            "credit_seq": recipient_head["seq"] + 1}


class Processor:
    def __init__(self, store, ledger=None, appender=None, ended=None, patience=None,
                 give_up=None):
        """``appender``: the process's (timpe.transactions.appender);
        ``ended(txn)`` is told of each transaction this processor moved to a
        final state (two that end one at the same moment are both told);
        ``patience`` and ``give_up``: how long a leg waits for the ones
        ahead of it (Appender.append)."""
        self.store = store
        self.ledger = ledger or Ledger(store)
        self.appender = appender or Appender(store, self.ledger.known)
        self.ended = ended or (lambda txn: None)
        self.patience, self.give_up = patience, give_up
        self._confirmed = set()  # (id, state) of transfers whose claims were confirmed

    def run(self, txn):
        """Advance ``txn`` until it is finished, failed, voided or held, or
        MAX_STEPS races were lost; return it as it then is (still pending in
        the last case: a later /process ends it)."""
        for _ in range(MAX_STEPS):
            if txn["state"] in RESTING:
                break
            txn = self.step(txn)
        return txn

    def step(self, txn):
        """Take one step of ``txn``: claim its legs, carry its debit, or
        carry its credit and end it. Return it as it then is (``_debited``:
        this processor saw its debit carried)."""
        state = txn["state"]
        if state == INITIAL:
            return self._claim(txn)
        if state not in PHASE2:
            return txn
        if txn["_version"] is not None and (txn["id"], state) not in self._confirmed:
            # Claims another process wrote, as read: made durable before a
            # leg is carried from them. A claim that a dying primary showed
            # and lost would put the transfer back where it was, to be
            # claimed again from other seqs, and a leg carried twice.
            # Claims never move within a state: once per state will do.
            txn = self._update(txn)
            if txn["_version"] is None:  # applied: the row as read is kept
                self._confirmed.add((txn["id"], state))
            return txn
        if state == POSTING:
            return self._post(txn)
        if state == VOIDING:
            return self._void(txn)
        if is_hold(txn):
            return self._hold(txn)
        if not txn.get("_debited"):
            debit = self._carry(txn, txn["sender"], -txn["amount"], txn["debit_seq"])
            if debit.kind == DECLINED:
                return self._end(txn, FAILED, INSUFFICIENT_FUNDS)
            return {**txn, "_debited": True}
        self._carry(txn, txn["recipient"], txn["amount"], txn["credit_seq"])
        return self._end(txn, FINISHED)

    def _hold(self, txn):
        """Carry the hold's leg: reserved, or failed for want of funds. The
        row that carries it is recorded (``debit_seq``), so that the claim
        of the hold's second leg comes after it. A compare-and-set, as a
        held transfer may be decided already."""
        row, leg = self._carry_leg(txn, txn["sender"], -txn["amount"], txn["debit_seq"],
                                   HOLD, txn["amount"])
        if leg.kind == DECLINED:
            return self._end(txn, FAILED, INSUFFICIENT_FUNDS)
        return self._update(txn, state=HELD, debit_seq=row["seq"])

    def _post(self, txn):
        """The sender's leg (what was not posted comes back), then the
        recipient's credit of what was."""
        if not txn.get("_settled"):
            self._carry_leg(txn, txn["sender"], txn["amount"] - txn["posted"],
                            txn["release_seq"], POST, -txn["amount"])
            return {**txn, "_settled": True}
        self._carry_leg(txn, txn["recipient"], txn["posted"], txn["credit_seq"], CREDIT)
        return self._end(txn, FINISHED)

    def _void(self, txn):
        self._carry_leg(txn, txn["sender"], txn["amount"], txn["release_seq"], VOID,
                        -txn["amount"])
        return self._end(txn, VOIDED)

    def decide(self, txn, **changes):
        """Compare-and-set ``txn`` (a decision on a held or initial
        transfer); return it as it is then: changed, or as another process
        changed it first."""
        return self._update(txn, **changes)

    def _claim(self, txn):
        """Claim both legs from the heads; or fail the transfer for want of
        funds, decided on the proven head (no leg of an ``initial`` transfer
        can have been written)."""
        heads = claimable(self.appender, self.ledger, txn["sender"], txn["recipient"],
                          txn["amount"])
        head = heads[txn["sender"]]
        if head["balance"] < txn["amount"]:
            return self._update(txn, state=FAILED, reason=INSUFFICIENT_FUNDS)
        return self._update(txn, **claims(head, heads[txn["recipient"]]))

    def _carry(self, txn, user_id, amount, since):
        if since is None:  # unclaimed (an earlier version's credit): not written
            since = self.ledger.recent(user_id)["seq"] + 1
        return self.appender.append(user_id, txn["id"], amount, since,
                                    self.patience, self.give_up)[1]

    def _carry_leg(self, txn, user_id, amount, since, kind, held=0):
        """A leg of a hold (timpe.ledger.Move); return (row, leg)."""
        return self.appender.append(user_id, txn["id"], amount, since, self.patience,
                                    self.give_up, kind, held)

    def _end(self, txn, state, reason=None):
        """The rows decided: whoever else looks at ``txn`` can only write
        the same, so no compare-and-set is needed."""
        changes = {"state": state, "updated": now_ms()}
        if reason is not None:
            changes["reason"] = reason
        if not self.store.update(TRANSACTIONS.name, (txn["id"],), changes):
            stored(txn, None)
        txn = {**txn, **changes, "_version": None}
        txn.pop("_debited", None)
        txn.pop("_settled", None)
        self.ended(txn)
        return txn

    def _update(self, txn, **changes):
        """Compare-and-set ``txn``; on a lost race return its current row.

        Without a version (this process wrote the row since it read it)
        the row is read first, and the step is taken again from it.
        """
        key, version = (txn["id"],), txn["_version"]
        if version is None:
            return stored(txn, self.store.get(TRANSACTIONS.name, key))
        changes["updated"] = now_ms()
        if self.store.cas(TRANSACTIONS.name, key, version, changes):
            txn = {**txn, **changes, "_version": None}
            if txn["state"] in (FAILED, VOIDED):
                self.ended(txn)
            return txn
        return stored(txn, read_newer(self.store, TRANSACTIONS.name, key, version))


def claimable(appender, ledger, sender, recipient, amount, users=None):
    """{id: head} to claim a transfer's legs from: each user's head the
    process keeps (a claim only says where a leg is looked for from, and a
    head that has moved on since costs the look a row or two), else
    proven, the users that need it in one look-up. The sender's is proven
    where the one kept does not cover ``amount``: refusing for want of
    funds is decided on proven heads only. ``users``: {id: users row} at
    hand."""
    users = users or {}
    heads = {uid: appender.kept_head(uid) for uid in (sender, recipient)}
    need = {uid: users.get(uid) for uid, head in heads.items() if head is None}
    if heads[sender] is not None and heads[sender]["balance"] < amount:
        need[sender] = users.get(sender)
    if need:
        heads.update(ledger.heads(need))
    return heads


def stored(txn, row):
    """``row``, read as ``txn`` is stored now; None means it is gone (a
    store destroyed under the node): the transfer cannot go on from here."""
    if row is None:
        raise RowsLost(f"store lost rows: transaction {txn['id']} is gone from the store")
    return row
