"""The one way a client of the API sends its key: bin/u2u_transactions,
bin/benchmark, the tests and docs/example.rst all come here.

The key is ``$TIMPE_API_KEY`` if set, else the operator key from the file
the app's ini names (``auth.operator_key_file``; ``make run`` makes it).
"""
import os

from timpe.auth.keys import read_operator_key

#: A key to send instead of the operator's.
ENV = "TIMPE_API_KEY"


def key_file(config=None):
    """The operator key's file as the ini ``config`` (default: the app's) names it."""
    from timpe.cli import load_settings
    from timpe.paths import default_config

    return load_settings(config or default_config()).get("auth.operator_key_file")


def operator_key(config=None):
    """The operator key of the ini ``config``; None where it has none (yet)."""
    path = key_file(config)
    try:
        return read_operator_key(path) if path else None
    except OSError:
        return None


def api_key(config=None):
    """The key to send: $TIMPE_API_KEY, else the operator key; None if neither is there."""
    return os.environ.get(ENV) or operator_key(config)


def headers(key):
    """The header that sends ``key``; none for None."""
    return {"Authorization": f"Bearer {key}"} if key else {}


def authenticate(session, key):
    """``session`` (requests) sending ``key`` with every request."""
    session.headers.update(headers(key))
    return session
