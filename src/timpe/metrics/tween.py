"""Every answer counted by route, method and status; the transfer
endpoints' times in a histogram."""
from time import perf_counter

#: Routes whose POST is timed: a transfer's phases.
TIMED = frozenset({"transactions", "transactions_immediately", "process",
                   "transactions_process"})
#: Any other method is counted as "other": a label per method a client
#: makes up would grow the metric without end.
METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"})


def factory(handler, registry):
    metrics = registry.metrics
    requests, seconds = metrics.requests, metrics.request_seconds

    def tween(request):
        started = perf_counter()
        status = 500  # what the client gets if an error passes every exception view
        try:
            response = handler(request)
            status = response.status_code
            return response
        finally:
            route = request.matched_route
            name = route.name if route is not None else "unmatched"
            method = request.method if request.method in METHODS else "other"
            requests.add((name, method, status))
            if method == "POST" and name in TIMED:
                seconds.observe((name,), perf_counter() - started)
    return tween
