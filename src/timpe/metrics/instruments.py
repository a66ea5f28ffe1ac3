"""The node's Prometheus metrics (docs/metrics.rst says what each means).

Defined once per process, as prometheus_client wants. Where the process
runs with PROMETHEUS_MULTIPROC_DIR set (every node under supervisor), each
value lives in a file of that directory, and a scrape of any worker adds up
the files of all of them (timpe.metrics.views).
"""
from prometheus_client import Counter, Gauge, Histogram

#: Seconds; a transfer's request takes a few ms on SQLite, tens on CrateDB.
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
#: Seconds; one primitive takes tens of us on SQLite, ms on CrateDB; 3 s is
#: CrateDB's statement timeout.
STORE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                 0.25, 1, 3)

REQUESTS = Counter(
    "timpe_http_requests", "HTTP requests answered, by route, method and status code",
    ["route", "method", "status"])
REQUEST_SECONDS = Histogram(
    "timpe_http_request_duration_seconds",
    "Time to answer the transfer endpoints (POST), by route", ["route"],
    buckets=REQUEST_BUCKETS)
PHASE2_SECONDS = Histogram(
    "timpe_phase2_duration_seconds",
    "Time of phase 2 of one transfer, from its recorded state to finished or failed",
    buckets=REQUEST_BUCKETS)
TRANSFERS_ENDED = Counter(
    "timpe_transfers_ended", "Transfers this node moved to a final state, by that state",
    ["state"])
# Every node counts the whole store: take max() over the nodes, not sum().
PENDING = Gauge(
    "timpe_transfers_pending", "Transfers not yet finished or failed, by state, "
    "as the last recovery pass counted them (the whole store)", ["state"],
    multiprocess_mode="livemostrecent")
PENDING_OLDEST = Gauge(
    "timpe_transfers_pending_oldest_seconds",
    "Age of the oldest transfer in each pending state, as the last pass saw it "
    "(0 when none)", ["state"], multiprocess_mode="livemostrecent")
STORE_SECONDS = Histogram(
    "timpe_store_call_duration_seconds",
    "Store round trips as the protocol makes them (a call of a primitive), by primitive",
    ["primitive"], buckets=STORE_BUCKETS)
STORE_LOST = Counter(
    "timpe_store_lost_races", "Calls that lost a race: an insert-if-absent whose key was "
    "taken, a compare-and-set whose row had moved on", ["primitive"])
STORE_REQUESTS = Counter(
    "timpe_store_requests", "Requests this node sent the store, by kind (write, read, "
    "search): on CrateDB the calls of many requests share one", ["kind"])
STORE_REQUEST_ROWS = Counter(
    "timpe_store_request_rows", "Rows written or keys looked up by those requests, by kind",
    ["kind"])
STORE_ERRORS = Counter(
    "timpe_store_unavailable", "Calls the store could not serve (answered 503)",
    ["primitive"])
GC_SECONDS = Histogram(
    "timpe_gc_pause_seconds", "Collections of the worker's garbage collector, by "
    "generation (2: a full one); every request of the process waits meanwhile "
    "(timpe.heap)", ["generation"], buckets=STORE_BUCKETS)
RECOVERY_PASSES = Counter(
    "timpe_recovery_passes", "Background passes of this node, by outcome", ["outcome"])
RECOVERY_RESUMED = Counter(
    "timpe_recovery_resumed", "Transfers a background pass resumed, by the state it found "
    "them in", ["state"])
RECOVERY_SECONDS = Histogram(
    "timpe_recovery_pass_duration_seconds", "Time of one background pass",
    buckets=REQUEST_BUCKETS)
RECOVERY_LAST = Gauge(
    "timpe_recovery_last_pass_timestamp_seconds",
    "When this node's last background pass ended (Unix time)", multiprocess_mode="livemax")
