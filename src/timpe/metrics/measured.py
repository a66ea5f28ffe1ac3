"""Every primitive call of the node's store, timed and counted in one place.

A wrapper of the configured adapter, so that SQLite and CrateDB are
measured alike, at the calls the protocol makes (on CrateDB several of a
process's calls may share one request: the time is what the caller waited).
"""
from time import perf_counter

from zope.interface import implementer

from timpe.errors import StoreUnavailable
from timpe.store.interfaces import PRIMITIVES, IStore

#: A False from these means the call lost a race (update's False: no row).
RACING = ("insert", "cas")


def _measured(primitive):
    key, racing = (primitive,), primitive in RACING

    def call(self, *args, **kwargs):
        started = perf_counter()
        try:
            result = getattr(self.store, primitive)(*args, **kwargs)
        except StoreUnavailable:
            self.metrics.store_errors.add(key)
            raise
        self.metrics.store_seconds.observe(key, perf_counter() - started)
        if racing and result is False:
            self.metrics.lost.add(key)
        return result
    call.__name__ = primitive
    return call


@implementer(IStore)
class MeasuredStore:
    def __init__(self, store, metrics):
        self.store, self.metrics = store, metrics
        self.name, self.parallel = store.name, store.parallel

    def __getattr__(self, name):  # setup, drop, sql, refresh, close ...
        return getattr(self.store, name)

    insert, get, get_many = _measured("insert"), _measured("get"), _measured("get_many")
    cas, update, newest = _measured("cas"), _measured("update"), _measured("newest")
    scan, count_by = _measured("scan"), _measured("count_by")


assert all(hasattr(MeasuredStore, p) for p in PRIMITIVES), "a primitive goes unmeasured"
