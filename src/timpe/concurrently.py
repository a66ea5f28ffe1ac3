"""Run work over many items at once where gevent runs the process."""
import logging
import time

log = logging.getLogger(__name__)


def _gevent():
    """gevent, where it has patched this process; else None."""
    try:
        import gevent
        from gevent import monkey
    except ImportError:  # pragma: no cover - gevent is a dependency of the nodes
        return None
    return gevent if monkey.is_module_patched("socket") else None


def aside(work):
    """``work()`` in a greenlet of its own where gevent has patched this
    process, so that its caller does not wait for it; else now. For best
    effort work: an error is logged, never raised."""
    def run():
        try:
            work()
        except Exception:  # best effort: the next attempt makes up for it
            log.warning("work aside failed", exc_info=True)
    gevent = _gevent()
    if gevent is not None:
        gevent.spawn(run)
    else:
        run()


def each(work, items, width, until=None, ready=None):
    """``work(item)`` for the items: up to ``width`` at a time in greenlets
    where gevent has patched this process (their store round trips overlap,
    and their statements share batches), else one after the other (under
    gevent letting the other greenlets run between two).

    The next item started is the first not yet started that is ``ready``
    (default: any); one that is not waits for a later turn, and when none
    is, the first is started anyway. No item is started after ``until`` (a
    time.monotonic() value, or a function that returns True once it is
    due). Every item started is worked on to its end;
    then the first error, if any, is raised. Return the results of the
    items started, in the items' order.
    """
    def due():
        if callable(until):
            return until()
        return until is not None and time.monotonic() >= until

    waiting = list(items)
    patched = _gevent() is not None
    if not patched or width < 2 or len(waiting) < 2:
        results = []
        for item in waiting:
            if due():
                break
            results.append(work(item))
            if patched:
                time.sleep(0)  # gevent's: the other greenlets run between items
        return results
    from gevent.event import Event
    from gevent.pool import Pool

    pool, started, one_ended = Pool(width), {}, Event()
    # Counted here, not by the pool: a greenlet that has ended stays in the
    # pool until the hub runs its callbacks, and waiting on such a one
    # would never end.
    running = [0]

    def run(item):
        try:
            return work(item)
        finally:
            running[0] -= 1
            one_ended.set()

    order = {id(item): i for i, item in enumerate(waiting)}
    while waiting and not due():
        pool.wait_available()
        pick = next((i for i, item in enumerate(waiting) if ready is None or ready(item)), None)
        if pick is None and running[0]:
            one_ended.clear()
            one_ended.wait()  # none is ready: wait until one ends, then look again
            continue
        running[0] += 1
        item = waiting.pop(pick or 0)
        started[order[id(item)]] = pool.spawn(run, item)
    pool.join()
    greenlets = [started[i] for i in sorted(started)]
    for greenlet in greenlets:
        if greenlet.exception is not None:
            raise greenlet.exception
    return [greenlet.value for greenlet in greenlets]
