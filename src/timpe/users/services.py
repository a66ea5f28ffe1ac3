import hashlib

from zope.interface import implementer

from timpe.errors import Conflict, unknown_user
from timpe.ledger import Ledger, now_ms
from timpe.money import to_api
from timpe.store.schema import USERS
from timpe.users.interfaces import IUserService
from timpe.users.nicknames import prepare

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
        prepared = prepare(nickname)
        user = {
            "id": user_id(prepared), "nickname": prepared,
            "initial_balance": balance, "head_seq": 0, "timestamp": now_ms(),
        }
        if not self.store.insert(USERS.name, user):
            alike = "" if prepared == nickname else f" (as {prepared!r}, which it prepares to)"
            raise Conflict(f"nickname {nickname!r} is already registered{alike}")
        self.ledger.open(user)
        return self.view(user, balance)

    def get(self, uid):
        """The stored user row, or NotFound."""
        return self.get_many(uid)[0]

    def get_many(self, *uids, kept=True):
        """The users rows of ``uids``, in one round trip at most; NotFound
        names the first that does not exist. ``kept``: rows the process
        keeps will do (a stale hint merely lags); else they are read."""
        found = self.known.rows(uids) if kept and self.known is not None else None
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
        return self.view(user, self.balance(user))

    def all(self):
        users = self.store.scan(USERS.name, order_by=("nickname", "id"))
        return [self.view(u, self.balance(u)) for u in users]

    @staticmethod
    def view(user, balance):
        return {"id": user["id"], "nickname": user["nickname"], "balance": to_api(balance)}
