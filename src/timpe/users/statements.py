"""Account statements: a user's ledger, newest first, one page at a time.

A user's ledger rows are the gap-free seqs 0..head (timpe.ledger), so a
page is a range of primary keys: the proven head fixes the top, and the
page's rows and the transactions they belong to are one look-up by key
each. No search and no scan: a page costs the same at the first row as at
the millionth, on every store.

What a statement shows is what moved: a ledger row is written only when
money moves, and never changes. A transfer still ``initial`` has no row
yet; one whose debit is written and whose credit is not shows on the
sender's statement (with the transfer's state, ``in progress`` or
``committed``) and not yet on the recipient's. The newest entry's balance
is the balance ``GET /users/{id}`` shows at that moment.

Pages never shift: ``before`` is a seq, and rows are only ever appended
above the newest, so paging down a statement while transfers go on shows
each entry exactly once.
"""
from timpe.money import to_api
from timpe.store.schema import TRANSACTIONS, USER_TRANSACTIONS

#: Entries per page: the default, and at most (one look-up of the rows on
#: CrateDB, whose adapter sends up to 200 keys a request).
DEFAULT_PAGE = 50
MAX_PAGE = 200
#: What a ledger row records (timpe.ledger, timpe.transactions.protocol).
KINDS = ("deposit", "debit", "credit")


class Statements:
    def __init__(self, users):
        """``users``: the request's UserService (its ledger and store)."""
        self.users = users
        self.store = users.store

    def page(self, uid, before=None, limit=DEFAULT_PAGE):
        """Return (entries newest first, the ``before`` of the next page or
        None): the entries with seq below ``before`` (all: from the head),
        at most ``limit``."""
        user = self.users.get(uid)
        head = self.users.ledger.head(uid, user)
        top = head["seq"] + 1 if before is None else min(before, head["seq"] + 1)
        low = max(0, top - limit)
        seqs = range(top - 1, low - 1, -1)
        rows = {r["seq"]: r for r in self.store.get_many(
            USER_TRANSACTIONS.name, [(uid, s) for s in seqs if s != head["seq"]])}
        rows[head["seq"]] = head
        page = [rows[s] for s in seqs if s in rows]
        ids = {r["transaction_id"] for r in page if r["transaction_id"] is not None}
        txns = {t["id"]: t for t in self.store.get_many(
            TRANSACTIONS.name, [(i,) for i in ids])} if ids else {}
        entries = [entry(r, txns.get(r["transaction_id"])) for r in page]
        return entries, (low if low > 0 else None)


def entry(row, txn):
    """One statement entry: ``amount`` is signed (a debit is negative), so
    each entry's balance is the one below it plus its amount."""
    party = None
    if txn is not None:
        party = txn["recipient"] if row["kind"] == "debit" else txn["sender"]
    return {
        "seq": row["seq"], "kind": row["kind"], "amount": to_api(row["amount"]),
        "balance": to_api(row["balance"]), "transaction_id": row["transaction_id"],
        "counterparty": party, "state": txn["state"] if txn is not None else None,
        "timestamp": row["timestamp"],
    }
