import uuid

from zope.interface import implementer

from timpe.errors import BadRequest, InsufficientFunds, NotFound
from timpe.ledger import now_ms
from timpe.money import to_api
from timpe.store.schema import TRANSACTIONS
from timpe.transactions.interfaces import ITransactionService
from timpe.transactions.protocol import (
    FAILED, INITIAL, INSUFFICIENT_FUNDS, PENDING, STATES, Processor,
)
from timpe.users.services import UserService

#: Bounds of the ``limit`` of a listing or a /process call.
MAX_LIMIT = 100_000
DEFAULT_LIMIT = 100


@implementer(ITransactionService)
class TransactionService:
    def __init__(self, store):
        self.store = store
        self.users = UserService(store)
        self.processor = Processor(store)

    def create(self, sender, recipient, amount):
        if sender == recipient:
            raise BadRequest("'sender' and 'recipient' must differ")
        payer = self.users.get(sender)
        self.users.get(recipient)
        # Advisory only (the debit re-checks at its seq): refuse what cannot
        # succeed now instead of recording a transfer bound to fail.
        if self.users.balance(payer) < amount:
            raise InsufficientFunds(INSUFFICIENT_FUNDS)
        now = now_ms()
        txn = {
            "id": uuid.uuid4().hex, "sender": sender, "recipient": recipient,
            "amount": amount, "state": INITIAL, "timestamp": now, "updated": now,
        }
        self.store.insert(TRANSACTIONS.name, txn)
        return self._get(txn["id"])

    def complete(self, txn):
        return self.processor.run(txn)

    def process(self, limit=None):
        pending = self.store.scan(TRANSACTIONS.name, where={"state": PENDING},
                                  order_by=("timestamp", "id"), limit=limit)
        done = [self.processor.run(txn) for txn in pending]
        return done, [t for t in done if t["state"] == FAILED]

    def find(self, txn_id):
        return self._get(txn_id)

    def latest(self, state=None, limit=DEFAULT_LIMIT):
        if state is not None and state not in STATES:
            raise BadRequest(f"'state' must be one of {', '.join(STATES)}")
        where = {"state": state} if state else None
        return self.store.scan(TRANSACTIONS.name, where=where,
                               order_by=("timestamp DESC", "id"), limit=limit)

    def _get(self, txn_id):
        txn = self.store.get(TRANSACTIONS.name, (txn_id,))
        if txn is None:
            raise NotFound(f"unknown transaction {txn_id!r}")
        return txn

    @staticmethod
    def view(txn):
        shown = {k: txn[k] for k in ("id", "sender", "recipient", "state", "timestamp", "updated")}
        shown["amount"] = to_api(txn["amount"])
        if txn.get("reason"):
            shown["reason"] = txn["reason"]
        return shown
