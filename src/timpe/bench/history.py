"""Data for a benchmark, written in-process through timpe's own services on
the topology's store: the same primitives, rows and protocol as transfers
over HTTP, without HTTP's cost per transfer. Re-running adds what is missing."""
import time

from timpe.transactions.services import TransactionService
from timpe.users.known import KnownUsers
from timpe.users.services import UserService, user_id

RICH = 10 ** 11  # cents every benchmark user starts with: no transfer runs dry


def nickname(i):
    return f"bench_{i:04d}"


def register(store, count, balance=RICH):
    """Register ``count`` users (re-running skips existing ones); return their ids."""
    users = UserService(store)
    for i in range(count):
        if store.get("users", (user_id(nickname(i)),)) is None:
            users.register(nickname(i), balance)
    return [user_id(nickname(i)) for i in range(count)]


def long_history_of(store, payer, rows, progress=None):
    """Give ``payer`` (registered here) a ledger of at least ``rows`` + 1
    rows: real transfers of 0.01 to a partner, each a full phase 1 and phase
    2, as many as an earlier run did not make. Return (the payer's id,
    seconds spent)."""
    known = KnownUsers()  # what a node keeps across its requests
    users = UserService(store, known)
    partner = payer + "_partner"
    for nick in (payer, partner):
        if store.get("users", (user_id(nick),)) is None:
            users.register(nick, RICH)
    missing = rows - users.ledger.head(user_id(payer))["seq"]
    if missing <= 0:
        return user_id(payer), 0.0
    started = time.perf_counter()
    for done in range(missing):
        # One service per transfer, as a request has; the rows kept, as a node has.
        service = TransactionService(store, UserService(store, known))
        service.complete(service.create(user_id(payer), user_id(partner), 1)[0])
        if progress is not None and done % 1000 == 999:
            progress(1000)
    return user_id(payer), time.perf_counter() - started


def keys_of(config, ids):
    """A new API key for each of ``ids`` (through the store ``config``
    names), as {id: key}: to send each one's transfers with her own key."""
    from timpe.cli import open_store

    store = open_store(config)
    try:
        users = UserService(store)
        return {uid: users.rotate_key(uid)["key"] for uid in ids}
    finally:
        store.close()


def register_all(config, count, balance=RICH):
    """register() through the store ``config`` names; return the ids."""
    from timpe.cli import open_store

    store = open_store(config)
    try:
        return register(store, count, balance)
    finally:
        store.close()
