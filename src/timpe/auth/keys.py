"""API keys: what one looks like, how it is made, hashed and checked.

A key names its owner: ``timpe_<user id>_<secret>``, or
``timpe_operator_<secret>`` for the operator. The secret is 256 random
bits (43 characters of base64url). A node finds the owner's row by primary
key, with no search, and compares the SHA-256 of the secret with the hash
stored there: with a secret of 256 random bits a plain hash is as strong
as a slow one (no dictionary to try), and it costs about a microsecond.

The operator key lives in a file (``auth.operator_key_file``; ``make run``
makes ``var/etc/operator.key``, mode 0600), which the nodes read and the
operator's commands send. Imported by the clients too: no Pyramid here.
"""
import hashlib
import hmac
import re
import secrets
from pathlib import Path

from timpe import private_files

PREFIX = "timpe"
OPERATOR = "operator"
#: A key as sent: the owner (a user id is a SHA-1 hex digest) and the secret.
KEY = re.compile(rf"{PREFIX}_({OPERATOR}|[0-9a-f]{{40}})_([A-Za-z0-9_-]{{43}})")


def digest(secret):
    """What is stored of a secret: its SHA-256, in hex."""
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def new_key(owner):
    """(key, digest of its secret) for ``owner``: a user id or OPERATOR."""
    secret = secrets.token_urlsafe(32)
    return f"{PREFIX}_{owner}_{secret}", digest(secret)


def parse(key):
    """(owner, digest of the secret) of a well-formed key, else None."""
    match = KEY.fullmatch(key)
    return (match[1], digest(match[2])) if match else None


def matches(stored, hashed):
    """Does the stored digest (None: no key) equal ``hashed``? In constant
    time: how long it takes says nothing about how much of it matched."""
    return stored is not None and hmac.compare_digest(stored, hashed)


# -- the operator key's file ----------------------------------------------------

def ensure_operator_key(path):
    """The operator key in ``path``, made on the first call (mode 0600)."""
    return private_files.made_once(path, lambda: new_key(OPERATOR)[0] + "\n").strip()


def read_operator_key(path):
    return Path(path).read_text().strip()


def rotate_operator_key(path):
    """Write a new operator key to ``path`` in one step (the old one stops
    working once the nodes see the file change); return it."""
    key = new_key(OPERATOR)[0]
    private_files.replace(path, key + "\n")
    return key
