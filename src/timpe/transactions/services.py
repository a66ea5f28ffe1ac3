import contextlib
import hashlib
import re
import time

import uuid_utils

from zope.interface import implementer

from timpe import concurrently
from timpe.errors import BadRequest, Conflict, InsufficientFunds, NotFound, RowsLost
from timpe.ledger import now_ms
from timpe.money import to_api
from timpe.store.races import confirmed, insert_or_read
from timpe.store.schema import TRANSACTIONS
from timpe.transactions.interfaces import ITransactionService
from timpe.transactions.appender import Appender
from timpe.transactions.holds import EXPIRED, Decision, Expiry, EXPIRES_IN, MAX_EXPIRES_IN, \
    expires_at
from timpe.transactions.protocol import (
    FAILED, INITIAL, INSUFFICIENT_FUNDS, PENDING, STATES, Processor, claimable, claims, is_hold,
)
from timpe.users.services import UserService

#: Seconds after which a /process call starts no more transfers (it works
#: on as many at once as its store's calls are worth overlapping).
PROCESS_SECONDS = 10

#: GET /transactions: newest first; the id makes the order total for paging.
LISTING_ORDER = ("timestamp DESC", "id")

#: Bounds of the ``limit`` of a listing or a /process call.
MAX_LIMIT = 100_000
DEFAULT_LIMIT = 100


CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e][\x20-\x7e]{0,199}")


def transaction_id(client_id=None, idempotency_key=None, scope=""):
    """The id a new transfer is stored under.

    A client-chosen id or an Idempotency-Key makes the id deterministic, so a
    retry on any node runs into the first attempt's row (insert-if-absent)
    instead of creating a second transfer. Without either: None, and the
    service draws a fresh id that no earlier attempt can hold (no lookup).

    ``scope`` (timpe.auth.identity.Caller.scope) keeps each key's owner's
    ids apart: "" for the operator, "<user id>." for a user. A key's id
    holds a "." too, which no client id may: no client can name another
    client's transfer, nor one of a key's, in advance.
    """
    if idempotency_key is not None and not IDEMPOTENCY_KEY.fullmatch(idempotency_key):
        raise BadRequest("Idempotency-Key must be 1-200 printable ASCII characters")
    if client_id is not None:  # with a key too, the id names it (see fingerprint)
        if not isinstance(client_id, str) or not CLIENT_ID.fullmatch(client_id):
            raise BadRequest("'id' must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'")
        return scope + client_id
    if idempotency_key is not None:
        return scope + "key." + hashlib.sha1(idempotency_key.encode()).hexdigest()
    return None


def new_id():
    """A fresh transaction id: a UUIDv7 (RFC 9562) in 32 hex digits, the
    creation time in milliseconds followed by 74 random bits.

    Time first, so new rows go to the right edge of the ``transactions``
    b-tree instead of a random leaf: the pages a transfer writes are the
    ones the last transfers wrote, already at hand, and a checkpoint copies
    fewer distinct pages. Two processes doing transfers took 4-15 % less
    CPU per transfer than with uuid4 ids (three runs without HTTP, on
    tables of 40,000 and 120,000 transfers).

    uuid-utils draws it in 1.0 us, where the hand-written one this replaced
    (os.urandom and integer shifts) took 7.3 us and uuid6's 9.1 us
    (docs/benchmarks.rst).
    """
    return uuid_utils.uuid7().hex


def fingerprint(sender, recipient, amount, retry_key=None, hold=None):
    """What a retry must repeat to be one: the body, and ``retry_key``, an
    Idempotency-Key that came with a client's id (without an id the key is
    in the transaction id already; stored fingerprints leave it out).
    ``hold``: a hold's ``expires_in`` as asked (None: as the default)."""
    text = f"{sender}\n{recipient}\n{amount}"
    if retry_key is not None:
        text += f"\n{retry_key}"
    if hold is not None:
        text += f"\nhold {hold}"
    return hashlib.sha1(text.encode()).hexdigest()


@implementer(ITransactionService)
class TransactionService:
    def __init__(self, store, users=None, appender=None, metrics=None,
                 expiry=Expiry(EXPIRES_IN, MAX_EXPIRES_IN)):
        """``users``: the request's UserService (its ledger is shared);
        ``appender``: the process's (timpe.transactions.appender), if any;
        ``metrics``: the app's (timpe.metrics.collect), if any; ``expiry``:
        the holds' (timpe.transactions.holds)."""
        self.store = store
        self.expiry = expiry
        self.users = users or UserService(store)
        self.appender = appender or Appender(store, self.users.known)
        self.metrics = metrics
        # Behind legs that a cluster unable to serve holds up, a client
        # waits for the user's next row no longer than one store call may
        # (the store's timeout, where it has one) and hears 503 in seconds,
        # not after each row queued ahead of it timed out in turn. Behind a
        # healthy store's queue it waits as long as that takes.
        self.patience = store.timeout

    def create(self, sender, recipient, amount, txn_id=None, claimed=False, retry_key=None):
        """Phase 1. Return (transaction, replayed): ``replayed`` is True when
        ``txn_id`` named a transfer recorded earlier with the same body (and
        ``retry_key``, see fingerprint).

        ``claimed``: record it with both legs already claimed, for a caller
        that goes on to phase 2 at once.
        """
        with self._alone(txn_id):
            return self._create(sender, recipient, amount, txn_id, claimed, retry_key)

    def _alone(self, txn_id):
        """A chosen id, held against this process's other requests (retries
        sent at once): a drawn one is this request's alone."""
        return self.appender.alone(txn_id) if txn_id is not None else contextlib.nullcontext()

    def _create(self, sender, recipient, amount, txn_id, claimed, retry_key, drawn=None,
                hold=None):
        if sender == recipient:
            raise BadRequest("'sender' and 'recipient' must differ")
        # Checked before anything is read: a bad hold writes nothing.
        expires = None if hold is None else expires_at(self.expiry, hold[0])
        # Only a caller-chosen id can come back as a retry to compare with.
        print_ = (fingerprint(sender, recipient, amount, retry_key, hold and hold[0])
                  if txn_id is not None else None)
        if txn_id is not None:
            earlier = self.store.get(TRANSACTIONS.name, (txn_id,))
            if earlier is not None:
                return self._replay(earlier, print_), True
        # The users rows as kept, read only where the process has none: a
        # user is never removed, and the store is the one they were read
        # from (the insert below carries its token, timpe.store.identity).
        # Legs are claimed and appended from the heads the process keeps,
        # with no proof by key; a user whose head it keeps none of, or
        # whose kept head does not cover the amount, is proven (claimable).
        payer, payee = self.users.get_many(sender, recipient)
        ledger = self.users.ledger
        if claimed:
            heads = claimable(self.appender, ledger, sender, recipient, amount,
                              {sender: payer, recipient: payee})
            head = heads[sender]
        else:
            head = ledger.covering(sender, amount, payer)
        # Advisory only (the debit re-checks at its seq): refuse what cannot
        # succeed now instead of recording a transfer bound to fail.
        if head["balance"] < amount:
            raise InsufficientFunds(INSUFFICIENT_FUNDS)
        now = now_ms()
        txn = dict.fromkeys(TRANSACTIONS.columns) | {
            "id": txn_id or drawn or new_id(), "sender": sender,
            "recipient": recipient, "amount": amount, "state": INITIAL,
            "timestamp": now, "updated": now, "fingerprint": print_,
        }
        if claimed:
            txn |= claims(head, heads[recipient])
        if expires is not None:  # the credit is claimed when it is posted
            txn |= {"expires": expires, "credit_seq": None}
        inserted, stored = insert_or_read(self.store, TRANSACTIONS.name, txn)
        # A drawn id is ours alone: a row under it is our own insert, which
        # a client retried on another CrateDB node after a timeout reports
        # as taken. A chosen one may be a concurrent retry's, there first.
        if not inserted and txn_id is not None:
            return self._replay(stored, print_), True
        return {**txn, "_version": None}, False

    def _replay(self, earlier, print_):
        if earlier["fingerprint"] != print_:
            raise Conflict(f"transaction {earlier['id']!r} exists with a different "
                           "sender, recipient or amount (or Idempotency-Key, given with "
                           "the id)")
        # The first attempt's row, as read: kept before it is answered as
        # recorded (it may be a write its primary never replicated).
        kept = confirmed(self.store, TRANSACTIONS.name, earlier,
                         lambda row: row["fingerprint"] == print_)
        if kept is None:
            raise RowsLost(f"store lost rows: transaction {earlier['id']!r}, a write its "
                           "primary never replicated")
        return kept

    def complete(self, txn):
        with self.appender.alone(txn["id"]):
            return self._run(txn)

    def immediately(self, sender, recipient, amount, txn_id=None, retry_key=None):
        """Phase 1 with both legs claimed, then phase 2 at once. Return
        (transaction, replayed) as create does."""
        # Drawn here when the client chose none: held from the insert on, as
        # a recovery pass of this process may meet the transfer.
        drawn = None if txn_id is not None else new_id()
        with self.appender.alone(txn_id or drawn):
            txn, replayed = self._create(sender, recipient, amount, txn_id, True, retry_key,
                                         drawn)
            # Completing also resumes a replayed transfer whose first node died.
            return self._run(txn, patience=self.patience), replayed

    def hold(self, sender, recipient, amount, txn_id=None, retry_key=None, expires_in=None):
        """Record a hold and reserve its amount at once; return (transaction,
        replayed) as immediately does: ``held``, or failed for want of
        funds. ``expires_in``: seconds (None: the default)."""
        drawn = None if txn_id is not None else new_id()
        with self.appender.alone(txn_id or drawn):
            # A retry's fingerprint names the hold: a transfer is no retry of it.
            txn, replayed = self._create(sender, recipient, amount, txn_id, True, retry_key,
                                         drawn, hold=(expires_in,))
            return self._run(txn, patience=self.patience), replayed

    def post(self, txn_id, amount=None):
        """Post the hold ``txn_id`` (``amount``: part of it); return it
        finished (timpe.transactions.holds)."""
        with self.appender.alone(txn_id):
            return self._decision().post(self._get(txn_id), amount)

    def void(self, txn_id):
        """Void the hold ``txn_id``, or cancel the initial transfer; return
        it voided."""
        with self.appender.alone(txn_id):
            return self._decision().void(self._get(txn_id))

    def expire(self, txn):
        """Void the hold ``txn`` (as stored a moment ago) that has expired,
        unless it was decided since; return it as it ends."""
        with self.appender.alone(txn["id"]):
            try:
                return self._decision().void(txn, reason=EXPIRED)
            except Conflict:  # posted meanwhile
                return self._get(txn["id"])

    def expire_all(self, txns, until):
        """expire each of ``txns``, as complete_all completes them."""
        return concurrently.each(self.expire, txns, self.store.parallel, until)

    def _decision(self):
        return Decision(self._processor(self.patience), self.users.ledger)

    def _processor(self, patience=None):
        return Processor(self.store, self.users.ledger, self.appender,
                         self.metrics and self.metrics.transfer_ended,
                         patience, self._store_failing)

    def _store_failing(self):
        """Whether the store answered a call with StoreUnavailable lately."""
        at = self.store.unavailable_at
        return at is not None and time.monotonic() - at < 2 * self.patience

    def _run(self, txn, patience=None):
        """Phase 2; a client's request waits for the legs ahead of its own
        with ``patience`` (see __init__)."""
        processor = self._processor(patience)
        if self.metrics is None:
            return processor.run(txn)
        started = time.perf_counter()
        txn = processor.run(txn)
        self.metrics.phase2(txn, time.perf_counter() - started)
        return txn

    def process(self, limit=None):
        pending = self.store.scan(TRANSACTIONS.name, where={"state": PENDING},
                                  order_by=("timestamp", "id"), limit=limit)
        # On CrateDB many at once: their round trips overlap and their writes
        # share batches. Each yields, so a long run never starves the other
        # requests or the worker's heartbeat (SQLite calls never yield).
        # None is started after the time budget: a call answers long before
        # a client or HAProxy gives up on it, and says there is more.
        done = self.complete_all(pending, time.monotonic() + PROCESS_SECONDS)
        more = len(done) < len(pending) or (limit is not None and len(pending) == limit)
        return done, [t for t in done if t["state"] == FAILED], more

    def complete_all(self, txns, until):
        """Phase 2 for ``txns``, as many at once as the store's calls are
        worth overlapping (the legs of one user share rows); none started
        once ``until`` (a time.monotonic() value, or a function that says
        when) is due. Return the ones started, as they ended."""
        return concurrently.each(self.complete, txns, self.store.parallel, until)

    def find(self, txn_id):
        return self._get(txn_id)

    def latest(self, state=None, limit=DEFAULT_LIMIT, before=None, sender=None, recipient=None):
        """Return (newest transactions first, the ``before`` of the next page
        or None): at most ``limit``, older than the transaction ``before``
        names, of the ``state``, ``sender`` and ``recipient`` given.

        A search (eventually consistent); each page starts at its cursor's
        row (keyset), so it costs the page, not the pages before it.
        """
        if state is not None and state not in STATES:
            raise BadRequest(f"'state' must be one of {', '.join(STATES)}")
        where = {k: v for k, v in (("state", state), ("sender", sender),
                                   ("recipient", recipient)) if v is not None}
        after = None
        if before is not None:
            after = self.store.get(TRANSACTIONS.name, (before,))
            if after is None:
                raise NotFound(f"'before' names no transaction: {before!r}")
        # One more than asked for: whether there is a next page.
        found = self.store.scan(TRANSACTIONS.name, where=where or None, order_by=LISTING_ORDER,
                                limit=limit + 1, after=after)
        page = found[:limit]
        return page, (page[-1]["id"] if len(found) > limit else None)

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
        if is_hold(txn):
            shown["expires"] = txn["expires"]
            if txn["posted"] is not None:
                shown["posted"] = to_api(txn["posted"])
        return shown
