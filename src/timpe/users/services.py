import hashlib

from zope.interface import implementer

from timpe.auth import keys
from timpe.errors import Conflict, NotFound, RowsLost, unknown_user
from timpe.ledger import Ledger, now_ms
from timpe.money import to_api
from timpe.store.races import confirmed, insert_or_read
from timpe.store.schema import NICKNAMES, USERS
from timpe.users.interfaces import IUserService
from timpe.users.nicknames import prepare

#: GET /users: by nickname; the id makes the order total for paging.
USERS_ORDER = ("nickname", "id")
#: Users whose heads one look-up proves (WINDOW keys each): well within
#: SQLite's bound parameters and a few CrateDB requests.
HEADS_AT_ONCE = 50


def user_id(nickname):
    """The seed's rule, on the prepared nickname (timpe.users.nicknames): a
    user's id is the SHA-1 hex digest of it in UTF-8."""
    return hashlib.sha1(nickname.encode("utf-8")).hexdigest()


@implementer(IUserService)
class UserService:
    def __init__(self, store, known=None):
        """``known``: the users rows this process keeps (KnownUsers), if any."""
        self.store = store
        self.known = known
        self.ledger = Ledger(store, known)

    def register(self, nickname, balance):
        """The new user, with ``key``: her API key, which only this answer shows."""
        prepared = prepare(nickname)
        uid = user_id(prepared)
        key, key_hash = keys.new_key(uid)
        user = {
            "id": uid, "nickname": prepared, "initial_balance": balance, "head_seq": 0,
            "timestamp": now_ms(), "key_hash": key_hash,
        }
        alike = "" if prepared == nickname else f" (as {prepared!r}, which it prepares to)"
        # A user registered before nicknames were prepared may hold it under
        # another id (timpe.users.legacy); else the insert decides. A row
        # under the id that is this request's own (a client re-sent the
        # insert after a timeout, and its first attempt landed) is no
        # conflict: its time is this request's, to the millisecond.
        if (self.store.get(NICKNAMES.name, (user["id"],)) is not None
                or not self._ours(insert_or_read(self.store, USERS.name, user), user)):
            raise Conflict(f"nickname {nickname!r} is already registered{alike}")
        return {**self.view(user, self.ledger.open(user)), "key": key}

    def rotate_key(self, uid):
        """Give the user a new API key; return {"id", "key"}. Nodes that
        verified the old one stop taking it within timpe.auth.identity.TTL."""
        self.get(uid)
        key, key_hash = keys.new_key(uid)
        self.store.update(USERS.name, (uid,), {"key_hash": key_hash})
        return {"id": uid, "key": key}

    def revoke_key(self, uid):
        """The user keeps her money and has no key until one is rotated in."""
        self.get(uid)
        self.store.update(USERS.name, (uid,), {"key_hash": None})

    def _ours(self, outcome, user):
        inserted, stored = outcome
        if inserted:
            return True

        def mine(row):
            return all(row[k] == user[k] for k in ("initial_balance", "timestamp"))

        if not mine(stored):
            return False
        # Our first attempt, as read: kept before it is answered as registered.
        if confirmed(self.store, USERS.name, stored, mine) is None:
            raise RowsLost(f"store lost rows: the registration of {user['nickname']!r}, a "
                           "write its primary never replicated")
        return True

    def get(self, uid):
        """The stored user row, or NotFound."""
        return self.get_many(uid)[0]

    def get_many(self, *uids):
        """The users rows of ``uids``, in one round trip at most; NotFound
        names the first that does not exist. Rows the process keeps will do
        (a stale hint merely lags); else they are read."""
        found = self.known.rows(uids) if self.known is not None else None
        read = found is None
        if read:
            keys = [(uid,) for uid in uids if isinstance(uid, str)]
            found = {u["id"]: u for u in self.store.get_many(USERS.name, keys)} if keys else {}
        for uid in uids:
            if not isinstance(uid, str) or uid not in found:
                raise unknown_user(uid)
            # Phase 2 starts its heads from it; the process keeps what it read.
            self.ledger.remember_user(found[uid], keep=read)
        return [found[uid] for uid in uids]

    def balance(self, user):
        return self.ledger.head(user["id"], user)["balance"]

    def find(self, uid):
        user = self.get(uid)
        return self.view(user, self.ledger.head(uid, user))

    def all(self, limit=None, after=None):
        """Return (users by nickname with balances, the ``after`` of the next
        page or None): every user, or at most ``limit`` of those listed
        after the user ``after`` names. A search (eventually consistent)
        from the cursor's row on (keyset); the balances are proven heads,
        found for many users at once."""
        cursor = None
        if after is not None:
            cursor = self.store.get(USERS.name, (after,))
            if cursor is None:
                raise NotFound(f"'after' names no user: {after!r}")
        found = self.store.scan(USERS.name, order_by=USERS_ORDER, after=cursor,
                                limit=None if limit is None else limit + 1)
        page = found if limit is None else found[:limit]
        more = page[-1]["id"] if limit is not None and len(found) > limit else None
        balances = {}
        for start in range(0, len(page), HEADS_AT_ONCE):
            chunk = {u["id"]: u for u in page[start:start + HEADS_AT_ONCE]}
            self.ledger.from_hints(chunk)
            balances.update(self.ledger.heads(chunk))
        return [self.view(u, balances[u["id"]]) for u in page], more

    @staticmethod
    def view(user, head):
        """The user as shown: its balance and held total are its head's
        (``held`` is NULL in rows of an earlier version: nothing held)."""
        return {"id": user["id"], "nickname": user["nickname"],
                "balance": to_api(head["balance"]), "held": to_api(head.get("held") or 0)}
