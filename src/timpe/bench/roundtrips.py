"""Count the store round trips of one transfer, by primitive and table.

A wrapper around a real store records every primitive call; the transfer
runs through the real services, so the count is what a node sends.
"""
from collections import Counter

from timpe.store.sqlite import SQLiteStore
from timpe.transactions.services import TransactionService
from timpe.users.services import UserService

PRIMITIVES = ("insert", "get", "cas", "scan")


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


def count_transfer(path, warm=8):
    """{"phase 1": Counter, "phase 2": Counter} for one immediate transfer
    between users who already have ``warm`` transfers behind them (so the
    head hint is in its usual, lagging state)."""
    store = SQLiteStore(path)
    store.setup()
    users = UserService(store)
    a = users.register("bench_a", 10_000_00)["id"]
    b = users.register("bench_b", 0)["id"]
    for _ in range(warm):
        service = TransactionService(store)
        service.complete(service.create(a, b, 100)[0])
    counting = CountingStore(store)
    service = TransactionService(counting)  # one per request, as in a node
    txn = service.create(a, b, 100)[0]
    phase1 = counting.take()
    service.complete(txn)
    phase2 = counting.take()
    store.close()
    return {"phase 1": phase1, "phase 2": phase2}


def table(counts):
    lines = []
    for phase, calls in counts.items():
        lines.append(f"{phase}: {sum(calls.values())} round trips")
        for (primitive, tbl), n in sorted(calls.items()):
            lines.append(f"  {primitive:6} {tbl:18} {n}")
    return "\n".join(lines)


if __name__ == "__main__":
    import sys
    import tempfile
    from pathlib import Path

    for warm in (int(a) for a in sys.argv[1:] or ["8"]):
        with tempfile.TemporaryDirectory() as tmp:
            print(f"-- after {warm} transfers")
            print(table(count_transfer(Path(tmp) / "count.sqlite", warm)))
