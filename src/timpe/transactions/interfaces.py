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

    def find(txn_id):
        """Return one transaction, or raise NotFound."""

    def latest(state=None, limit=100, before=None, sender=None, recipient=None):
        """Newest transactions first, a page older than the transaction
        ``before`` (eventually consistent); return (page, next cursor or None)."""
