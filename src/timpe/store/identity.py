"""Which store a process writes to: each table a transfer writes rows into
is made with a token of its own, which every insert into it carries, and
which the table refuses any other value of (a CHECK constraint).

A process keeps rows it read (timpe.users.known, its appender's heads) and
writes after them: a ledger row at the seq after a kept head, a transfer
whose claims are the seqs after kept heads. That is sound only if the
store is the one those rows came from. A store destroyed and made again
under running nodes (bin/crate_cleanup, then bin/crate_setup) holds
tables made with new tokens: the first insert of a process that still
keeps rows of the old store is refused, whatever it was built from, so
nothing is ever written after a row of another store. The process then
starts over (``when_replaced``): an app node's worker exits and gunicorn
starts a new one, which reads the store as it is.

The tokens are read once a process and never change in it: a request
still under way with rows of the old store, after the refusal, is refused
too, where tokens read again would let it through.
"""
import os
import re
import secrets

from timpe.errors import StoreReplaced

#: The tables whose inserts carry the token, and the column that holds it.
TABLES = ("transactions", "user_transactions")
COLUMN = "store"
#: What the DDL files say where a table's token goes.
PLACEHOLDER = "{store}"

_CHECK = re.compile(r"""CHECK\s*\(\s*"?store"?\s*=\s*'([0-9a-f]+)'\s*\)""", re.IGNORECASE)

_callbacks = []

# Which process this is, as forks counted (os.getpid() is a system call,
# and an insert asks).
_forks = 0


def _forked():
    global _forks
    _forks += 1


os.register_at_fork(after_in_child=_forked)


def fresh(statement):
    """``statement`` (DDL) with a new token where it has the placeholder."""
    return statement.replace(PLACEHOLDER, secrets.token_hex(8))


def token(ddl):
    """The token in a table's DDL as the store shows it; None: the table has
    none (made by an earlier version and not set up since)."""
    found = _CHECK.search(ddl or "")
    return found.group(1) if found else None


def constraint(table_name):
    """The name of ``table_name``'s check: what the store's refusal names."""
    return f"{table_name}_store"


def refused(table_name, message):
    """Whether ``message``, an insert's error, is ``table_name``'s check."""
    return constraint(table_name) in str(message)


def when_replaced(callback):
    """Call ``callback()`` whenever an insert of this process is refused as
    made for another store (an app node's worker starts over)."""
    _callbacks.append(callback)


def replaced(table_name):
    """The error for an insert ``table_name`` refused; the process is told."""
    for callback in _callbacks:
        callback()
    return StoreReplaced(f"store replaced: table {table_name} was made again since this "
                         "process read it; the node starts over from the store as it is")


class Tokens:
    """The tokens of a store's tables as one process read them, once.
    ``read()``: {table name: its DDL as the store shows it}."""

    def __init__(self, read):
        self._read = read
        self._tokens, self._read_in = {}, None

    def get(self, table_name):
        if self._read_in != _forks:
            self._tokens, self._read_in = {}, _forks
        if table_name not in self._tokens:
            # A table not there yet (a node up before the store's setup) is
            # looked for again; a token read once holds for the process.
            found = {name: token(ddl) for name, ddl in self._read().items()}
            self._tokens = {**found, **self._tokens}
        return self._tokens.get(table_name)

    def forget(self):
        """Read them again: this process made the tables itself (setup)."""
        self._read_in = None

    def insert(self, table_name, row, write):
        """``write(row)``, with ``row`` carrying its table's token where the
        table has one; a refusal of it raises StoreReplaced."""
        stamp = self.get(table_name) if table_name in TABLES else None
        if stamp is None:
            return write(row)
        try:
            return write({**row, COLUMN: stamp})
        except Exception as exc:
            if refused(table_name, exc):
                raise replaced(table_name) from exc
            raise
