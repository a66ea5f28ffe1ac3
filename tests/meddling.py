"""A real SQLite store that something meddles with between the app and the
store, named in an app's settings (``timpe.store``): a statement a client
sent twice, a row gone from under a running node.

``MeddlingStore.made`` holds each one an app made; a test arms it with
``before(primitive, table, action)``: ``action(store, args)`` runs just
before that call, and what it returns (if not None) is the call's answer
instead of the store's.
"""
from timpe.store.interfaces import PRIMITIVES
from timpe.store.sqlite import SQLiteStore


class MeddlingStore:
    made = []

    def __init__(self, store):
        self.store, self.actions = store, {}
        MeddlingStore.made.append(self)

    @classmethod
    def from_settings(cls, settings):
        return cls(SQLiteStore.from_settings(settings))

    def before(self, primitive, table_name, action):
        self.actions[primitive, table_name] = action

    def __getattr__(self, name):
        attr = getattr(self.store, name)
        if name not in PRIMITIVES:
            return attr

        def primitive(table_name, *args, **kwargs):
            action = self.actions.get((name, table_name))
            answer = action(self.store, table_name, args) if action is not None else None
            return attr(table_name, *args, **kwargs) if answer is None else answer
        return primitive


def resent(store, table_name, args):
    """The crate client's re-send of an insert after a timeout: the first
    attempt landed (unless the key was taken already), the second reports
    the key taken."""
    store.insert(table_name, args[0])
    return False


def delete(table_name, where):
    """An action that deletes rows first (a store wiped under the node)."""
    def action(store, _table, _args):
        store.sql(f"DELETE FROM {table_name} WHERE {where}")
    return action
