"""Account statements: a user's ledger, newest first, one page at a time.

A user's ledger rows are the gap-free seqs 0..head (timpe.ledger), so a
page is a range of primary keys: the proven head fixes the top, and the
page's rows and the transactions they belong to are one look-up by key
each. No search and no scan: a page costs the same at the first row as at
the millionth, on every store.

What a statement shows is what moved: a ledger row is written only when
money moves, and never changes. A transfer still ``initial`` has no row
yet; one whose debit is written and whose credit is not shows on the
sender's statement (with the transfer's state, ``in progress``) and not
yet on the recipient's. The newest entry's balance
is the balance ``GET /users/{id}`` shows at that moment.

A row carries one leg or many (timpe.ledger): each leg is one entry, with
its own running balance and running held total; a debit carried as
declined moved nothing and shows in no statement. A hold shows on the
sender's statement as its ``hold`` leg, then its ``void`` or ``post``.

Pages never shift: ``before`` is a position (a row's seq and a leg's place
in it), and rows are only ever appended above the newest, so paging down a
statement while transfers go on shows each entry exactly once.
"""
from timpe.ledger import CREDIT, DEBIT, DECLINED, DEPOSIT, HOLD, MAX_LEGS, POST, VOID, legs
from timpe.money import to_api
from timpe.store.schema import TRANSACTIONS, USER_TRANSACTIONS

#: Entries per page: the default, and at most (one look-up of the rows on
#: CrateDB, whose adapter sends up to 200 keys a request).
DEFAULT_PAGE = 50
MAX_PAGE = 200
#: What a statement entry records (timpe.ledger, timpe.transactions.protocol).
KINDS = (DEPOSIT, DEBIT, CREDIT, HOLD, VOID, POST)


def position(seq, leg):
    """An entry's place in the user's ledger, which ``before`` names: a row's
    legs are numbered within it, and a row carries at most MAX_LEGS."""
    return seq * MAX_LEGS + leg


class Statements:
    def __init__(self, users):
        """``users``: the request's UserService (its ledger and store)."""
        self.users = users
        self.store = users.store

    def page(self, uid, before=None, limit=DEFAULT_PAGE):
        """Return (entries newest first, the ``before`` of the next page or
        None): the entries placed below ``before`` (all: from the head), at
        most ``limit``."""
        user = self.users.get(uid)
        head = self.users.ledger.head(uid, user)
        end = position(head["seq"] + 1, 0) if before is None else before
        top = min(head["seq"], (end - 1) // MAX_LEGS) if end > 0 else -1
        # A row carries one leg or more: the rows a page needs are at most
        # ``limit``, and fewer when they carry many.
        seqs = list(range(top, max(-1, top - limit), -1))
        rows = {r["seq"]: r for r in self.store.get_many(
            USER_TRANSACTIONS.name, [(uid, s) for s in seqs if s != head["seq"]])}
        rows[head["seq"]] = head
        shown = []
        for seq in seqs:
            if seq not in rows:
                break
            carried = legs(rows[seq])
            for i in range(len(carried) - 1, -1, -1):
                if position(seq, i) < end and carried[i].kind != DECLINED:
                    shown.append((rows[seq], i, carried[i]))
            if len(shown) >= limit:
                break
        page = shown[:limit]
        ids = {leg.transaction_id for _, _, leg in page if leg.transaction_id is not None}
        txns = {t["id"]: t for t in self.store.get_many(
            TRANSACTIONS.name, [(i,) for i in ids])} if ids else {}
        entries = [entry(row, leg, txns.get(leg.transaction_id)) for row, _, leg in page]
        if len(page) == limit:
            more = position(page[-1][0]["seq"], page[-1][1])
        else:  # the rows read ran out first (declined legs show nothing)
            more = position(seqs[-1], 0) if seqs else 0
        return entries, (more or None)


def entry(row, leg, txn):
    """One statement entry: ``amount`` is signed (a debit is negative), so
    each entry's balance is the one below it plus its amount."""
    party = None
    if txn is not None:
        party = txn["sender"] if leg.kind == CREDIT else txn["recipient"]
    return {
        "seq": row["seq"], "kind": leg.kind, "amount": to_api(leg.amount),
        "balance": to_api(leg.balance), "held": to_api(leg.held),
        "transaction_id": leg.transaction_id,
        "counterparty": party, "state": txn["state"] if txn is not None else None,
        "timestamp": row["timestamp"],
    }
