"""No answer leaves a node before what it reports would survive a power
loss: a tween that waits for the store's :meth:`~IStore.durable` after
every request that used the store, whatever its status (a 409 reports a
balance too). On SQLite at ``synchronous = ANSWER`` that is one sync of the
WAL shared by every answer waiting at once, in place of one per commit.
Requests that never touched the store (the probe, /metrics, a body refused
before any read) wait for nothing.
"""
from timpe.errors import StoreUnavailable
from timpe.store.interfaces import IStore
from timpe.web import failure


def factory(handler, registry):
    durable = registry.getUtility(IStore).durable

    def tween(request):
        response = handler(request)
        if "store" in request.__dict__:  # request.store was made: it was used
            try:
                durable()
            except StoreUnavailable as exc:  # the outcome is unknown: retry
                return failure(request, exc.status, exc.msg)
        return response
    return tween
