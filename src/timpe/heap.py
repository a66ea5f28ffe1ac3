"""The garbage collector of a node's worker: no pause that holds up every
request of the process for a quarter of a second.

A worker keeps rows across requests (timpe.users.known, the appender's
rows), and under load most of its objects are those. CPython's full
collection walks every object it tracks, while every greenlet of the
process waits. On the node taking every write of a CrateDB ``zipf`` load
(docs/benchmarks.rst, "Kept heads, the hint off the legs' path, and
garbage collection") it ran 24 times in a minute,
each 40 ms at first and 250 ms once the kept rows had grown: the p99 of
every shape was one such pause.

So, once the app is loaded, what it built (modules, the app, its
configuration: about 55,000 objects) goes to the permanent generation,
which no collection walks (``gc.freeze``), and the young generation is
collected every 20,000 net allocations instead of 700: a request's garbage
is still freed by reference counting, the cycles that some leave wait a
little longer, and full collections come minutes apart instead of seconds.
"""
import gc
import time

#: gc.set_threshold: young collections every 20,000 net allocations of
#: tracked objects (a pause of about 15 ms, measured), the middle one every
#: 20 of those, a full one at most every 100 middle ones.
THRESHOLDS = (20_000, 20, 100)


def settle():
    """Collect once, freeze what survives (the loaded app) and space the
    collections out. Call in the worker, once its app is loaded."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)


def watch(observe):
    """Time every collection of the process: ``observe((generation,),
    seconds)`` after each (a LocalHistogram's observe)."""
    started = [0.0]

    def timed(phase, info):
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            observe((str(info["generation"]),), time.perf_counter() - started[0])

    gc.callbacks.append(timed)
