"""Count the store round trips of one transfer, by primitive and table.

A wrapper around a real store records every primitive call; the transfer
runs through the real services, so the count is what a node sends.
"""
from collections import Counter

from timpe.ledger import HINT_STRIDE
from timpe.store.interfaces import PRIMITIVES
from timpe.store.sqlite import SQLiteStore
from timpe.transactions.appender import Appender
from timpe.transactions.services import TransactionService, transaction_id
from timpe.users.known import KnownUsers
from timpe.users.services import UserService


class CountingStore:
    def __init__(self, store):
        self.store = store
        self.calls = Counter()  # (primitive, table) -> count

    def __getattr__(self, name):
        attr = getattr(self.store, name)
        if name not in PRIMITIVES:
            return attr

        def primitive(table_name, *args, **kwargs):
            self.calls[(name, table_name)] += 1
            return attr(table_name, *args, **kwargs)
        return primitive

    def take(self):
        calls, self.calls = self.calls, Counter()
        return calls


def count_transfers(path, transfers=HINT_STRIDE, warm=8, known=None):
    """{"phase 1": Counter, "phase 2": Counter}: the round trips of
    ``transfers`` immediate transfers (a multiple of the hint stride, so every
    position of the head hint is counted once), as each node request makes
    them (POST /transactions/immediately: recorded with both legs claimed),
    between users who already have ``warm`` transfers behind them.

    ``known``: the users rows the process keeps (KnownUsers), as a node has;
    None counts a node that has not read these users yet.
    """
    store = SQLiteStore(path)
    store.setup()
    users = UserService(store)
    a = users.register("bench_a", 10_000_00)["id"]
    b = users.register("bench_b", 0)["id"]
    for _ in range(warm):
        service = TransactionService(store, UserService(store, known))
        service.complete(service.create(a, b, 100)[0])
    counting = CountingStore(store)
    appender = Appender(counting, known)  # one per process, as in a node
    phases = {"phase 1": Counter(), "phase 2": Counter()}
    for _ in range(transfers):
        # One per request, as in a node.
        service = TransactionService(counting, UserService(counting, known), appender)
        # The id as the view derives it for a request without id or key.
        txn = service.create(a, b, 100, txn_id=transaction_id(), claimed=True)[0]
        phases["phase 1"] += counting.take()
        service.complete(txn)
        phases["phase 2"] += counting.take()
    store.close()
    return phases


def table(phases, transfers):
    """Round trips per transfer, by phase, primitive and table."""
    lines = []
    for phase, calls in phases.items():
        lines.append(f"{phase}: {sum(calls.values()) / transfers:g} round trips per transfer")
        for (primitive, tbl), n in sorted(calls.items()):
            lines.append(f"  {primitive:6} {tbl:18} {n / transfers:g}")
    return "\n".join(lines)


def main():
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        print("users rows not kept yet (a node's first transfer of these users):")
        print(table(count_transfers(Path(tmp) / "cold.sqlite"), HINT_STRIDE))
        print("users rows and newest ledger rows kept by the process (every later one):")
        print(table(count_transfers(Path(tmp) / "kept.sqlite", known=KnownUsers()), HINT_STRIDE))


if __name__ == "__main__":
    main()
