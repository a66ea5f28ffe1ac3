"""Who sends a request: the owner of the key in its Authorization header.

Each node checks a key against the store (the users row's ``key_hash``,
read by primary key) or the operator key's file, and keeps what it
verified for at most ``TTL`` seconds: a rotated or revoked key stops
working on every node within that, and a client sending many requests
costs one read a second, not one a request. Nothing but a successful check
is kept, so a new key works at once.
"""
import os
import time
from collections import namedtuple

from timpe.auth import keys
from timpe.errors import Unauthorized
from timpe.store.schema import USERS

#: Seconds a verified key is taken as valid without reading it again.
TTL = 1.0
#: At most this many verified keys are kept (all are dropped when full).
SIZE = 10_000


class Caller(namedtuple("Caller", "user_id operator")):
    """The key's owner: a user (``user_id``) or the operator (every right)."""

    @property
    def scope(self):
        """What the ids a caller chooses are prefixed with, so that two
        callers never name the same transaction (timpe.transactions)."""
        return "" if self.operator else self.user_id + "."


OPERATOR = Caller(None, True)


class OperatorKey:
    """The operator key's digest, read again when its file changes (looked
    at no more than once every ``TTL`` seconds)."""

    def __init__(self, path):
        self.path = path
        self._seen = None     # (inode, mtime) of the file read
        self._digest = None
        self._checked = -TTL

    def digest(self):
        now = time.monotonic()
        if now - self._checked >= TTL:
            self._checked = now
            try:
                stat = os.stat(self.path)
                seen = (stat.st_ino, stat.st_mtime_ns)
                if seen != self._seen:
                    parsed = keys.parse(keys.read_operator_key(self.path))
                    self._digest = parsed[1] if parsed and parsed[0] == keys.OPERATOR else None
                    self._seen = seen
            except (OSError, TypeError):  # no file (yet), or no path: no operator key
                self._digest, self._seen = None, None
        return self._digest


class Authenticator:
    def __init__(self, store, operator_key, ttl=TTL):
        self.store = store
        self.operator_key = operator_key
        self.ttl = ttl
        self._verified = {}  # (user id, digest) -> monotonic time it stops counting

    def caller(self, authorization):
        """The Caller of an Authorization header's value (None: absent);
        Unauthorized without a valid key."""
        if not authorization:
            raise Unauthorized("an API key is required: send 'Authorization: Bearer <key>'",
                               invalid=False)
        scheme, _, key = authorization.partition(" ")
        parsed = keys.parse(key.strip()) if scheme.lower() == "bearer" else None
        if parsed is None:
            raise Unauthorized("the Authorization header holds no API key "
                               "('Bearer timpe_<owner>_<secret>')")
        owner, hashed = parsed
        if owner == keys.OPERATOR:
            if keys.matches(self.operator_key.digest(), hashed):
                return OPERATOR
            raise Unauthorized("unknown or revoked API key")
        now = time.monotonic()
        if self._verified.get(parsed, 0) > now:
            return Caller(owner, False)
        row = self.store.get(USERS.name, (owner,))
        if row is None or not keys.matches(row.get("key_hash"), hashed):
            raise Unauthorized("unknown or revoked API key")
        if len(self._verified) >= SIZE:
            self._verified.clear()
        self._verified[parsed] = now + self.ttl
        return Caller(owner, False)
