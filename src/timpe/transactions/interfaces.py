from zope.interface import Interface


class ITransactionService(Interface):
    def create(sender, recipient, amount, txn_id=None):
        """Phase 1: validate and durably record the transfer as 'initial'.

        Return (transaction, replayed). Once this returns, the transfer will
        end finished or failed; it is never lost. ``txn_id`` (a client's id
        or one derived from an Idempotency-Key) makes retries safe: a second
        call with the same id and body returns the first transaction
        (replayed=True); with another body it raises Conflict. Raises
        BadRequest, NotFound or InsufficientFunds and then writes nothing.
        """

    def complete(txn):
        """Phase 2 for one transaction; return it finished or failed."""

    def process(limit=None):
        """Phase 2 for the pending transactions a scan finds (oldest first),
        at most ``limit``, started within a time budget.

        Return (processed transactions, the ones that ended failed, whether
        a limit or the budget left some for another call).
        """

    def immediately(sender, recipient, amount, txn_id=None):
        """Phase 1 and phase 2 at once; return (transaction, replayed)."""

    def hold(sender, recipient, amount, txn_id=None, retry_key=None, expires_in=None):
        """Record a hold and reserve its amount on the sender's ledger at
        once; return (transaction, replayed): ``held``, or ``failed`` for
        want of funds. It expires after ``expires_in`` seconds (None: the
        default); BadRequest past the maximum."""

    def post(txn_id, amount=None):
        """Post the hold: ``amount`` (None: all of it) to the recipient, the
        rest back to the sender; return it ``finished``. A retry answers the
        same; Conflict when it was voided, expired, failed, posted with
        another amount, or is no hold; BadRequest for more than it holds."""

    def void(txn_id):
        """Void the hold (it returns to the sender), or cancel a transfer
        still ``initial``; return it ``voided``. A retry answers the same;
        Conflict once it was posted or has left ``initial``."""

    def find(txn_id):
        """Return one transaction, or raise NotFound."""

    def latest(state=None, limit=100, before=None, sender=None, recipient=None):
        """Newest transactions first, a page older than the transaction
        ``before`` (eventually consistent); return (page, next cursor or None)."""
