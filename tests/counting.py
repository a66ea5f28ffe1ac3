"""The real store, counting what each primitive is asked for."""
from timpe.store.interfaces import PRIMITIVES


class Counting:
    """Wraps a store; ``calls`` lists (primitive, table, keys asked for)."""

    def __init__(self, store):
        self.store, self.calls = store, []

    def __getattr__(self, name):
        attr = getattr(self.store, name)
        if name not in PRIMITIVES:
            return attr

        def primitive(table_name, *args, **kwargs):
            keys = len(args[0]) if name == "get_many" else 1
            self.calls.append((name, table_name, keys))
            return attr(table_name, *args, **kwargs)
        return primitive
