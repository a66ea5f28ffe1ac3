"""Users registered before nicknames were RFC 8265 usernames keep their ids:
the SHA-1 of the nickname as it was sent. One whose nickname prepares to
another form (``José`` sent as ``e`` + combining acute) would not stop a
look-alike's registration, whose id is the SHA-1 of the prepared form. So
the store's setup reserves that form for it, a ``nicknames`` row under the
prepared form's id, which registration looks up first.

New registrations never need a reservation (their id is the prepared
form's), so the rows to write are fixed once the nodes run this version:
the setup writes them once, and re-running it writes nothing new.
"""
from timpe.errors import BadRequest
from timpe.store.paging import every
from timpe.store.schema import NICKNAMES, USERS
from timpe.users.nicknames import prepare
from timpe.users.services import user_id

#: Users read per search while reserving.
PAGE = 1000


def reserve(store):
    """Reserve the prepared form of every user's nickname that is not its
    own; return how many reservations this call wrote (idempotent)."""
    refresh = getattr(store, "refresh", None)
    if refresh is not None:  # a search must see every user: CrateDB refreshes first
        refresh(USERS.name)
    written = 0
    for user in every(store, USERS.name, "id", PAGE):
        try:
            prepared = prepare(user["nickname"])
        except BadRequest:  # refused now: nobody can register a look-alike of it
            continue
        reserved = user_id(prepared)
        if reserved != user["id"]:
            written += store.insert(NICKNAMES.name, {
                "id": reserved, "user_id": user["id"], "nickname": prepared})
    return written


def setup(store):
    """Create the tables, then reserve what users registered before need;
    return (tables created, reservations written)."""
    created = store.setup()
    return created, reserve(store)
