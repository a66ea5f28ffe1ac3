"""Phase 2 of the multi-phase commit (MPC): drive one transaction to the end.

    initial --claim both seqs--> in progress --debit row--> (committed)
            --credit row--> finished          (or --> failed, funds missing)

Every transition but the last is a compare-and-set of the transaction row;
every movement of money is an insert-if-absent of a ledger row at a seq the
transaction row claimed *before* the insert. So any process may resume any
transaction at any step, also while another one works on it:

* a stale process fails its compare-and-set, re-reads and carries on from
  wherever the transaction is now;
* a leg's ledger row is found by primary key (user, claimed seq), never by a
  scan: present with our id -> the leg is done; present with another id ->
  that seq went to someone else, claim the new head; absent -> write it.
* a debit's claim moves only after its seq was seen taken by another
  transaction, and a taken seq stays taken, so a debit can only ever be
  written at its last claim: it is applied at most once. A credit, which
  cannot fail, is not claimed again: it goes to the first seq from its
  claim on that no other transaction holds, which every process finds by
  walking the same rows, so it too is applied at most once.

A debit is written at seq s only when row s-1 (immutable) holds enough, and
seq s can be won by one writer only: no balance ever goes below zero.

Both legs are claimed at once (an immediate transfer in its phase 1 insert),
so a transfer goes from its debit row to its credit row; ``committed`` marks
a credit claimed again after its first seq was taken. Once its credit row is
written, every process that looks at the transfer can only finish it: so the
last step is a plain update, which needs no version. A process that wrote
the row knows no version of it (stores do not return one): when it needs
one, off the usual path, it reads the row first.
"""
from collections import namedtuple

from timpe.ledger import Ledger, now_ms
from timpe.store.races import read_newer
from timpe.store.schema import TRANSACTIONS

INITIAL = "initial"
IN_PROGRESS = "in progress"
COMMITTED = "committed"
FINISHED = "finished"
FAILED = "failed"
STATES = (INITIAL, IN_PROGRESS, COMMITTED, FINISHED, FAILED)
PENDING = (INITIAL, IN_PROGRESS, COMMITTED)
TERMINAL = (FINISHED, FAILED)

INSUFFICIENT_FUNDS = "insufficient funds"

Leg = namedtuple("Leg", "kind party seq_field sign state")
DEBIT = Leg("debit", "sender", "debit_seq", -1, IN_PROGRESS)
CREDIT = Leg("credit", "recipient", "credit_seq", +1, COMMITTED)

#: Steps one call may take before leaving the rest to a later /process.
MAX_STEPS = 1000


def claim(leg, head):
    """The fields that claim the seq after ``head`` for ``leg``."""
    return {"state": leg.state, leg.seq_field: head["seq"] + 1}


def claim_both(sender_head, recipient_head):
    """The fields of a transfer inserted with both legs claimed.

    An immediate transfer is recorded ``in progress`` with its debit and its
    credit seq claimed: it skips ``initial`` and ``committed``, two writes
    fewer, and each leg is still written only at a seq claimed before.
    """
    return {**claim(DEBIT, sender_head), CREDIT.seq_field: recipient_head["seq"] + 1}


class Processor:
    def __init__(self, store, ledger=None, written=None, ended=None):
        """``written(user_id)`` is told of each user whose leg is written;
        ``ended(txn)`` of each transaction this processor moved to a final
        state (two that finish one at the same moment are both told)."""
        self.store = store
        self.ledger = ledger or Ledger(store)
        self.written = written or (lambda user_id: None)
        self.ended = ended or (lambda txn: None)

    def run(self, txn):
        """Advance ``txn`` until it is finished or failed; return it."""
        for _ in range(MAX_STEPS):
            if txn["state"] in TERMINAL:
                break
            txn = self.step(txn)
        return txn

    def step(self, txn):
        state = txn["state"]
        if state == INITIAL:
            return self._claim(txn, DEBIT)
        if state == IN_PROGRESS:
            return self._write_leg(txn, DEBIT)
        if state == COMMITTED:
            return self._write_leg(txn, CREDIT)
        return txn

    def _claim(self, txn, leg, fresh=False):
        """Record, before writing, the seq at which ``leg`` will be written:
        from ``initial``, both legs' seqs, from the heads of both parties
        found in one look-up.

        A recent row (one phase 1 saw) saves proving the credit's head: if
        it is stale, the claimed seq turns out taken and the claim is made
        again from a ``fresh`` (proven) head. Refusing for want of funds is
        only ever decided on a proven head.
        """
        if txn["state"] == INITIAL:
            heads = self.ledger.heads({txn["sender"]: None, txn["recipient"]: None})
            head = heads[txn["sender"]]
            changes = claim_both(head, heads[txn["recipient"]])
        else:
            party = txn[leg.party]
            head = self.ledger.head(party) if fresh else self.ledger.recent(party)
            changes = claim(leg, head)
        if leg is DEBIT and head["balance"] < txn["amount"]:
            return self._update(txn, state=FAILED, reason=INSUFFICIENT_FUNDS)
        return self._update(txn, **changes)

    def _write_leg(self, txn, leg):
        user_id, seq = txn[leg.party], txn[leg.seq_field]
        previous = self.ledger.seen(user_id)
        if previous is not None and previous["seq"] == seq - 1:
            # Claimed from the head this request holds: the row is most
            # likely absent, so go straight to the insert, which says if not.
            row = None
        else:
            previous, row = None, self.ledger.row(user_id, seq)
        if row is None:
            previous = previous or self.ledger.row(user_id, seq - 1)
            amount = leg.sign * txn["amount"]
            if previous["balance"] + amount < 0:
                return self._update(txn, state=FAILED, reason=INSUFFICIENT_FUNDS)
            row = self.ledger.append(previous, txn["id"], leg.kind, amount)
        if row["transaction_id"] == txn["id"]:
            return self._leg_done(txn, leg)
        if leg is CREDIT:
            return self._credit_after(txn, row)
        return self._claim(txn, leg, fresh=True)  # seq taken by another transaction

    def _credit_after(self, txn, taken):
        """The credit's seq is ``taken`` by another transaction. A credit
        cannot fail, so it goes to the first seq after that no other
        transaction holds, with no new claim: every process that writes it
        walks the same rows from the claim, so it finds the credit wherever
        one of them wrote it (rows never change), and writes it only where
        none did."""
        while True:
            row = self.ledger.walk(taken, txn["id"])
            if row["transaction_id"] != txn["id"]:  # the head: write after it
                row = self.ledger.append(row, txn["id"], CREDIT.kind, txn["amount"])
            if row["transaction_id"] == txn["id"]:
                return self._leg_done(txn, CREDIT)
            taken = row

    def _leg_done(self, txn, leg):
        self.written(txn[leg.party])
        if leg is CREDIT:
            return self._finish(txn)
        if txn[CREDIT.seq_field] is not None:  # claimed with the debit: write it
            return self._write_leg(txn, CREDIT)
        return self._claim(txn, CREDIT)

    def _finish(self, txn):
        """Both legs are written: whoever else looks at ``txn`` now can only
        finish it too, so no compare-and-set is needed."""
        changes = {"state": FINISHED, "updated": now_ms()}
        if not self.store.update(TRANSACTIONS.name, (txn["id"],), changes):
            raise LookupError(f"transaction {txn['id']} is gone from the store")
        txn = {**txn, **changes, "_version": None}
        self.ended(txn)
        return txn

    def _update(self, txn, **changes):
        """Compare-and-set ``txn``; on a lost race return its current row.

        Without a version (this process wrote the row since it read it)
        the row is read first, and the step is taken again from it.
        """
        key, version = (txn["id"],), txn["_version"]
        if version is None:
            return self.store.get(TRANSACTIONS.name, key)
        changes["updated"] = now_ms()
        if self.store.cas(TRANSACTIONS.name, key, version, changes):
            txn = {**txn, **changes, "_version": None}
            if txn["state"] == FAILED:
                self.ended(txn)
            return txn
        return read_newer(self.store, TRANSACTIONS.name, key, version)
