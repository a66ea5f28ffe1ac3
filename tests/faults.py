"""A store wrapper that dies on the k-th primitive call, like a killed node.

"before": the call never reaches the store. "after": the store applied it,
but the caller dies before it can use the answer (the worse case: the write
happened and nobody was told).
"""
from timpe.store.interfaces import PRIMITIVES


class Crash(Exception):
    pass


class FaultyStore:
    def __init__(self, store, crash_at=None, mode="before"):
        self.store, self.crash_at, self.mode = store, crash_at, mode
        self.calls = 0

    def __getattr__(self, name):
        attr = getattr(self.store, name)
        if name not in PRIMITIVES:
            return attr

        def primitive(*args, **kwargs):
            self.calls += 1
            if self.calls == self.crash_at and self.mode == "before":
                raise Crash(f"{name} #{self.calls}")
            result = attr(*args, **kwargs)
            if self.calls == self.crash_at:
                raise Crash(f"after {name} #{self.calls}")
            return result
        return primitive
