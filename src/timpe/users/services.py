import hashlib
import re

from zope.interface import implementer

from timpe.errors import BadRequest, Conflict, unknown_user
from timpe.ledger import Ledger, now_ms
from timpe.money import to_api
from timpe.store.schema import USERS
from timpe.users.interfaces import IUserService

MAX_NICKNAME = 64
# Nicknames: unicode, but no control characters (category Cc) and no lone
# surrogates (Cs), and not blank. One regex, so the OpenAPI schema states the
# very same rule; its three classes are disjoint where it matters, so it runs
# in linear time on any input.
_NOT_ALLOWED = r"\x00-\x1f\x7f-\x9f\ud800-\udfff"
NICKNAME_PATTERN = f"^[^\\S{_NOT_ALLOWED}]*[^\\s{_NOT_ALLOWED}][^{_NOT_ALLOWED}]*$"
NICKNAME_RULE = (f"a non-blank string of 1-{MAX_NICKNAME} characters, unicode allowed, "
                 "without control characters")
_NICKNAME = re.compile(NICKNAME_PATTERN)


def user_id(nickname):
    """The seed's rule: a user's id is the SHA-1 hex digest of the nickname."""
    return hashlib.sha1(nickname.encode("utf-8")).hexdigest()


def check_nickname(nickname):
    if (not isinstance(nickname, str) or len(nickname) > MAX_NICKNAME
            or not _NICKNAME.fullmatch(nickname)):
        raise BadRequest(f"'nickname' must be {NICKNAME_RULE}")
    return nickname


@implementer(IUserService)
class UserService:
    def __init__(self, store, known=None):
        """``known``: the users rows this process keeps (KnownUsers), if any."""
        self.store = store
        self.known = known
        self.ledger = Ledger(store, known)

    def register(self, nickname, balance):
        user = {
            "id": user_id(check_nickname(nickname)), "nickname": nickname,
            "initial_balance": balance, "head_seq": 0, "timestamp": now_ms(),
        }
        if not self.store.insert(USERS.name, user):
            raise Conflict(f"nickname {nickname!r} is already registered")
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
