from zope.interface import Interface


class ITransactionService(Interface):
    def create(sender, recipient, amount):
        """Phase 1: validate and durably record the transfer as 'initial'.

        Once this returns, the transfer will end finished or failed; it is
        never lost. Raises BadRequest, NotFound or InsufficientFunds and then
        writes nothing.
        """

    def complete(txn):
        """Phase 2 for one transaction; return it finished or failed."""

    def process(limit=None):
        """Phase 2 for every pending transaction a scan finds (oldest first).

        Return (processed transactions, the ones that ended failed).
        """

    def find(txn_id):
        """Return one transaction, or raise NotFound."""

    def latest(state=None, limit=100):
        """Newest transactions first (eventually consistent)."""
