"""Run work over many items at once where gevent runs the process."""
import time


def each(work, items, width, until=None):
    """``[work(item) for item in items]``: up to ``width`` at a time in
    greenlets where gevent has patched this process (their store round
    trips overlap, and their statements share batches), else one after the
    other. No item is started after ``until`` (a time.monotonic() value):
    the results are those of the items started, in order. Every item
    started is worked on to its end; then the first error, if any, is raised.
    """
    def due():
        return until is not None and time.monotonic() >= until

    items = list(items)
    try:
        from gevent import monkey
        from gevent.pool import Pool
    except ImportError:  # pragma: no cover - gevent is a dependency of the nodes
        monkey = None
    if monkey is None or not monkey.is_module_patched("socket") or len(items) < 2:
        results = []
        for item in items:
            if due():
                break
            results.append(work(item))
        return results
    pool, greenlets = Pool(width), []
    for item in items:
        pool.wait_available()
        if due():
            break
        greenlets.append(pool.spawn(work, item))
    pool.join()
    for greenlet in greenlets:
        if greenlet.exception is not None:
            raise greenlet.exception
    return [greenlet.value for greenlet in greenlets]
