"""GET /metrics in-process: what is counted and where; the figures kept in
the process add up to what prometheus_client would have counted itself."""
import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Histogram
from prometheus_client.parser import text_string_to_metric_families

from tests.spec import SpecTestApp, app_settings
from timpe import main
from timpe.metrics.instruments import REQUEST_BUCKETS
from timpe.metrics.local import LocalHistogram
from timpe.store.interfaces import IStore
from timpe.store.schema import USERS


def scrape(app):
    """{(name, labels as a sorted tuple): value} of one GET /metrics."""
    res = app.get("/metrics", status=200)
    assert res.content_type == "text/plain" and "version=0.0.4" in res.headers["Content-Type"]
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(res.text) for s in family.samples}


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0)


@pytest.mark.filterwarnings("ignore:Unknown REQUEST_METHOD")
def test_requests_by_route_method_and_status(app, register):
    before = scrape(app)
    uid = register("metered", 10)
    app.get(f"/users/{uid}")
    app.get("/users/nobody", status=404)
    app.get("/no/such/path", status=404)
    app.request("/users", method="BREW", status=405)
    after = scrape(app)
    for labels in ({"route": "users", "method": "POST", "status": "201"},
                   {"route": "user", "method": "GET", "status": "200"},
                   {"route": "user", "method": "GET", "status": "404"},
                   {"route": "unmatched", "method": "GET", "status": "404"},
                   {"route": "users", "method": "other", "status": "405"}):
        assert value(after, "timpe_http_requests_total", **labels) \
            - value(before, "timpe_http_requests_total", **labels) == 1, labels


def test_transfers_their_times_their_final_states_and_the_store_calls(app, register):
    a, b = register("m_payer", 100), register("m_payee")
    before = scrape(app)
    app.post_json("/transactions/immediately", {"sender": a, "recipient": b, "amount": 60})
    app.post_json("/transactions", {"sender": a, "recipient": b, "amount": 30})
    app.post_json("/transactions", {"sender": a, "recipient": b, "amount": 30})
    app.post("/process")  # one finishes, the other finds the funds gone
    after = scrape(app)

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("timpe_transfers_ended_total", state="finished") == 2
    assert grew("timpe_transfers_ended_total", state="failed") == 1
    assert grew("timpe_phase2_duration_seconds_count") == 3
    assert grew("timpe_http_request_duration_seconds_count",
                route="transactions_immediately") == 1
    assert grew("timpe_http_request_duration_seconds_count", route="transactions") == 2
    assert grew("timpe_http_request_duration_seconds_count", route="process") == 1
    assert grew("timpe_http_request_duration_seconds_bucket",
                route="transactions", le="+Inf") == 2
    assert grew("timpe_http_request_duration_seconds_sum", route="process") > 0
    for primitive in ("insert", "get_many", "cas", "update", "scan"):
        assert grew("timpe_store_call_duration_seconds_count", primitive=primitive) > 0, primitive
    assert not any(name.startswith("timpe_http_request_duration") and ("route", "users") in k
                   for name, k in after)  # only the transfer endpoints are timed


def test_lost_races_by_primitive(app, register):
    register("racer")
    store = app.app.registry.getUtility(IStore)  # the node's store, measured
    before = scrape(app)
    row = store.get(USERS.name, (next(iter(store.scan(USERS.name)))["id"],))
    assert store.insert(USERS.name, {k: v for k, v in row.items() if k != "_version"}) is False
    assert store.cas(USERS.name, (row["id"],), row["_version"], {"head_seq": 0}) is True
    assert store.cas(USERS.name, (row["id"],), row["_version"], {"head_seq": 0}) is False
    after = scrape(app)
    for primitive in ("insert", "cas"):
        assert value(after, "timpe_store_lost_races_total", primitive=primitive) \
            - value(before, "timpe_store_lost_races_total", primitive=primitive) == 1


def test_a_background_pass_sets_the_pending_gauges(app, register):
    import time

    a, b = register("p_a", 10), register("p_b")
    app.post_json("/transactions", {"sender": a, "recipient": b, "amount": 1})
    time.sleep(0.01)
    app.app.registry.background.tick()
    after = scrape(app)
    assert value(after, "timpe_transfers_pending", state="initial") == 1
    assert value(after, "timpe_transfers_pending", state="in progress") == 0
    assert value(after, "timpe_transfers_pending_oldest_seconds", state="initial") > 0
    assert value(after, "timpe_recovery_passes_total", outcome="ok") >= 1
    assert value(after, "timpe_recovery_last_pass_timestamp_seconds") > time.time() - 60


def test_metrics_turned_off(db_path, store):
    app = SpecTestApp(main({}, **app_settings(db_path, **{"metrics.enabled": "false",
                                                          "recovery.enabled": "false"})))
    res = app.get("/metrics", status=404)
    assert res.json["status"] == "failed" and "metrics.enabled" in res.json["msg"]
    registry = app.app.registry
    assert registry.metrics is None and registry.background is None
    assert type(registry.getUtility(IStore)).__name__ == "SQLiteStore"  # not wrapped


@pytest.mark.parametrize("values", [[0.0005], [0.001, 0.001, 7.5, 30, 0.02], []])
def test_the_kept_observations_are_what_observe_would_have_made(values):
    kept, direct = CollectorRegistry(), CollectorRegistry()
    by_flush = Histogram("h", "h", ["l"], buckets=REQUEST_BUCKETS, registry=kept)
    by_observe = Histogram("h", "h", ["l"], buckets=REQUEST_BUCKETS, registry=direct)
    local = LocalHistogram(by_flush, REQUEST_BUCKETS)
    for v in values:
        local.observe(("x",), v)
        by_observe.labels("x").observe(v)
    local.flush()
    local.flush()  # a second flush adds nothing

    def samples(registry):
        return sorted((s.name, tuple(sorted(s.labels.items())), s.value)
                      for m in registry.collect() for s in m.samples
                      if not s.name.endswith("_created"))
    assert samples(kept) == samples(direct)


def test_the_default_registry_is_what_a_single_process_node_serves(app):
    assert "timpe_http_requests_total" in app.get("/metrics").text
    assert REGISTRY.get_sample_value("timpe_http_requests_total",
                                     {"route": "metrics", "method": "GET", "status": "200"}) >= 1
