"""Counts kept in the process's own dicts, added to the Prometheus metrics
by :meth:`flush`.

A prometheus_client call costs 2-5 us in multiprocess mode (a lock and a
write to a mapped file; measured: counter 1.8 us, histogram 5.4 us), and
a transfer would make about ten. Here a count is a dict increment and an
observation a bisect; the worker's background loop flushes once a second
(timpe.background) and so does a scrape of that worker, so a scrape may
miss the last second of the other workers. Under gevent nothing yields
between a flush's swap of the dicts and its reads, so no count is lost.
"""
from bisect import bisect_left
from collections import defaultdict


class LocalCounter:
    def __init__(self, metric):
        self.metric = metric
        self.counts = defaultdict(int)  # label values (a tuple) -> count

    def add(self, labels, n=1):
        self.counts[labels] += n

    def flush(self):
        counts, self.counts = self.counts, defaultdict(int)
        for labels, n in counts.items():
            self.metric.labels(*map(str, labels)).inc(n)


class LocalHistogram:
    """Observations of a prometheus_client Histogram made with ``bounds``
    (its buckets but +Inf)."""

    def __init__(self, metric, bounds):
        self.metric, self.bounds = metric, tuple(bounds)
        self.observed = {}  # label values -> [bucket counts, sum]

    def observe(self, labels, value):
        entry = self.observed.get(labels)
        if entry is None:
            entry = self.observed[labels] = [[0] * (len(self.bounds) + 1), 0.0]
        # bisect_left: the first bound >= value, prometheus' "le".
        entry[0][bisect_left(self.bounds, value)] += 1
        entry[1] += value

    def flush(self):
        observed, self.observed = self.observed, {}
        for labels, (buckets, total) in observed.items():
            child = self.metric.labels(*labels) if labels else self.metric
            # prometheus_client has no call that adds many observations at
            # once; its histogram keeps one value per bucket and the sum
            # (tests/test_metrics.py checks that this matches observe()).
            for value, n in zip(child._buckets, buckets):
                if n:
                    value.inc(n)
            child._sum.inc(total)
